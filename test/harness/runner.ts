import { spawn } from 'node:child_process';
import * as path from 'node:path';

/** The bundled runner, as users run it (built by `npm run build`). */
export const DBBACKUP = path.join(__dirname, '..', '..', 'dist', 'runner', 'dbbackup.js');

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: Record<string, string | undefined>;
  /** Called with the child's pid once it runs (e.g. to watch /proc or kill it). */
  readonly onSpawn?: (pid: number) => void;
  readonly timeoutMs?: number;
}

/** Run `dbbackup ARGS` to completion. The environment starts from ours; `env` adds or (undefined) removes. */
export function dbbackup(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, DBBACKUP_LOG_FORMAT: 'json' };
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DBBACKUP, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120000);
    child.on('error', reject);
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The JSON log lines a run wrote on stderr. */
export function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
