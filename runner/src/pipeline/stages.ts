import { ChildProcess, spawn, spawnSync, StdioOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { SECRET_ENV } from '../../../lib/core/contract';
import { pipelineSettings } from '../config';
import { BackupError, ChildProcessError } from '../errors';

/** A program to run: argument arrays only, never a shell string. */
export interface CommandSpec {
  readonly cmd: string;
  readonly args: readonly string[];
  /** Added to the environment (e.g. PGPASSWORD): secrets travel here, never in args. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The name used in errors (defaults to the command's base name). */
  readonly label?: string;
  /** Open descriptors handed to the child as its fds 3, 4, … (e.g. a key it reads as /dev/fd/3). */
  readonly fds?: readonly number[];
}

/**
 * A producer that runs in this process (e.g. a parallel dump into a spool directory, streamed
 * out as one tar archive): its stdout is the artifact's content, `done` settles when the
 * producer and everything it ran have ended (rejecting with the failure of the first of them).
 */
export interface StreamProducer {
  /** The name used in errors and in `onFailure` (e.g. `pg_dump`). */
  readonly label: string;
  /** It takes the run's compressor (start's `compress`) and writes its stream compressed. */
  readonly compresses?: boolean;
  /**
   * Start it. `onActivity` is called while it makes progress that has not reached its stdout yet
   * (files growing in a spool), so the stall guard does not take a long table for a stall.
   * `compress` (only to a producer that `compresses`): the run's compressor; its stdout is then
   * compressed, and the pipeline has no compress stage. `outputFd` (only with `compress`): the
   * stored object's file, opened for appending, which its compressors write themselves (stdout
   * then stays empty).
   */
  start(onActivity: () => void, compress?: CommandSpec, outputFd?: number): ProducedStream;
}

export interface ProducedStream {
  readonly stdout: Readable;
  /** Its stdout is compressed by the compressor start was given (a producer that `compresses`). */
  readonly compressed?: boolean;
  readonly done: Promise<void>;
  /** Stop it (the run failed elsewhere or was interrupted; a stall: SIGKILL). */
  kill(signal?: NodeJS.Signals): void;
}

/** The environment every child starts from: ours without the runner's own secrets. */
export function childEnv(extra: Readonly<Record<string, string | undefined>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.values(SECRET_ENV)) delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** A running child whose exit is awaited and whose stderr tail is kept for errors. */
export class Child {
  public readonly process: ChildProcess;
  public readonly label: string;
  /** Resolves on exit code 0; rejects with ChildProcessError otherwise. */
  public readonly done: Promise<void>;
  public killedByUs = false;
  /** The signal we sent (a death by another one, e.g. the OOM killer's SIGKILL, is its own). */
  public sentSignal?: NodeJS.Signals;
  /** The stage feeding this one's stdin (in a pipeline). */
  public upstream?: Child;
  /** Exited 0 while the stage feeding it still ran: it did not read its input to the end. */
  public exitedBeforeUpstream = false;
  private tail = '';

  constructor(spec: CommandSpec, stdio: StdioOptions) {
    this.label = spec.label ?? path.basename(spec.cmd);
    const io = spec.fds !== undefined && Array.isArray(stdio) ? [...stdio, ...spec.fds] : stdio;
    this.process = spawn(spec.cmd, [...spec.args], { stdio: io, env: childEnv(spec.env) });
    this.process.stderr?.on('data', (d: Buffer) => {
      this.tail = (this.tail + d.toString('utf8')).slice(-8192);
    });
    this.process.once('exit', (code) => {
      const up = this.upstream?.process;
      const upRunning = up !== undefined && up.exitCode === null && up.signalCode === null;
      if (code === 0 && upRunning && !this.upstream!.killedByUs) {
        this.exitedBeforeUpstream = true;
      }
    });
    this.done = new Promise((resolve, reject) => {
      this.process.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'ENOENT'
            ? new ChildProcessError(this.label, 127, null, `${spec.cmd} is not installed or not on PATH`)
            : err,
        );
      });
      this.process.once('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(new ChildProcessError(this.label, code, signal, this.tail));
      });
    });
    // Callers look at `done` when they are ready; never let an early failure go unhandled.
    this.done.catch(() => undefined);
  }

  public get stderr(): string {
    return this.tail;
  }

  public kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      this.killedByUs = true;
      this.sentSignal = signal;
      this.process.kill(signal);
    }
  }
}

/**
 * A pipe of the operating system (both ends blocking), for the join after a dump tool. Node's
 * 'pipe' stdio is a UNIX socket pair, and pg_dump and mariadb-dump write 4 KiB at a time, which
 * costs the writer and the reader more system time through a socket than through a pipe (measured
 * at 1 GB, mariadb-dump into zstd: about 0.3 CPU-seconds more; with 128 KiB writes, as zstd's, the
 * socket is the cheaper one, so the other joins keep it). Node makes no anonymous pipe: this one is
 * a FIFO in a private directory, opened at both ends and removed at once (no byte touches a
 * disk). Undefined where that fails (no mkfifo): the socket pair then joins them.
 */
export function osPipe(): { readonly read: number; readonly write: number } | undefined {
  let dir: string | undefined;
  // Every descriptor opened here and not handed out: closed whatever happens.
  const opened: number[] = [];
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-pipe-'));
    const fifo = path.join(dir, 'p');
    if (spawnSync('mkfifo', ['-m', '600', fifo], { stdio: 'ignore' }).status !== 0) return undefined;
    const open = (flags: number) => {
      opened.push(fs.openSync(fifo, flags));
      return opened[opened.length - 1];
    };
    // A reader that does not wait for a writer, so that the blocking ends below open at once.
    open(fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const write = open(fs.constants.O_WRONLY);
    const read = open(fs.constants.O_RDONLY);
    opened.splice(1); // the probe stays in the list to be closed; the two ends are handed out
    return { read, write };
  } catch {
    return undefined;
  } finally {
    for (const fd of opened) fs.closeSync(fd);
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Where a pipeline's first stage reads from. */
export type PipelineInput =
  | { readonly kind: 'none' }
  | { readonly kind: 'pipe' }
  | { readonly kind: 'fd'; readonly fd: number };

/** Died of a broken pipe: the stage after it stopped reading. Never a root cause by itself. */
function brokenPipe(e: ChildProcessError): boolean {
  if (e.signal === 'SIGPIPE') return true;
  return e.signal === null && /broken pipe|EPIPE|connection reset by peer|ECONNRESET/i.test(e.stderrTail);
}

/** The failure of a run the stall guard stopped: what stalled, for how long, and the fix. */
export function stallError(description: string, idleMs: number, running: readonly string[]): BackupError {
  return new BackupError(
    `no bytes moved through ${description} for ${Math.round(idleMs / 1000)} s` +
      (running.length > 0 ? ` (still running: ${running.join(', ')})` : '') +
      '; stopped it. A stage or the storage stopped reading or writing; raise --stall-timeout SECONDS ' +
      'if it is legitimately slow.',
  );
}

/**
 * The stall guard of an in-process producer with no stage after it (a spool that compresses its
 * own stream into the stored file): no activity for `pipelineSettings.stallTimeoutSeconds` calls
 * `onStall` with the error once.
 */
export class StallGuard {
  public stalled?: BackupError;
  private last = Date.now();
  private timer?: NodeJS.Timeout;

  constructor(description: string, onStall: (err: BackupError) => void) {
    const limit = pipelineSettings.stallTimeoutSeconds * 1000;
    if (limit <= 0) return;
    this.timer = setInterval(
      () => {
        const idle = Date.now() - this.last;
        if (idle < limit) return;
        this.stop();
        this.stalled = stallError(description, idle, [description]);
        onStall(this.stalled);
      },
      Math.min(1000, limit),
    );
    this.timer.unref();
  }

  public activity(): void {
    this.last = Date.now();
  }

  public stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * Processes joined stdout to stdin by the operating system (no copy through this process),
 * the last stage's stdout readable here. Every stage is awaited: no failure is masked.
 *
 * With `stallGuard`, the code that moves the pipeline's bytes calls `activity()`: no bytes for
 * `pipelineSettings.stallTimeoutSeconds` kills every stage and fails the pipeline with a message
 * saying so (see also `inputComplete()`).
 */
export class Pipeline {
  public readonly children: Child[] = [];
  /** The first stage's stdin, when the input is `pipe`. */
  public readonly stdin?: Writable;
  /** The last stage's stdout (empty when it writes to `outputFd`). */
  public readonly stdout: Readable;
  /** Set when the stall guard stopped the pipeline. */
  public stalled?: BackupError;
  private lastActivity = Date.now();
  private fedAll = false;
  private guard?: NodeJS.Timeout;
  private waiting?: Promise<void>;
  private readonly onStall?: (err: BackupError) => void;

  constructor(
    specs: readonly CommandSpec[],
    input: PipelineInput = { kind: 'none' },
    options: {
      stallGuard?: boolean;
      onStall?: (err: BackupError) => void;
      /** The last stage writes to this descriptor (a file) instead of a pipe read here. */
      outputFd?: number;
      /** The first stage is a dump tool: its output goes to the next stage through osPipe(). */
      producerPipe?: boolean;
    } = {},
  ) {
    if (specs.length === 0) throw new Error('a pipeline needs at least one stage');
    let prev: Readable | number | 'pipe' | 'ignore' =
      input.kind === 'none' ? 'ignore' : input.kind === 'pipe' ? 'pipe' : input.fd;
    // The read end of an osPipe(), ours to close once the next stage holds it.
    let pipeRead: number | undefined;
    for (const [i, spec] of specs.entries()) {
      const last = i === specs.length - 1;
      const joined = !last && i === 0 && options.producerPipe === true ? osPipe() : undefined;
      const out = last && options.outputFd !== undefined ? options.outputFd : (joined?.write ?? 'pipe');
      let child: Child;
      try {
        child = new Child(spec, [prev, out, 'pipe']);
      } finally {
        // The children hold their ends now; ours must go, or the reader never sees the end.
        if (joined !== undefined) fs.closeSync(joined.write);
        if (pipeRead !== undefined) fs.closeSync(pipeRead);
        pipeRead = undefined;
      }
      child.upstream = this.children[this.children.length - 1];
      if (prev instanceof Readable) prev.destroy(); // the next child holds the pipe now; we must not
      this.children.push(child);
      pipeRead = joined?.read;
      prev = joined?.read ?? child.process.stdout!;
    }
    this.stdin = input.kind === 'pipe' ? this.children[0].process.stdin! : undefined;
    // A write to a stage that is gone fails the write (EPIPE); it must never crash the run.
    this.stdin?.on('error', () => undefined);
    // With outputFd nothing comes out here: an empty stream stands for it.
    this.stdout = this.children[this.children.length - 1].process.stdout ?? Readable.from([]);
    this.onStall = options.onStall;
    const limit = pipelineSettings.stallTimeoutSeconds * 1000;
    if (options.stallGuard === true && limit > 0) {
      this.guard = setInterval(() => this.checkStall(limit), Math.min(1000, limit));
      this.guard.unref();
    }
  }

  /** The stage names, in order (for messages). */
  public get description(): string {
    return this.children.map((c) => c.label).join(' | ');
  }

  /** Bytes moved: the stall guard starts counting again. */
  public activity(): void {
    this.lastActivity = Date.now();
  }

  /**
   * All input was delivered to a last stage that consumes it (pg_restore): once every stage
   * before it has exited, it works on its own (builds indexes) and is no longer held to the guard.
   */
  public inputComplete(): void {
    this.fedAll = true;
  }

  /** Stop the stall guard. */
  public endGuard(): void {
    if (this.guard !== undefined) clearInterval(this.guard);
    this.guard = undefined;
  }

  private checkStall(limit: number): void {
    const exited = (c: Child) => c.process.exitCode !== null || c.process.signalCode !== null;
    if (this.fedAll && this.children.slice(0, -1).every(exited)) {
      this.endGuard();
      return;
    }
    const idle = Date.now() - this.lastActivity;
    if (idle < limit) return;
    this.endGuard();
    const running = this.children.filter((c) => !exited(c)).map((c) => c.label);
    this.stalled = stallError(this.description, idle, running);
    this.kill('SIGKILL');
    this.onStall?.(this.stalled);
  }

  /** Kill every stage that still runs. */
  public kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    for (const c of this.children) c.kill(signal);
  }

  /**
   * Wait for every stage. If any fails, the others are killed and the error of the stage that
   * failed on its own first in pipeline order (not of a broken pipe, not of our kill) is thrown:
   * the stages after it fail because its output ended early, the ones before it of the broken
   * pipe. A stage that exited (even 0) before reading all its input is named as the cause when
   * the only failures are broken pipes. With `consumerMayExitEarly`, broken pipes upstream of a
   * last stage that exited 0 are success (pg_restore does not read the archive's last bytes).
   */
  public wait(options: { consumerMayExitEarly?: boolean } = {}): Promise<void> {
    this.waiting ??= this.settle(options).finally(() => this.endGuard());
    return this.waiting;
  }

  private async settle(options: { consumerMayExitEarly?: boolean }): Promise<void> {
    const last = this.children.length - 1;
    const results = await Promise.allSettled(
      this.children.map((c) =>
        c.done.catch((e) => {
          this.kill();
          throw e;
        }),
      ),
    );
    if (this.stalled !== undefined) throw this.stalled;
    const failures = results
      .map((r, i) => ({ r, c: this.children[i], i }))
      .filter((x): x is { r: PromiseRejectedResult; c: Child; i: number } => x.r.status === 'rejected');
    if (failures.length === 0) return;
    const reason = (f: { r: PromiseRejectedResult }) => f.r.reason as ChildProcessError;
    // Not a child's exit at all (spawn failed other than ENOENT): report it as it is.
    const odd = failures.find((f) => !(f.r.reason instanceof ChildProcessError));
    if (odd !== undefined) throw odd.r.reason;
    const pipes = failures.filter((f) => brokenPipe(reason(f)));
    // An exit code counts as the stage's own even if our kill reached it after it had exited but
    // before its exit was seen; a signal counts unless it is the one we sent.
    const ours = (f: { r: PromiseRejectedResult; c: Child }) => f.c.killedByUs && reason(f).signal === f.c.sentSignal;
    // A consumer done early: the stages before it die of the broken pipe, or of the kill that
    // the first of those deaths sent to the ones still running (a decrypter still reading).
    const consumerDone = options.consumerMayExitEarly === true && results[last].status === 'fulfilled';
    if (consumerDone && pipes.length > 0 && failures.every((f) => brokenPipe(reason(f)) || ours(f))) return;
    const own = failures.filter((f) => !brokenPipe(reason(f)) && (reason(f).signal === null || !ours(f)));
    // A stage that exited 0 while the one before it died of the broken pipe stopped reading
    // early: the stages after it then failed on a short stream, so it is the cause.
    // (Seen as: it exited while the stage before it still ran, or that stage died of the pipe.)
    const early = this.children.findIndex(
      (c, i) =>
        i > 0 && results[i].status === 'fulfilled' && (c.exitedBeforeUpstream || pipes.some((f) => f.i === i - 1)),
    );
    if (early > 0 && (own.length === 0 || own[0].i > early)) {
      const next = this.children[early];
      const up = failures.find((f) => f.i === early - 1);
      throw new BackupError(
        `${next.label} exited 0 before reading all of its input${
          next.stderr.trim() !== '' ? ` (${next.stderr.trim().split('\n').slice(-3).join(' | ')})` : ''
        }` +
          (up !== undefined ? `; ${reason(up).message}` : '') +
          (own.length > 0 ? `; then ${reason(own[0]).message}` : ''),
      );
    }
    if (own.length > 0) throw own[0].r.reason;
    throw failures[0].r.reason;
  }
}

/** Run one command to completion and return its stdout (for small outputs: versions, queries). */
export async function capture(spec: CommandSpec, input?: string | Buffer): Promise<string> {
  const child = new Child(spec, [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']);
  const chunks: Buffer[] = [];
  child.process.stdout!.on('data', (d: Buffer) => chunks.push(d));
  if (input !== undefined) {
    child.process.stdin!.on('error', () => undefined);
    child.process.stdin!.end(input);
  }
  await child.done;
  return Buffer.concat(chunks).toString('utf8');
}

/** The answers of `versionOutput`, one per program and arguments, for the life of the process. */
const versions = new Map<string, Promise<string>>();

/**
 * What `CMD ARGS` (a version query: `--version`, OpenSSL's `version`) prints on stdout, asked
 * once per process: the preflight and the engine that records the tool's version in the
 * manifest share one run of the program. A run that fails (or takes longer than `timeoutMs`:
 * it is killed) rejects with the ChildProcessError (named `label`), for every caller alike.
 */
export function versionOutput(
  cmd: string,
  args: readonly string[] = ['--version'],
  label = path.basename(cmd),
  timeoutMs = 15000,
): Promise<string> {
  // By the program found: `mydumper` and `/usr/bin/mydumper` are asked once.
  const key = JSON.stringify([cmd.includes('/') ? cmd : (findTool([cmd]) ?? cmd), ...args]);
  let answer = versions.get(key);
  if (answer === undefined) {
    answer = (async () => {
      const child = new Child({ cmd, args, label }, ['ignore', 'pipe', 'pipe']);
      const chunks: Buffer[] = [];
      child.process.stdout!.on('data', (d: Buffer) => chunks.push(d));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        await child.done;
      } finally {
        clearTimeout(timer);
      }
      return Buffer.concat(chunks).toString('utf8');
    })();
    answer.catch(() => undefined);
    versions.set(key, answer);
  }
  return answer;
}

/** The first of `names` found on PATH (or in the extra directories), or undefined. */
export function findTool(names: readonly string[], extraDirs: readonly string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== ''), ...extraDirs];
  for (const name of names) {
    for (const dir of dirs) {
      const p = path.join(dir, name);
      try {
        fs.accessSync(p, fs.constants.X_OK);
        return p;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/**
 * `spec` run so that it dies with the runner: under util-linux's `setpriv --pdeathsig SIGKILL`
 * (Linux, where setpriv is on PATH; the same process, setpriv execs the tool), so a runner that
 * dies without cleaning up (SIGKILL, the OOM killer) takes the tool along. For tools that hold a
 * server-wide lock while they run (mydumper's FLUSH TABLES WITH READ LOCK, mariadb-backup's BACKUP
 * STAGE BLOCK_COMMIT: every write or commit on the server waits behind them). Without setpriv the
 * tool runs as it is.
 */
export function diesWithRunner(spec: CommandSpec): CommandSpec {
  const setpriv = process.platform === 'linux' ? findTool(['setpriv']) : undefined;
  // A tool not found on PATH keeps its own "not installed" error (setpriv would only say it failed).
  if (setpriv === undefined || !path.isAbsolute(spec.cmd)) return spec;
  return {
    ...spec,
    cmd: setpriv,
    args: ['--pdeathsig', 'SIGKILL', '--', spec.cmd, ...spec.args],
    label: spec.label ?? path.basename(spec.cmd),
  };
}
