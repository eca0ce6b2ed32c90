import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StorageUrl } from '../../../lib/core/urls';
import { NotFoundError, ObjectInfo, PutOptions, Storage } from './storage';

/**
 * `file:///dir`: objects are files below the directory. Uploads go to a temporary name,
 * are fsynced and renamed into place, so a file at its final name is always whole.
 */
export class FileStorage implements Storage {
  constructor(public readonly url: StorageUrl) {}

  private full(key: string): string {
    const p = path.join(this.url.path, key);
    if (p !== this.url.path && !p.startsWith(this.url.path + path.sep)) throw new Error(`key '${key}' leaves the storage directory`);
    return p;
  }

  private tmpName(p: string): string {
    return `${p}.partial-${process.pid}-${Date.now()}`;
  }

  public async upload(key: string, body: Readable, options: PutOptions = {}): Promise<number> {
    const dest = this.full(key);
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

  public async putBytes(key: string, data: Buffer): Promise<void> {
    const dest = this.full(key);
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
      return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
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
        if (e.isDirectory()) await walk(k);
        else if (e.isFile() && !e.name.includes('.partial-')) out.push({ key: k, size: (await fs.promises.stat(this.full(k))).size });
      }
    };
    await walk(prefix);
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  public async discardIncomplete(prefix: string): Promise<void> {
    if ((await this.stat(`${prefix}/manifest.json`)) !== undefined) throw new Error(`refusing to discard ${prefix}: it has a manifest`);
    await this.removeFolder(prefix);
  }

  public async removeFolder(prefix: string): Promise<void> {
    if (prefix === '') throw new Error('refusing to remove the whole storage directory');
    await fs.promises.rm(this.full(prefix), { recursive: true, force: true });
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
