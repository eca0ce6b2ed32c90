/**
 * `dbbackup wal-receive --source postgres://… --to STORAGE_URL`: PostgreSQL's streaming WAL
 * shipper, a long-running process (one task of an ECS service, or a systemd service).
 *
 * `pg_receivewal` streams the server's WAL over a replication connection, from a physical
 * replication slot (`--slot`, made with `--create-slot` when missing, so the server keeps what was
 * not received), into a local spool directory: completed segments under their names, the one being
 * received as `<segment>.partial`. This process uploads:
 * - each completed segment (and timeline history file) at once, under the same object names,
 *   compression, encryption and sha256 as `wal-push` (archive/log-archive.ts's pushFile: an
 *   identical archived object is taken as done, a different one fails the run loudly), then
 *   removes the local copy;
 * - the `.partial` segment every `--partial-interval` (default 5 s) when it changed, to the
 *   timeline's streamed partial (wal-partial.ts), which `restore --to-time` (and `latest`)
 *   replays when the completed segments end before the moment;
 * and publishes the lag as the WalStreamingLagSeconds metric: seconds since the archive last
 * held everything pg_receivewal had received (it grows while the stream is down).
 *
 * Restarts resume from the slot (pg_receivewal starts at the slot's restart point, or at the
 * newest segment left in the spool); a segment already archived with the same content is not
 * uploaded again. SIGTERM stops pg_receivewal, uploads what it has (the final partial included)
 * and exits 0. The password goes to pg_receivewal in its environment (PGPASSWORD), never argv.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RUNNER_ENV, SECRET_ENV } from '../../../../lib/core/contract';
import { METRICS } from '../../../../lib/core/metrics';
import {
  ArchiveConflictError,
  archiveEncryption,
  ArchiveEncryption,
  hashFile,
  pushFile,
} from '../../archive/log-archive';
import { WalReceiveConfig } from '../../config';
import { BackupError, ConfigError } from '../../errors';
import { formatBytes, log } from '../../log';
import { emitMetrics } from '../../metrics';
import { capture, Child } from '../../pipeline/stages';
import { openStorage, Storage } from '../../storage';
import { LogStreamResult } from '../shared/engine';
import { pgEnv, pgTool } from './tools';
import { WAL_PREFIX } from './wal-archive';
import { uploadPartial } from './wal-partial';
import { parseWalFileName, WalFileKind } from './wal-names';

export type WalReceiveResult = LogStreamResult;

const TICK_MS = 200;

/** The spool's files: completed ones (segments, history files) in order, and the partial segment. */
async function spoolFiles(dir: string): Promise<{ complete: string[]; partial?: string }> {
  const names = await fs.promises.readdir(dir);
  const complete = names
    .filter((n) => {
      const k = parseWalFileName(n)?.kind;
      return k === WalFileKind.SEGMENT || k === WalFileKind.HISTORY;
    })
    // History files first: a segment of a new timeline is useless to a restore without it.
    .sort((a, b) =>
      a.endsWith('.history') === b.endsWith('.history') ? (a < b ? -1 : 1) : a.endsWith('.history') ? -1 : 1,
    );
  const partials = names.filter((n) => /^[0-9A-F]{24}\.partial$/.test(n)).sort();
  return { complete, partial: partials[partials.length - 1] };
}

class Receiver {
  private readonly storage: Storage;
  private readonly env: Record<string, string | undefined>;
  private readonly databaseId: string;
  private enc?: ArchiveEncryption;
  /** The partial last uploaded: its file, sha256 and the mtime/size it had. */
  private lastPartial?: { file: string; sha256: string; mtimeMs: number; size: number };
  /** When the archive last held everything received. */
  private caughtUpAt?: number;
  public segments = 0;
  public partials = 0;
  public bytes = 0;

  constructor(
    private readonly cfg: WalReceiveConfig,
    private readonly signal: AbortSignal,
  ) {
    this.storage = openStorage(cfg.to);
    this.env = pgEnv(cfg.source, process.env[SECRET_ENV.SOURCE_PASSWORD]);
    this.databaseId =
      process.env[RUNNER_ENV.DATABASE_ID] ??
      `${cfg.source.host ?? cfg.source.socket ?? 'local'}:${cfg.source.port}/${cfg.source.database ?? ''}`;
  }

  private async encryption(): Promise<ArchiveEncryption> {
    this.enc ??= await archiveEncryption(this.storage, WAL_PREFIX, this.cfg.encryption);
    return this.enc;
  }

  /** Create the slot when asked and it is missing (pg_receivewal --create-slot --if-not-exists). */
  public async ensureSlot(): Promise<void> {
    if (!this.cfg.createSlot) return;
    await capture({
      cmd: pgTool('pg_receivewal'),
      args: ['--create-slot', '--if-not-exists', `--slot=${this.cfg.slot}`],
      env: this.env,
      label: 'pg_receivewal',
    });
    log.info(`replication slot ${this.cfg.slot} is there`, { event: 'wal-receive-slot', slot: this.cfg.slot });
  }

  /** Upload every completed file of the spool, in order; remove each once archived. */
  private async shipComplete(dir: string, complete: readonly string[]): Promise<void> {
    for (const name of complete) {
      const file = path.join(dir, name);
      const wal = parseWalFileName(name)!;
      const r = await pushFile(this.storage, WAL_PREFIX, wal.timelineHex, name, file, {
        compression: this.cfg.compression,
        encryption: () => this.encryption(),
        // An upload is never aborted half-way: a stop waits for it.
        signal: new AbortController().signal,
        what: 'WAL file',
        hint:
          'Another server (or a wal-push archive_command of another server) archives to the same place: give each ' +
          'server its own storage prefix.',
      });
      await fs.promises.rm(file);
      if (wal.kind === WalFileKind.SEGMENT) this.segments++;
      if (r.status === 'stored') this.bytes += r.size;
      log.info(r.status === 'stored' ? `archived ${name}` : `${name} was already archived with the same content`, {
        event: 'wal-receive-segment',
        file: name,
        status: r.status,
        key: r.key,
      });
    }
  }

  /** Upload the partial segment when it changed since the last upload. */
  private async shipPartial(dir: string, partial: string): Promise<void> {
    const file = path.join(dir, partial);
    const segment = partial.slice(0, 24);
    const st = await fs.promises.stat(file).catch(() => undefined);
    if (st === undefined) return; // completed meanwhile: the next pass uploads the segment
    const last = this.lastPartial;
    if (last !== undefined && last.file === segment && last.mtimeMs === st.mtimeMs && last.size === st.size) return;
    // A private copy: pg_receivewal goes on writing the file while it is hashed and uploaded.
    const copy = path.join(dir, 'dbbackup-upload.tmp');
    await fs.promises.copyFile(file, copy);
    try {
      const { sha256, size } = await hashFile(copy);
      if (last !== undefined && last.file === segment && last.sha256 === sha256) {
        this.lastPartial = { file: segment, sha256, mtimeMs: st.mtimeMs, size: st.size };
        return;
      }
      await uploadPartial(this.storage, copy, segment, {
        sha256,
        size,
        written: st.mtime,
        compression: this.cfg.compression,
        enc: await this.encryption(),
        signal: new AbortController().signal,
      });
      this.lastPartial = { file: segment, sha256, mtimeMs: st.mtimeMs, size: st.size };
      this.partials++;
      log.debug(`uploaded the partial segment ${segment}`, { event: 'wal-receive-partial', file: segment, sha256 });
    } finally {
      await fs.promises.rm(copy, { force: true });
    }
  }

  /** One pass: completed files, then (when due, or at the end) the partial; then the lag. */
  private async pass(dir: string, due: boolean, streaming: boolean): Promise<void> {
    const started = Date.now();
    const { complete, partial } = await spoolFiles(dir);
    await this.shipComplete(dir, complete);
    let pending = false;
    if (partial !== undefined) {
      if (due) await this.shipPartial(dir, partial);
      else {
        const st = await fs.promises.stat(path.join(dir, partial)).catch(() => undefined);
        const last = this.lastPartial;
        pending =
          st !== undefined && (last === undefined || last.file !== partial.slice(0, 24) || last.mtimeMs !== st.mtimeMs);
      }
    }
    if (streaming && !pending) this.caughtUpAt = started;
  }

  private publishLag(): void {
    if (this.caughtUpAt === undefined) return;
    const lag = (Date.now() - this.caughtUpAt) / 1000;
    emitMetrics(
      this.databaseId,
      { [METRICS.WAL_STREAMING_LAG]: Math.round(lag) },
      { [METRICS.WAL_STREAMING_LAG]: 'Seconds' },
    );
  }

  /** Receive and upload until pg_receivewal ends or a stop is asked for. */
  public async session(dir: string): Promise<void> {
    const child = new Child(
      {
        cmd: pgTool('pg_receivewal'),
        args: [
          `--directory=${dir}`,
          `--slot=${this.cfg.slot}`,
          '--no-loop',
          '--verbose',
          ...(this.cfg.synchronous ? ['--synchronous'] : []),
        ],
        env: this.env,
        label: 'pg_receivewal',
      },
      ['ignore', 'ignore', 'pipe'],
    );
    let ended = false;
    child.done.then(
      () => (ended = true),
      () => (ended = true),
    );
    // pg_receivewal 15 stops cleanly (flushing what it received) on SIGINT.
    const onStop = () => child.kill('SIGINT');
    this.signal.addEventListener('abort', onStop);
    let lastPartialAt = 0;
    let lastLagAt = 0;
    try {
      while (!ended && !this.signal.aborted) {
        await new Promise((r) => setTimeout(r, TICK_MS));
        const due = Date.now() - lastPartialAt >= this.cfg.partialIntervalMs;
        try {
          await this.pass(dir, due, true);
          if (due) lastPartialAt = Date.now();
        } catch (e) {
          if (e instanceof ArchiveConflictError) throw e;
          // Storage trouble: the spool keeps everything; the next pass tries again.
          log.error(`archiving failed; retrying: ${(e as Error).message}`, { event: 'wal-receive-upload-failed' });
        }
        if (Date.now() - lastLagAt >= Math.min(this.cfg.partialIntervalMs, 60000)) {
          lastLagAt = Date.now();
          this.publishLag();
        }
      }
      child.kill('SIGINT');
      await child.done.catch(() => undefined);
      // What was received is uploaded before this session ends (SIGTERM: a clean stop). After a
      // lost connection the server may hold more than was received: that is not caught up.
      await this.pass(dir, true, this.signal.aborted);
      this.publishLag();
      if (!this.signal.aborted) {
        const why = child.stderr.trim().split('\n').slice(-3).join(' | ') || 'no message';
        if (/replication slot .* does not exist/.test(why))
          throw new ConfigError(
            `the replication slot ${this.cfg.slot} does not exist on ${this.cfg.source.display}; add --create-slot ` +
              `(or create it: SELECT pg_create_physical_replication_slot('${this.cfg.slot}')).`,
          );
        throw new BackupError(`pg_receivewal ended: ${why}`);
      }
    } finally {
      this.signal.removeEventListener('abort', onStop);
      if (!ended) {
        child.kill('SIGINT');
        await child.done.catch(() => undefined);
      }
    }
  }
}

/**
 * pg_receivewal, checked before any work: a missing program is bad usage (exit 2) naming it,
 * never a session to start again and again with a back-off.
 */
function checkReceiver(): void {
  const cmd = pgTool('pg_receivewal');
  try {
    fs.accessSync(cmd, fs.constants.X_OK);
  } catch {
    const where = process.env[RUNNER_ENV.PG_BIN] ? `${RUNNER_ENV.PG_BIN}=${process.env[RUNNER_ENV.PG_BIN]}` : 'PATH';
    throw new ConfigError(
      `pg_receivewal is not installed or not executable (looked for '${cmd}' in /usr/lib/postgresql/*/bin and ` +
        `${where}); wal-receive streams the WAL with it. Fix: install the PostgreSQL client tools ` +
        `(Debian: postgresql-client), or point ${RUNNER_ENV.PG_BIN} at their bin directory.`,
    );
  }
}

export async function runWalReceive(cfg: WalReceiveConfig, signal: AbortSignal): Promise<WalReceiveResult> {
  checkReceiver();
  const started = Date.now();
  const receiver = new Receiver(cfg, signal);
  const own = cfg.spoolDir === undefined;
  const dir = own
    ? await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-wal-receive-'))
    : path.resolve(cfg.spoolDir!);
  if (!own) await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  log.info(`streaming the WAL of ${cfg.source.display} (slot ${cfg.slot}) to ${cfg.to.display}`, {
    event: 'wal-receive-start',
    spool: dir,
  });
  try {
    await receiver.ensureSlot();
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        await receiver.session(dir);
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof ConfigError || e instanceof ArchiveConflictError) throw e;
        const wait = Math.min(30, 2 ** Math.min(attempt, 5));
        log.error(`WAL streaming stopped: ${(e as Error).message}; starting again in ${wait} s from the slot`, {
          event: 'wal-receive-restart',
        });
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait * 1000);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    }
  } finally {
    if (own) await fs.promises.rm(dir, { recursive: true, force: true });
  }
  const seconds = (Date.now() - started) / 1000;
  log.info(
    `WAL streaming stopped cleanly: ${receiver.segments} segment(s) and ${receiver.partials} partial upload(s), ` +
      `${formatBytes(receiver.bytes)} in ${seconds.toFixed(0)} s`,
    { event: 'wal-receive-stop' },
  );
  return { logs: receiver.segments, chunks: receiver.partials, bytes: receiver.bytes, seconds };
}
