import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const MiB = 1024 * 1024;

/** Parts/blocks up to this size are held in memory; larger ones are spooled to a 0600 file. */
export const MEMORY_SPOOL_LIMIT = 64 * MiB;

/** The bytes of a filled part: in memory, or in a spool file; `free` releases them. */
export type Spooled =
  | { readonly bytes: Buffer; readonly path?: undefined; readonly free: () => Promise<void> }
  | { readonly bytes?: undefined; readonly path: string; readonly free: () => Promise<void> };

/**
 * One part of a streamed multipart upload (an S3 part, an Azure block) being filled: in memory
 * when its size limit is small, else in a private spool file, so memory stays flat whatever the
 * part size. Shared by the S3 and Azure backends.
 */
export class SpoolBuffer {
  private chunks: Buffer[] = [];
  private file?: { path: string; fh: fs.promises.FileHandle };
  public size = 0;

  constructor(
    public readonly limit: number,
    private readonly label: string,
  ) {}

  public async add(chunk: Buffer): Promise<void> {
    this.size += chunk.length;
    if (this.limit <= MEMORY_SPOOL_LIMIT) {
      this.chunks.push(chunk);
      return;
    }
    if (this.file === undefined) {
      const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), `dbbackup-${this.label}-`));
      const p = path.join(dir, this.label);
      this.file = { path: p, fh: await fs.promises.open(p, 'wx', 0o600) };
    }
    await this.file.fh.write(chunk);
  }

  /** The filled bytes, and a function that frees them. */
  public async take(): Promise<Spooled> {
    if (this.file === undefined) {
      const bytes = Buffer.concat(this.chunks, this.size);
      this.chunks = [];
      return { bytes, free: async () => undefined };
    }
    const { path: p, fh } = this.file;
    await fh.close();
    return { path: p, free: () => fs.promises.rm(path.dirname(p), { recursive: true, force: true }) };
  }
}
