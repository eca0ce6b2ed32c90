import { ChildProcess, spawn, StdioOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { SECRET_ENV } from '../../lib/core/contract';
import { ChildProcessError } from './errors';

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
  private tail = '';

  constructor(spec: CommandSpec, stdio: StdioOptions) {
    this.label = spec.label ?? path.basename(spec.cmd);
    const io = spec.fds !== undefined && Array.isArray(stdio) ? [...stdio, ...spec.fds] : stdio;
    this.process = spawn(spec.cmd, [...spec.args], { stdio: io, env: childEnv(spec.env) });
    this.process.stderr?.on('data', (d: Buffer) => {
      this.tail = (this.tail + d.toString('utf8')).slice(-8192);
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
      this.process.kill(signal);
    }
  }
}

/** Where a pipeline's first stage reads from. */
export type PipelineInput = { readonly kind: 'none' } | { readonly kind: 'pipe' } | { readonly kind: 'fd'; readonly fd: number };

/**
 * Processes joined stdout to stdin by the operating system (no copy through this process),
 * the last stage's stdout readable here. Every stage is awaited: no failure is masked.
 */
export class Pipeline {
  public readonly children: Child[] = [];
  /** The first stage's stdin, when the input is `pipe`. */
  public readonly stdin?: Writable;
  /** The last stage's stdout. */
  public readonly stdout: Readable;

  constructor(specs: readonly CommandSpec[], input: PipelineInput = { kind: 'none' }) {
    if (specs.length === 0) throw new Error('a pipeline needs at least one stage');
    let prev: Readable | number | 'pipe' | 'ignore' = input.kind === 'none' ? 'ignore' : input.kind === 'pipe' ? 'pipe' : input.fd;
    for (const spec of specs) {
      const child = new Child(spec, [prev, 'pipe', 'pipe']);
      if (prev instanceof Readable) prev.destroy(); // the next child holds the pipe now; we must not
      this.children.push(child);
      prev = child.process.stdout!;
    }
    this.stdin = input.kind === 'pipe' ? this.children[0].process.stdin! : undefined;
    this.stdout = this.children[this.children.length - 1].process.stdout!;
  }

  /** Kill every stage that still runs. */
  public kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    for (const c of this.children) c.kill(signal);
  }

  /**
   * Wait for every stage. If any fails, the others are killed and the error of the stage
   * that failed first on its own (not from a broken pipe or our kill) is thrown.
   */
  public async wait(options: { consumerMayExitEarly?: boolean } = {}): Promise<void> {
    const last = this.children[this.children.length - 1];
    const results = await Promise.allSettled(
      this.children.map((c) =>
        c.done.catch((e) => {
          this.kill();
          throw e;
        }),
      ),
    );
    const failures = results
      .map((r, i) => ({ r, c: this.children[i] }))
      .filter((x): x is { r: PromiseRejectedResult; c: Child } => x.r.status === 'rejected');
    if (failures.length === 0) return;
    // A consumer (pg_restore) may finish without reading the last bytes it does not need;
    // the stages before it then die of SIGPIPE. That is success when the consumer said so.
    if (
      options.consumerMayExitEarly === true &&
      results[results.length - 1].status === 'fulfilled' &&
      failures.every((f) => f.c !== last && (f.r.reason as ChildProcessError).signal === 'SIGPIPE')
    ) {
      return;
    }
    // The root cause is the first stage, in pipeline order, that exited with an error code:
    // stages after it fail because its output ended early, stages before it die of the broken
    // pipe. An exit code counts even if our kill reached the stage after it had exited but
    // before its exit was seen. Without one, the first stage that died of a signal we did not send.
    const exited = failures.find((f) => (f.r.reason as ChildProcessError).signal === null && typeof (f.r.reason as ChildProcessError).exitCode === 'number');
    const own = failures.find((f) => !f.c.killedByUs && (f.r.reason as ChildProcessError).signal !== 'SIGPIPE');
    throw (exited ?? own ?? failures[0]).r.reason;
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
