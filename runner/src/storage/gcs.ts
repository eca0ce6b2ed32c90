/**
 * `gs://bucket/prefix` over the Cloud Storage JSON API with Node's fetch. The parts, each one job:
 * gcs/client.ts (endpoint, URLs, one request with retries, errors), gcs/names.ts (tier folders:
 * logical key ↔ object name), gcs/listing.ts (metadata and listing), gcs/resumable.ts (streamed
 * resumable uploads), gcs/objects.ts (single-request writes, resuming reads); gcs-auth.ts the
 * credentials.
 */
import { buffer } from 'node:stream/consumers';
import type { Readable } from 'node:stream';
import type { StorageUrl } from '../../../lib/core/urls';
import { log } from '../log';
import { GcsClient, gcsEndpoint, RETRY_DELAYS_MS } from './gcs/client';
import { listAll, objectMetadata } from './gcs/listing';
import { TierFolders } from './gcs/names';
import { putObject, readObject } from './gcs/objects';
import { chunkSizeFor, ResumableUpload } from './gcs/resumable';
import { defaultCredentials, type TokenSource } from './gcs-auth';
import { NotFoundError, type ObjectInfo, type PutOptions, type Storage } from './storage';

export { GcsError, gcsEndpoint } from './gcs/client';
export { chunkSizeFor, GCS_CHUNK_QUANTUM } from './gcs/resumable';

/** How to reach Cloud Storage; every field defaults from the environment. */
export interface GcsOptions {
  /** @default - `STORAGE_EMULATOR_HOST`, else https://storage.googleapis.com */
  readonly endpoint?: string;
  /** @default - Application Default Credentials (see gcs-auth.ts) */
  readonly credentials?: TokenSource;
  /** The size of chunk `n` of a resumable upload; a multiple of 256 KiB. @default chunkSizeFor */
  readonly chunkSize?: (n: number) => number;
  /** Waits between retries of a failed request. @default - 0.5 s doubling to 16 s, 6 retries */
  readonly retryDelaysMs?: readonly number[];
}

/**
 * Streamed resumable uploads (chunks of growing size, two at most in memory, each retried from
 * what the session holds), single-request uploads for small objects, every write with
 * `ifGenerationMatch=0` (a name is written once; the runner's `objectCreator` role could not
 * overwrite it anyway).
 *
 * **Tiers are folders.** GCS lifecycle rules match object names, not metadata, so a backup lives
 * at `<prefix>/<tier>/<backup id>/…` (the tier from `PutOptions.tier`, fixed at backup start) and
 * the bucket's rules expire `<prefix>/<tier>/`. Callers keep using logical keys `<id>/<name>`
 * (gcs/names.ts). The tier is also stored as the object metadata `dbbackup-tier`, for people to read.
 */
export class GcsStorage implements Storage {
  private readonly client: GcsClient;
  private readonly names: TierFolders;
  private readonly chunkSize: (n: number) => number;

  constructor(
    public readonly url: StorageUrl,
    options: GcsOptions = {},
  ) {
    const ep = gcsEndpoint();
    const credentials =
      options.credentials ??
      defaultCredentials(process.env, { emulator: options.endpoint !== undefined || ep.emulator });
    const base = (options.endpoint ?? ep.base).replace(/\/+$/, '');
    this.client = new GcsClient(base, url, credentials, options.retryDelaysMs ?? RETRY_DELAYS_MS);
    this.names = new TierFolders(this.client);
    this.chunkSize = options.chunkSize ?? chunkSizeFor;
  }

  public async upload(key: string, body: Readable, options: PutOptions = {}): Promise<number> {
    const name = await this.names.nameForWrite(key, options.tier);
    return new ResumableUpload(this.client, name, this.chunkSize).run(body, options);
  }

  public async putBytes(key: string, data: Buffer, options: PutOptions = {}): Promise<void> {
    const name = await this.names.nameForWrite(key, options.tier);
    await putObject(this.client, name, key, data, options);
  }

  public async read(key: string): Promise<Readable> {
    const name = await this.names.nameForRead(key);
    if (name === undefined) throw new NotFoundError(`${this.url.display}/${key} does not exist`);
    return readObject(this.client, name, key);
  }

  public async readBytes(key: string): Promise<Buffer> {
    return buffer(await this.read(key));
  }

  public async stat(key: string): Promise<ObjectInfo | undefined> {
    const name = await this.names.nameForRead(key);
    if (name === undefined) return undefined;
    const m = await objectMetadata(this.client, name);
    return m === undefined ? undefined : { key, size: Number(m.size ?? 0) };
  }

  public async listFolders(prefix: string): Promise<string[]> {
    if (prefix === '') return this.names.topFolders();
    const name = await this.names.nameForRead(prefix);
    if (name === undefined) return [];
    const { prefixes } = await listAll(this.client, name + '/', '/');
    return prefixes.map((p) => p.slice(name.length + 1).replace(/\/$/, '')).sort();
  }

  public async list(prefix: string): Promise<ObjectInfo[]> {
    const name = prefix === '' ? '' : await this.names.nameForRead(prefix);
    if (name === undefined) return [];
    const { items } = await listAll(this.client, name === '' ? this.names.root : name + '/');
    return items
      .map((o) => ({ key: this.names.logical(o.name), size: Number(o.size ?? 0) }))
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  public async discardIncomplete(prefix: string): Promise<void> {
    const left = await this.list(prefix);
    if (left.length > 0) {
      log.warn(
        `${left.length} object(s) of the failed backup stay under ${prefix}/ without a manifest ` +
          "(never taken for a backup); the runner cannot delete on gs://, the bucket's lifecycle rules expire them",
        { objects: left.map((o) => o.key) },
      );
    }
  }

  public async removeFolder(): Promise<void> {
    throw new Error('the runner never deletes from Cloud Storage; the bucket lifecycle rules expire backups');
  }
}
