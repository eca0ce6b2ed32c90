/**
 * A dump tool that writes a directory of files in parallel (pg_dump -F d -j N) streamed out as
 * one tar archive while it runs: each file goes into the stream as soon as it is complete, and is
 * deleted from the spool directory once it is in. The local space used is the files being written
 * plus those waiting for their turn in the stream, not the whole dump.
 *
 * A file is complete when no process of the tool's tree holds it open any more (Linux: the tool's
 * and its children's /proc/PID/fd). The tools only ever create a file (open with O_CREAT, which is
 * atomic with the creation), write it and close it; none is opened again. Where /proc cannot be
 * read the files are streamed when the tool has exited (the spool then holds the whole dump).
 *
 * Given the run's compressor (`compress`), the stream comes out compressed: a file of
 * OWN_COMPRESSOR_BYTES (32 MiB) or more is read by a compressor of its own from the spool file (its bytes
 * never pass through this process), the headers and the smaller files between them go through one
 * compressor per run of them. zstd, gzip and lz4 each decode such concatenated frames as the
 * concatenation of their contents, so the stored artifact is the same tar stream to every reader
 * (`zstd -d | tar -x` included).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { BackupError, ChildProcessError, ConfigError } from '../errors';
import { Child, CommandSpec, ProducedStream, StreamProducer } from './stages';

const BLOCK = 512;
const POLL_MS = 200;
/**
 * A spool file this large gets a compressor of its own. Starting one (and the one for the bytes
 * after it) costs the runner about 10 ms; moving 32 MiB through it costs about 20 ms.
 */
export const OWN_COMPRESSOR_BYTES = 32 << 20;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar header of a regular file or a directory (sizes of 8 GiB and more in base-256, as GNU tar writes them). */
export function tarHeader(name: string, size: number, kind: 'file' | 'directory', mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new BackupError(`tar: name too long: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  h.write(base, 0, 100, 'utf8');
  h.write(octal(kind === 'directory' ? 0o700 : 0o600, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  if (size < 0o77777777777) h.write(octal(size, 12), 124, 'ascii');
  else {
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  h.write(octal(Math.floor(mtime / 1000), 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(kind === 'directory' ? '5' : '0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

/** The pids of `pid`'s children (from /proc/*\/stat), or undefined when /proc cannot be read. */
function childrenOf(pid: number): number[] | undefined {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return undefined;
  }
  const out: number[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/** Names of the files directly in `dir` that one of `pids` holds open; undefined when /proc cannot tell. */
function openIn(dir: string, pids: readonly number[]): Set<string> | undefined {
  const open = new Set<string>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch (e) {
      // The process has exited (its files are closed); any other error: we cannot tell.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return undefined;
    }
    for (const fd of fds) {
      try {
        const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (path.dirname(target) === dir) open.add(path.basename(target));
      } catch {
        // closed meanwhile
      }
    }
  }
  return open;
}

export interface SpoolTarOptions {
  /** The tool, told to write into `dir` (which it creates; it must not exist yet). */
  readonly tool: CommandSpec;
  /** The directory the tool writes (inside a spool directory this producer owns and removes). */
  readonly dir: string;
  /** The archive's top-level directory name (e.g. `database.pgdir`). */
  readonly top: string;
  /** How many child processes the tool forks (pg_dump -j N: N workers); they are looked for until found. */
  readonly children?: number;
  /** Called with the tool's stderr as it arrives. */
  readonly onStderr?: (text: string) => void;
  /** Called once the tool and the stream have ended, in every case (remove the spool). */
  readonly cleanup: () => void;
  /** Called with each file once it is whole in the stream, before it is deleted from the spool. */
  readonly onSent?: (name: string, file: string) => void;
  /**
   * The most the spool may hold at once, in bytes, as the caller estimates it (mydumper -t N: the N
   * largest tables' data). The spool's filesystem must have that much free before the tool starts.
   * @default - no check before the start (a full spool still fails naming TMPDIR)
   */
  readonly expectBytes?: number;
  /**
   * The run's compressor (stdin to stdout): the stream comes out compressed (see the module comment).
   * @default - the stream is the plain tar archive, for the pipeline's compress stage
   */
  readonly compress?: CommandSpec;
  /**
   * With `compress`: a file opened for appending that the compressors write, one after another
   * (no byte passes through this process; stdout stays empty).
   * @default - the compressed stream is stdout
   */
  readonly outputFd?: number;
  /** With `compress`: the size from which a file gets a compressor of its own. @default OWN_COMPRESSOR_BYTES */
  readonly ownCompressorBytes?: number;
}

/**
 * The compressed stream of a spool (see the module comment): bytes written go to the current
 * segment's compressor, a large file to a compressor of its own reading it; each compressor's
 * output goes to `out` in turn, whole before the next one's.
 */
class CompressedSegments {
  private current?: { child: Child; ended: Promise<void> };
  private readonly running = new Set<Child>();

  constructor(
    private readonly spec: CommandSpec,
    private readonly out: PassThrough,
    private readonly onActivity: () => void,
    private readonly outputFd?: number,
  ) {}

  private spawn(stdin: 'pipe' | number): { child: Child; ended: Promise<void> } {
    const child = new Child(this.spec, [stdin, this.outputFd ?? 'pipe', 'pipe']);
    this.running.add(child);
    child.process.stdin?.on('error', () => undefined); // a compressor gone: its exit says why
    const stdout = child.process.stdout;
    let drained = Promise.resolve();
    if (stdout !== null) {
      stdout.on('data', () => this.onActivity());
      stdout.pipe(this.out, { end: false });
      drained = new Promise<void>((resolve, reject) => {
        stdout.once('end', resolve);
        stdout.once('error', reject);
      });
    }
    const ended = Promise.all([drained, child.done]).then(
      () => void this.running.delete(child),
      (e) => {
        this.running.delete(child);
        throw e;
      },
    );
    ended.catch(() => undefined);
    return { child, ended };
  }

  /** Bytes into the current segment (a compressor is started when none runs). */
  public async write(b: Buffer): Promise<void> {
    this.current ??= this.spawn('pipe');
    const { child, ended } = this.current;
    const stdin = child.process.stdin!;
    if (stdin.write(b)) return;
    // Full: wait for room, or for the compressor's end (a failure, said by its exit).
    await new Promise<void>((resolve) => {
      const done = () => {
        stdin.off('drain', done);
        stdin.off('close', done);
        resolve();
      };
      stdin.once('drain', done);
      stdin.once('close', done);
    });
    if (stdin.destroyed) {
      await ended;
      throw new BackupError(`${child.label} stopped reading the archive stream`);
    }
  }

  /** End the current segment: all of its compressed bytes are in `out` once this resolves. */
  public async close(): Promise<void> {
    const segment = this.current;
    if (segment === undefined) return;
    this.current = undefined;
    segment.child.process.stdin!.end();
    await segment.ended;
  }

  /** A file's bytes (the descriptor at offset 0), by a compressor of its own reading it. */
  public async file(fd: number): Promise<void> {
    await this.close();
    await this.spawn(fd).ended;
  }

  public kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    for (const c of this.running) c.kill(signal);
  }
}

/** Bytes in binary units, for messages (`1.5 GiB`). */
function bytesText(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[i]}`;
}

/** The bytes an unprivileged process may still write on the filesystem of `dir` (undefined: cannot tell). */
function freeBytes(dir: string): number | undefined {
  try {
    const st = fs.statfsSync(dir);
    return st.bavail * st.bsize;
  } catch {
    return undefined;
  }
}

/** How to give the spool more room: said by both the check before the start and a full spool. */
const SPOOL_FIX =
  'give TMPDIR a directory on a filesystem with more free space, fewer --jobs, or --jobs 1 (one stream, no spool)';

/** The spool's filesystem must hold `expectBytes` (see SpoolTarOptions.expectBytes); ConfigError otherwise. */
export function checkSpoolSpace(spool: string, expectBytes: number | undefined, tool: string): void {
  if (expectBytes === undefined || expectBytes <= 0) return;
  const free = freeBytes(spool);
  if (free === undefined || free >= expectBytes) return;
  throw new ConfigError(
    `the spool of ${tool} in TMPDIR (${spool}) may need up to ${bytesText(expectBytes)} (${expectBytes} bytes), ` +
      `but its filesystem has ${bytesText(free)} (${free} bytes) free; ${SPOOL_FIX}.`,
  );
}

/** A tool's failure that was the spool filling its filesystem, said as such; any other error as it is. */
function spoolFull(e: unknown, spool: string, tool: string): unknown {
  const tail = e instanceof ChildProcessError ? e.stderrTail : '';
  if (!/No space left on device|ENOSPC|errno[ :]*28\b/i.test(`${tail}\n${(e as Error)?.message ?? ''}`)) return e;
  const free = freeBytes(spool);
  return new BackupError(
    `the spool in TMPDIR (${spool}) filled its filesystem: ${tool} could not write (No space left on device)` +
      `${free !== undefined ? `; ${bytesText(free)} free now that the spool is removed` : ''}; ${SPOOL_FIX}. ` +
      `(${(e as Error).message})`,
  );
}

/** The stream of a started spool-tar producer; kill() takes the signal (a tool that must not go on: SIGKILL). */
export interface SpoolTarStream extends ProducedStream {
  kill(signal?: NodeJS.Signals): void;
}

/** A tool writing a directory, as a StreamProducer of one tar archive (see the module comment). */
export function spoolTarProducer(options: SpoolTarOptions): StreamProducer {
  return {
    label: options.tool.label ?? path.basename(options.tool.cmd),
    compresses: true,
    start: (onActivity, compress, outputFd) =>
      startSpoolTar({ ...options, compress: compress ?? options.compress, outputFd }, onActivity),
  };
}

/** Start the tool and its archive stream (as spoolTarProducer(options).start does). */
export function startSpoolTar(options: SpoolTarOptions, onActivity: () => void): SpoolTarStream {
  const { dir, top } = options;
  const spool = path.dirname(dir);
  const label = options.tool.label ?? path.basename(options.tool.cmd);
  try {
    checkSpoolSpace(spool, options.expectBytes, label);
  } catch (e) {
    options.cleanup();
    throw e;
  }
  const child = new Child(options.tool, ['ignore', 'ignore', 'pipe']);
  if (options.onStderr !== undefined) child.process.stderr!.on('data', (d: Buffer) => options.onStderr!(d.toString()));
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const segments =
    options.compress !== undefined
      ? new CompressedSegments(options.compress, out, onActivity, options.outputFd)
      : undefined;
  let stopped = false;
  let exited = false;
  let failed = false;
  // The poll's sleep ends early when the tool exits: its last files go into the stream at once.
  let wake = () => {};
  child.done.then(
    () => {
      exited = true;
      wake();
    },
    () => {
      exited = true;
      failed = true;
      wake();
    },
  );
  const sent = new Set<string>();
  const workers = new Set<number>();
  let lastSpoolBytes = -1;

  const write = async (b: Buffer): Promise<void> => {
    if (stopped) throw new BackupError('stopped');
    if (segments !== undefined) return segments.write(b);
    if (!out.write(b)) {
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          out.off('drain', done);
          out.off('close', closed);
          resolve();
        };
        const closed = () => {
          out.off('drain', done);
          reject(new BackupError('the archive stream was closed'));
        };
        out.once('drain', done);
        out.once('close', closed);
      });
    }
  };

  const ownBytes = options.ownCompressorBytes ?? OWN_COMPRESSOR_BYTES;
  const send = async (name: string): Promise<void> => {
    const file = path.join(dir, name);
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new BackupError(`${file} is not a regular file; a dump writes only files`);
      await write(tarHeader(`${top}/${name}`, st.size, 'file', st.mtimeMs));
      if (segments !== undefined && st.size >= ownBytes) {
        if (stopped) throw new BackupError('stopped');
        await segments.file(fd);
        const after = fs.fstatSync(fd);
        if (after.size !== st.size)
          throw new BackupError(`${file} changed size while it was compressed (${st.size}, then ${after.size} bytes)`);
      } else {
        let left = st.size;
        while (left > 0) {
          // A new buffer each time: the stream keeps the chunk until it is read.
          const buf = Buffer.allocUnsafe(Math.min(1 << 20, left));
          const n = fs.readSync(fd, buf, 0, buf.length, null);
          if (n === 0) throw new BackupError(`${file} shrank while it was read (it was ${st.size} bytes)`);
          await write(n === buf.length ? buf : buf.subarray(0, n));
          left -= n;
        }
      }
      const pad = (BLOCK - (st.size % BLOCK)) % BLOCK;
      if (pad > 0) await write(Buffer.alloc(pad));
    } finally {
      fs.closeSync(fd);
    }
    options.onSent?.(name, file);
    fs.unlinkSync(file);
    sent.add(name);
  };

  const loop = async (): Promise<void> => {
    await write(tarHeader(`${top}/`, 0, 'directory', Date.now()));
    for (;;) {
      // Whether the tool had ended before the listing: then every file listed is complete.
      const ended = exited;
      if (failed) break;
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir).sort();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      // Listed first, then the tree: a file listed was made by a process alive before the scan.
      let open: Set<string> | undefined = new Set();
      const pid = child.process.pid;
      if (!ended && pid !== undefined && names.some((n) => !sent.has(n))) {
        if (workers.size < (options.children ?? 0)) for (const w of childrenOf(pid) ?? []) workers.add(w);
        open = openIn(dir, [pid, ...workers]);
      } else if (!ended) open = undefined;
      let spoolBytes = 0;
      for (const name of names) {
        if (stopped) return;
        if (sent.has(name)) continue;
        if (open === undefined || open.has(name)) {
          try {
            spoolBytes += fs.statSync(path.join(dir, name)).size;
          } catch {
            // gone
          }
          continue;
        }
        await send(name);
        onActivity();
      }
      if (spoolBytes !== lastSpoolBytes) {
        lastSpoolBytes = spoolBytes;
        onActivity();
      }
      if (ended) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
        if (exited) wake();
      });
    }
    await child.done;
    // The end of the archive: two zero blocks.
    await write(Buffer.alloc(2 * BLOCK));
    await segments?.close();
    out.end();
  };

  const done = (async () => {
    try {
      // A failure of the stream (the stages after it stopped) stops the tool too.
      const streaming = loop().catch((e) => {
        child.kill();
        throw e;
      });
      const [l, c] = await Promise.allSettled([streaming, child.done]);
      // The tool's failure is the cause; a failure of the loop (disk, a stopped stream) otherwise,
      // and a compressor's own failure, for which the tool was stopped.
      const compressorFailed = l.status === 'rejected' && l.reason instanceof ChildProcessError && child.killedByUs;
      if (c.status === 'rejected' && !compressorFailed) throw c.reason;
      if (l.status === 'rejected') throw l.reason;
    } catch (e) {
      child.kill();
      stopped = true;
      segments?.kill();
      out.destroy();
      options.cleanup();
      throw spoolFull(e, spool, label);
    }
    options.cleanup();
  })();
  done.catch(() => undefined);
  return {
    stdout: out,
    done,
    compressed: segments !== undefined,
    kill: (signal?: NodeJS.Signals) => {
      stopped = true;
      child.kill(signal);
      segments?.kill(signal);
    },
  };
}
