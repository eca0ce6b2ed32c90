/**
 * Laying an archive down in a directory without ever writing outside it.
 *
 * - `ConfinedDir` writes below one directory only: every path is checked to stay inside it,
 *   every directory on the way is created here (0700) or checked to be a real directory, files
 *   are opened with O_NOFOLLOW, and new ones with O_CREAT|O_EXCL (0600), so a link planted at a
 *   name is never followed. On Linux the directory is held open and reached through
 *   /proc/self/fd/N, so renaming it or its parents mid-way cannot redirect the writes.
 * - `extractTar` reads a tar stream in this process (see tar.ts) and writes regular files and
 *   directories only, with modes 0600/0700 and the running user as owner: a member that is a
 *   link, a device, a FIFO or a set-uid/set-gid file, or whose path is absolute or climbs out
 *   with `..`, stops the extraction with a DamagedError naming it.
 *
 * Why not `tar -x`: GNU tar's own protections (no absolute names, no `..`) still follow a
 * symbolic link that an earlier member planted, and restore the archive's owners and modes when
 * run as root; checking a listing first would need a second read of the whole stream.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { BackupError, DamagedError } from '../errors';
import { TarKind, TarMember, TarReader } from './tar';

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
const SET_ID_BITS = 0o6000;
const WRITE_BATCH = 1 << 20;

/** A user and group to hand a laid-down tree to. */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** A member name as a path inside the directory ('' for the directory itself), or what is wrong with it. */
export function memberPath(name: string): { path: string } | { problem: string } {
  if (name.includes('\0')) return { problem: 'its name holds a NUL byte' };
  if (name.startsWith('/')) return { problem: 'its path is absolute' };
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { problem: `its path climbs out with '..'` };
  return { path: parts.join('/') };
}

function kindOf(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'file';
  return 'special file';
}

/** A directory that everything below is written into and nothing outside of. */
export class ConfinedDir {
  /** Directories (relative) known to be real directories: made here, or checked. */
  private readonly dirs = new Set<string>(['']);

  private constructor(
    /** The directory, as given (for messages). */
    public readonly root: string,
    private readonly fd: number,
    /** The path the kernel resolves to the directory held open. */
    private readonly base: string,
  ) {}

  /** Hold `root` (an existing directory, not a symbolic link) open for writing below it. */
  public static async open(root: string): Promise<ConfinedDir> {
    let fd: number;
    try {
      fd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new BackupError(
        `cannot use ${root} as the target directory: ` +
          `${code === 'ELOOP' || code === 'ENOTDIR' ? 'it is not a directory (or is a symbolic link)' : code}`,
      );
    }
    const proc = `/proc/self/fd/${fd}`;
    const base = process.platform === 'linux' && fs.existsSync(proc) ? proc : root;
    return new ConfinedDir(root, fd, base);
  }

  /** Where `rel` is, for messages. */
  public display(rel: string): string {
    return rel === '' ? this.root : path.join(this.root, rel);
  }

  private real(rel: string): string {
    return rel === '' ? this.base : `${this.base}/${rel}`;
  }

  private fail(what: string, rel: string, e: unknown): never {
    const err = e as NodeJS.ErrnoException;
    if (err instanceof BackupError || err instanceof DamagedError) throw err;
    throw new BackupError(`could not ${what} ${this.display(rel)}: ${err.code ?? err.message}`);
  }

  private checked(rel: string): string {
    const p = memberPath(rel);
    if ('problem' in p || p.path !== rel || rel === '') {
      throw new BackupError(`refusing to write '${rel}' in ${this.root}: not a plain relative path`);
    }
    return rel;
  }

  /** Make `rel` and its parents as real directories (0700); an existing non-directory on the way is refused. */
  public async mkdirs(rel: string): Promise<void> {
    if (rel === '' || this.dirs.has(rel)) return;
    this.checked(rel);
    let cur = '';
    for (const part of rel.split('/')) {
      cur = cur === '' ? part : `${cur}/${part}`;
      if (this.dirs.has(cur)) continue;
      try {
        await fs.promises.mkdir(this.real(cur), { mode: DIR_MODE });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') this.fail('create the directory', cur, e);
        const st = await fs.promises.lstat(this.real(cur));
        if (!st.isDirectory()) {
          throw new BackupError(
            `${this.display(cur)} already exists as a ${kindOf(st)}, where a directory belongs; ` +
              `refusing to write through it.`,
          );
        }
      }
      // Whatever the umask: PostgreSQL wants its directories 0700.
      await fs.promises.chmod(this.real(cur), DIR_MODE).catch((e) => this.fail('set the mode of', cur, e));
      this.dirs.add(cur);
    }
  }

  /**
   * Open a new file `rel` (0600) for writing: O_CREAT|O_EXCL|O_NOFOLLOW, so an existing name (a
   * link above all) is never written through. With `replace`, an existing regular file of that
   * name is removed first (anything else there is refused).
   */
  public async create(rel: string, options: { replace?: boolean } = {}): Promise<fs.promises.FileHandle> {
    this.checked(rel);
    await this.mkdirs(path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel));
    if (options.replace === true) {
      const st = await fs.promises.lstat(this.real(rel)).catch(() => undefined);
      if (st !== undefined && !st.isFile()) {
        throw new BackupError(`${this.display(rel)} is a ${kindOf(st)}, not a file; refusing to replace it.`);
      }
      if (st !== undefined) await fs.promises.unlink(this.real(rel)).catch((e) => this.fail('replace', rel, e));
    }
    const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(this.real(rel), flags, FILE_MODE);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        const st = await fs.promises.lstat(this.real(rel)).catch(() => undefined);
        throw new BackupError(
          `${this.display(rel)} already exists${st === undefined ? '' : ` (a ${kindOf(st)})`}; ` +
            `refusing to write through or over it.`,
        );
      }
      this.fail('create', rel, e);
    }
    await fh.chmod(FILE_MODE);
    return fh;
  }

  /** Write a new file `rel` from bytes or a stream of chunks (see create). */
  public async writeFile(
    rel: string,
    data: Buffer | AsyncIterable<Buffer>,
    options: { replace?: boolean } = {},
  ): Promise<number> {
    const fh = await this.create(rel, options);
    let n = 0;
    // Chunks are gathered into writes of about 1 MiB: fewer system calls than one per pipe read.
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = async () => {
      const { bytesWritten } = await fh.writev(batch);
      if (bytesWritten < batched) await writeAll(fh, Buffer.concat(batch, batched).subarray(bytesWritten));
      batch = [];
      batched = 0;
    };
    try {
      for await (const chunk of Buffer.isBuffer(data) ? [data] : data) {
        batch.push(chunk);
        batched += chunk.length;
        n += chunk.length;
        if (batched >= WRITE_BATCH) await flush();
      }
      if (batched > 0) await flush();
    } finally {
      await fh.close();
    }
    return n;
  }

  /** Append to the regular file `rel` (made if absent), never through a link or into a file with other names. */
  public async appendFile(rel: string, data: Buffer): Promise<void> {
    this.checked(rel);
    await this.mkdirs(path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel));
    let fh: fs.promises.FileHandle;
    try {
      const flags = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW;
      fh = await fs.promises.open(this.real(rel), flags);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        await this.writeFile(rel, data);
        return;
      }
      if (code === 'ELOOP') {
        throw new BackupError(`${this.display(rel)} is a symbolic link; refusing to write through it.`);
      }
      this.fail('open', rel, e);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.nlink !== 1) {
        throw new BackupError(
          `${this.display(rel)} is not a plain file (a ` +
            `${st.isFile() ? `file with ${st.nlink} links` : 'special file'}); refusing to write to it.`,
        );
      }
      await writeAll(fh, data);
    } finally {
      await fh.close();
    }
  }

  /**
   * Hand everything below (and the directory itself) to `owner`. Depth first, each directory
   * after its contents: until then it stays ours (0700), so its new owner cannot swap an entry
   * for a link while the walk is inside it. Links are never followed (lstat/lchown).
   */
  public async chownAll(owner: Owner): Promise<void> {
    const walk = async (rel: string): Promise<void> => {
      const st = await fs.promises.lstat(this.real(rel));
      if (st.isDirectory()) {
        for (const e of await fs.promises.readdir(this.real(rel))) await walk(`${rel}/${e}`.replace(/^\//, ''));
      }
      if (st.uid !== owner.uid || st.gid !== owner.gid) await fs.promises.lchown(this.real(rel), owner.uid, owner.gid);
    };
    try {
      // The directory itself through its descriptor (its /proc path is a link).
      for (const e of await this.entries()) await walk(e);
      fs.fchownSync(this.fd, owner.uid, owner.gid);
    } catch (e) {
      this.fail('hand over', '', e);
    }
  }

  /** The names directly inside the directory. */
  public entries(): Promise<string[]> {
    return fs.promises.readdir(this.base);
  }

  /** Make the directory itself ours (when root) and 0700: nobody else can plant a name in it while it is written. */
  public secure(): void {
    const uid = process.getuid?.();
    if (uid === 0) fs.fchownSync(this.fd, 0, 0);
    fs.fchmodSync(this.fd, DIR_MODE);
  }

  /** Give the directory itself back its owner and mode. */
  public restore(owner: Owner, mode: number): void {
    if (process.getuid?.() === 0) fs.fchownSync(this.fd, owner.uid, owner.gid);
    fs.fchmodSync(this.fd, mode & 0o7777);
  }

  /** Remove everything inside the directory (links are removed, never followed). */
  public async removeContents(): Promise<void> {
    for (const e of await this.entries()) await fs.promises.rm(`${this.base}/${e}`, { recursive: true, force: true });
  }

  public close(): void {
    fs.closeSync(this.fd);
  }
}

async function writeAll(fh: fs.promises.FileHandle, chunk: Buffer): Promise<void> {
  let off = 0;
  while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
}

/** How the caller treats some members. */
export interface ExtractRules {
  /** Says what the archive is, for messages ("the base tar of backup X"). */
  readonly what: string;
  /** Refuse this file member (returns why), by its normalised path. */
  readonly refuse?: (member: TarMember, rel: string) => string | undefined;
  /** Leave this member out (returns why, for the log), by its normalised path. */
  readonly skip?: (member: TarMember, rel: string) => string | undefined;
  /** Keep these members' bytes in memory (at most `maxHeld` each) instead of writing them. */
  readonly hold?: ReadonlySet<string>;
  readonly maxHeld?: number;
  /** What to do about a refused member, by its normalised path (e.g. a tablespace link). */
  readonly advice?: (member: TarMember, rel: string | undefined) => string | undefined;
  /**
   * Called once each file is whole on disk, by its normalised path, before the next member is
   * read: a consumer may use it while the archive still streams (a rejection stops the extraction).
   */
  readonly onFile?: (rel: string, size: number) => void | Promise<void>;
}

export interface Extracted {
  readonly files: number;
  readonly directories: number;
  readonly bytes: number;
  /** The held members' bytes, by path. */
  readonly held: ReadonlyMap<string, Buffer>;
  readonly skipped: readonly string[];
}

function describe(m: TarMember): string {
  if (m.kind === TarKind.SYMLINK) return `a symbolic link to '${m.linkname}'`;
  if (m.kind === TarKind.HARDLINK) return `a hard link to '${m.linkname}'`;
  if (m.kind === TarKind.OTHER) {
    return `a member of type '${m.typeflag.replace(/[^\x20-\x7e]/g, '?')}' (not a file or directory)`;
  }
  if (m.kind === TarKind.FILE) {
    return `a set-${(m.mode & 0o4000) !== 0 ? 'uid' : 'gid'} file (mode ${m.mode.toString(8)})`;
  }
  return `a ${m.kind}`;
}

/**
 * Extract the tar stream `source` into `dir`: regular files (0600) and directories (0700) only,
 * owned by the running user; anything else is refused (see the module comment). Reads the
 * whole stream on success; on a refusal it stops reading and leaves the rest to the caller.
 */
export async function extractTar(source: Readable, dir: ConfinedDir, rules: ExtractRules): Promise<Extracted> {
  // On a refusal the stream is left to drain (never destroyed), so the stages producing it finish.
  const input = source.iterator({ destroyOnReturn: false });
  const reader = new TarReader(input);
  try {
    return await extractMembers(reader, dir, rules);
  } catch (e) {
    await input.return?.();
    source.resume();
    throw e;
  }
}

async function extractMembers(reader: TarReader, dir: ConfinedDir, rules: ExtractRules): Promise<Extracted> {
  const held = new Map<string, Buffer>();
  const skipped: string[] = [];
  let files = 0;
  let directories = 0;
  let bytes = 0;
  const refuse = (m: TarMember, why: string, rel?: string): never => {
    const advice = rules.advice?.(m, rel);
    throw new DamagedError(
      `${rules.what} holds '${m.name}' (at byte ${m.offset}), ${why}: a restore writes only regular files ` +
        `and directories, all inside ${dir.root} (no links, devices, FIFOs or set-uid/set-gid files, ` +
        `no paths leading out), so it stopped there.` +
        (advice === undefined ? '' : ` ${advice}`),
    );
  };
  for (;;) {
    const m = await reader.next();
    if (m === undefined) break;
    const p = memberPath(m.name);
    if ('problem' in p) refuse(m, p.problem);
    const rel = (p as { path: string }).path;
    if (m.kind !== TarKind.FILE && m.kind !== TarKind.DIRECTORY) refuse(m, `which is ${describe(m)}`, rel);
    if (m.kind === TarKind.FILE && (m.mode & SET_ID_BITS) !== 0) refuse(m, `which is ${describe(m)}`, rel);
    if (m.kind === TarKind.DIRECTORY) {
      // Set-gid on a directory is inherited from its parent on many systems, and modes are not applied: harmless.
      await dir.mkdirs(rel);
      directories++;
      continue;
    }
    if (rel === '') refuse(m, 'a file in place of the directory itself');
    const refusal = rules.refuse?.(m, rel);
    if (refusal !== undefined) refuse(m, refusal, rel);
    const why = rules.skip?.(m, rel);
    if (why !== undefined) {
      skipped.push(`${rel} (${why})`);
      continue;
    }
    if (rules.hold?.has(rel) === true) {
      const max = rules.maxHeld ?? 1 << 20;
      if (m.size > max) refuse(m, `which is ${m.size} bytes, more than the ${max} this file can be`, rel);
      if (held.has(rel)) refuse(m, 'which appears twice', rel);
      const chunks: Buffer[] = [];
      for await (const c of reader.body()) chunks.push(c);
      held.set(rel, Buffer.concat(chunks));
      continue;
    }
    const size = await dir.writeFile(rel, reader.body());
    bytes += size;
    files++;
    await rules.onFile?.(rel, size);
  }
  // Read the stream to its end (padding after the end marker), so its producer can finish.
  await reader.drain();
  return { files, directories, bytes, held, skipped };
}
