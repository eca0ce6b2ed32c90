import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DEFAULT_LEFTOVER_HOURS } from '../../../lib/core/contract';
import { StorageUrl } from '../../../lib/core/urls';
import { DirectObject, NotFoundError, ObjectInfo, PutOptions, Storage } from './storage';

/** The buffer a directly written object is read back through for its sha256 (reused: no churn). */
const READ_BACK_CHUNK = 1 << 20;
/** How often a directly written object's new bytes are hashed, and how many go to disk at a time. */
const FOLLOW_MS = 200;
const FLUSH_EVERY = 64 << 20;

/** A backup folder's name: the UTC start second, then the rest of the id. */
const BACKUP_FOLDER_RE = /^\d{8}T\d{6}Z-[A-Za-z0-9._-]+$/;

/** The writer marker inside a backup folder being written: which process on which host writes it. */
export const WRITER_MARKER = '.dbbackup-writer';

/**
 * A manifest-less folder or a partial file counts as left over by a killed run when its writer
 * is known dead (marked from this host, pid gone) or, written elsewhere or unmarked, nothing in it
 * changed for this long.
 * A running backup writes continuously (the stall guard fails it otherwise), so it is never taken.
 */
export const LEFTOVER_AFTER_MS = DEFAULT_LEFTOVER_HOURS * 3600 * 1000;

const HOST_TAG = os
  .hostname()
  .replace(/[^A-Za-z0-9]/g, '')
  .slice(0, 40);

/** Whether process `pid` runs on this host (EPERM: it runs, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What a manifest-less backup folder is: being written, or left over by a killed run. */
export type FolderState = 'running' | 'leftover';

/**
 * `file:///dir`: objects are files below the directory. Uploads go to a temporary name,
 * are fsynced and renamed into place, so a file at its final name is always whole.
 */
export class FileStorage implements Storage {
  private readonly marked = new Set<string>();

  constructor(public readonly url: StorageUrl) {}

  private full(key: string): string {
    const p = path.join(this.url.path, key);
    if (p !== this.url.path && !p.startsWith(this.url.path + path.sep))
      throw new Error(`key '${key}' leaves the storage directory`);
    return p;
  }

  private tmpName(p: string): string {
    return `${p}.partial-${process.pid}.${HOST_TAG}-${Date.now()}`;
  }

  /** Record that this process writes backup folder `key`'s top folder, until its manifest is in place. */
  private async markWriter(key: string): Promise<void> {
    const top = key.split('/')[0];
    if (!BACKUP_FOLDER_RE.test(top) || this.marked.has(top) || key === `${top}/manifest.json`) return;
    this.marked.add(top);
    await fs.promises.mkdir(this.full(top), { recursive: true });
    const marker = JSON.stringify({ host: os.hostname(), pid: process.pid, at: new Date().toISOString() });
    await fs.promises.writeFile(this.full(`${top}/${WRITER_MARKER}`), marker, { mode: 0o640 });
  }

  private async unmarkWriter(top: string): Promise<void> {
    this.marked.delete(top);
    await fs.promises.rm(this.full(`${top}/${WRITER_MARKER}`), { force: true });
  }

  public async upload(key: string, body: Readable, options: PutOptions = {}): Promise<number> {
    const dest = this.full(key);
    await this.markWriter(key);
    await fs.promises.mkdir(path.dirname(dest), { recursive: true });
    const tmp = this.tmpName(dest);
    let size = 0;
    try {
      const out = fs.createWriteStream(tmp, { flags: 'wx', mode: 0o640 });
      body.on('data', (d: Buffer) => (size += d.length));
      await pipeline(body, out, { signal: options.signal });
      await fsyncFile(tmp);
      await fs.promises.rename(tmp, dest);
      await fsyncDir(path.dirname(dest));
      return size;
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * The temporary file of `key`, for the last stage to write (see DirectObject). It is opened for
   * appending (O_APPEND: every write of the stage lands at the end, whatever it does with the
   * offset), so the bytes below its size never change: they are hashed as the file grows, and
   * flushed to disk every FLUSH_EVERY bytes, so that neither the sha256 nor the final fsync waits
   * for a whole dump at the end. The sha256 is of what was read back from the file.
   */
  public async openDirect(key: string): Promise<DirectObject> {
    const dest = this.full(key);
    await this.markWriter(key);
    await fs.promises.mkdir(path.dirname(dest), { recursive: true });
    const tmp = this.tmpName(dest);
    const fh = await fs.promises.open(tmp, 'ax+', 0o640);
    let open = true;
    const close = async () => {
      if (!open) return;
      open = false;
      clearInterval(follow);
      await following;
      await fh.close();
    };
    const hash = crypto.createHash('sha256');
    const buf = Buffer.allocUnsafe(READ_BACK_CHUNK);
    let hashed = 0;
    let flushed = 0;
    let failed: unknown;
    let following: Promise<void> | undefined;
    const catchUp = async () => {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, hashed);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        hashed += bytesRead;
        if (hashed - flushed >= FLUSH_EVERY) {
          await fh.datasync();
          flushed = hashed;
        }
      }
    };
    const follow = setInterval(() => {
      if (following !== undefined || !open) return;
      following = catchUp()
        .catch((e: unknown) => {
          failed ??= e;
        })
        .finally(() => {
          following = undefined;
        });
    }, FOLLOW_MS);
    follow.unref();
    return {
      fd: fh.fd,
      written: () => (open ? fs.fstatSync(fh.fd).size : 0),
      commit: async () => {
        clearInterval(follow);
        await following;
        if (failed !== undefined) throw failed;
        await catchUp();
        await fh.sync();
        await close();
        await fs.promises.rename(tmp, dest);
        await fsyncDir(path.dirname(dest));
        return { size: hashed, sha256: hash.digest('hex') };
      },
      discard: async () => {
        await close().catch(() => undefined);
        await fs.promises.rm(tmp, { force: true });
      },
    };
  }

  public async putBytes(key: string, data: Buffer): Promise<void> {
    const dest = this.full(key);
    await this.markWriter(key);
    await fs.promises.mkdir(path.dirname(dest), { recursive: true });
    const tmp = this.tmpName(dest);
    try {
      const fh = await fs.promises.open(tmp, 'wx', 0o640);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, dest);
      await fsyncDir(path.dirname(dest));
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
    const top = key.split('/')[0];
    if (key === `${top}/manifest.json` && BACKUP_FOLDER_RE.test(top)) await this.unmarkWriter(top);
  }

  public async read(key: string): Promise<Readable> {
    const p = this.full(key);
    const fh = await fs.promises.open(p, 'r').catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new NotFoundError(`${this.url.display}/${key} does not exist`) : e;
    });
    return fh.createReadStream({ highWaterMark: 1 << 20 });
  }

  public async readBytes(key: string): Promise<Buffer> {
    return fs.promises.readFile(this.full(key)).catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new NotFoundError(`${this.url.display}/${key} does not exist`) : e;
    });
  }

  public async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await fs.promises.stat(this.full(key));
      return s.isFile() ? { key, size: s.size } : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  public async listFolders(prefix: string): Promise<string[]> {
    try {
      const entries = await fs.promises.readdir(this.full(prefix), { withFileTypes: true });
      return entries
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  public async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries: fs.Dirent[];
      try {
        entries = await fs.promises.readdir(this.full(rel), { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw e;
      }
      for (const e of entries) {
        const k = rel === '' ? e.name : `${rel}/${e.name}`;
        if (e.name === WRITER_MARKER) continue;
        if (e.isDirectory()) await walk(k);
        else if (e.isFile() && !e.name.includes('.partial-'))
          out.push({ key: k, size: (await fs.promises.stat(this.full(k))).size });
      }
    };
    await walk(prefix);
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  public async discardIncomplete(prefix: string): Promise<void> {
    if ((await this.stat(`${prefix}/manifest.json`)) !== undefined)
      throw new Error(`refusing to discard ${prefix}: it has a manifest`);
    await this.removeFolder(prefix);
  }

  public async removeFolder(prefix: string): Promise<void> {
    if (prefix === '') throw new Error('refusing to remove the whole storage directory');
    await fs.promises.rm(this.full(prefix), { recursive: true, force: true });
    if (BACKUP_FOLDER_RE.test(prefix)) this.marked.delete(prefix);
  }

  /** The newest modification time (ms) of anything under `prefix`, the folder itself included. */
  private async newestChange(prefix: string): Promise<number> {
    let newest = 0;
    const walk = async (p: string): Promise<void> => {
      const st = await fs.promises.lstat(p).catch(() => undefined);
      if (st === undefined) return;
      newest = Math.max(newest, st.mtimeMs);
      if (!st.isDirectory()) return;
      for (const name of await fs.promises.readdir(p).catch(() => [] as string[])) await walk(path.join(p, name));
    };
    await walk(this.full(prefix));
    return newest;
  }

  /** Whether a manifest-less backup folder is being written or was left over by a killed run. */
  public async folderState(folder: string, now = Date.now(), afterMs = LEFTOVER_AFTER_MS): Promise<FolderState> {
    if (this.marked.has(folder)) return 'running';
    const stale = now - (await this.newestChange(folder)) > afterMs;
    let marker: { host?: string; pid?: number } | undefined;
    try {
      marker = JSON.parse(await fs.promises.readFile(this.full(`${folder}/${WRITER_MARKER}`), 'utf8'));
    } catch {
      marker = undefined;
    }
    // Written from this host: its writer's pid decides. From another host (or unmarked): the age.
    if (marker !== undefined && marker.host === os.hostname() && typeof marker.pid === 'number') {
      return alive(marker.pid) ? 'running' : 'leftover';
    }
    return stale ? 'leftover' : 'running';
  }

  /**
   * Remove what killed runs left: manifest-less backup folders that are left over (see
   * `folderState`), and partial files (temporary names) whose writer is gone: known dead on this
   * host, or unchanged for `afterMs` (--leftover-hours). Returns what went.
   */
  public async removeLeftovers(now = Date.now(), afterMs = LEFTOVER_AFTER_MS): Promise<string[]> {
    const removed: string[] = [];
    const tops = await fs.promises.readdir(this.url.path, { withFileTypes: true }).catch(() => [] as fs.Dirent[]);
    for (const e of tops) {
      if (!e.isDirectory() || !BACKUP_FOLDER_RE.test(e.name)) continue;
      if ((await this.stat(`${e.name}/manifest.json`)) !== undefined) continue;
      if ((await this.folderState(e.name, now, afterMs)) !== 'leftover') continue;
      await this.removeFolder(e.name);
      removed.push(`${e.name}/`);
    }
    const walk = async (rel: string): Promise<void> => {
      const entries = await fs.promises.readdir(this.full(rel), { withFileTypes: true }).catch(() => [] as fs.Dirent[]);
      for (const e of entries) {
        const k = rel === '' ? e.name : `${rel}/${e.name}`;
        if (e.isDirectory()) {
          if (!this.marked.has(k)) await walk(k);
          continue;
        }
        const m = /\.partial-(\d+)(?:\.([A-Za-z0-9]*))?-(\d+)$/.exec(e.name);
        if (m === null) continue;
        const st = await fs.promises.lstat(this.full(k)).catch(() => undefined);
        if (st === undefined) continue;
        const dead = m[2] === HOST_TAG && Number(m[1]) !== process.pid && !alive(Number(m[1]));
        if (dead || now - st.mtimeMs > afterMs) {
          await fs.promises.rm(this.full(k), { force: true });
          removed.push(k);
        }
      }
    };
    await walk('');
    return removed;
  }
}

async function fsyncFile(p: string): Promise<void> {
  const fh = await fs.promises.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // some filesystems cannot fsync a directory; the rename is still atomic
  } finally {
    await fh.close();
  }
}
