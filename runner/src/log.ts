import { RUNNER_ENV } from '../../lib/core/contract';

/** Logs go to stderr: JSON lines when stderr is not a terminal (CloudWatch Logs Insights reads them). */
export type Fields = Record<string, unknown>;

const SECRET_KEYS = /pass(word)?|secret|token|identity|plaintext|credential/i;

function useJson(): boolean {
  const f = process.env[RUNNER_ENV.LOG_FORMAT];
  if (f === 'json') return true;
  if (f === 'text') return false;
  return !process.stderr.isTTY;
}

function scrub(fields: Fields): Fields {
  const out: Fields = {};
  for (const [k, v] of Object.entries(fields)) out[k] = SECRET_KEYS.test(k) ? '***' : v;
  return out;
}

function write(level: string, msg: string, fields: Fields = {}): void {
  const f = scrub(fields);
  if (useJson()) {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...f }) + '\n');
  } else {
    const extra = Object.entries(f)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    process.stderr.write(`${level === 'info' ? '' : level.toUpperCase() + ': '}${msg}${extra ? ' ' + extra : ''}\n`);
  }
}

export const log = {
  info: (msg: string, fields?: Fields) => write('info', msg, fields),
  warn: (msg: string, fields?: Fields) => write('warn', msg, fields),
  error: (msg: string, fields?: Fields) => write('error', msg, fields),
  debug: (msg: string, fields?: Fields) => {
    if (process.env.DBBACKUP_DEBUG === '1') write('debug', msg, fields);
  },
};

/** Human-readable bytes: 1.5 GiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/**
 * Counts bytes of long work and logs progress (bytes, rate) every interval (default 10 s,
 * `DBBACKUP_PROGRESS_INTERVAL` seconds) until stopped.
 */
export class Progress {
  private bytes = 0;
  private readonly started = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly what: string,
    private readonly fields: Fields = {},
  ) {
    const every = Number(process.env[RUNNER_ENV.PROGRESS_INTERVAL] ?? '10') * 1000;
    this.timer = setInterval(() => this.report(), every > 0 ? every : 10000);
    this.timer.unref();
  }

  public add(n: number): void {
    this.bytes += n;
  }

  public get total(): number {
    return this.bytes;
  }

  public get seconds(): number {
    return (Date.now() - this.started) / 1000;
  }

  private report(): void {
    const s = this.seconds;
    log.info(`${this.what}: ${formatBytes(this.bytes)} at ${formatBytes(this.bytes / Math.max(s, 0.001))}/s`, {
      event: 'progress',
      ...this.fields,
      bytes: this.bytes,
      seconds: Math.round(s),
      bytesPerSecond: Math.round(this.bytes / Math.max(s, 0.001)),
    });
  }

  public stop(): void {
    clearInterval(this.timer);
  }
}
