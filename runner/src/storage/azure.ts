import type { BlobServiceClient, ContainerClient, RestError, StoragePipelineOptions } from '@azure/storage-blob';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { TIER_TAG_KEY } from '../../../lib/core/model';
import { StorageUrl } from '../../../lib/core/urls';
import { log } from '../log';
import { AzureAccess, azureAccess, scrub } from './azure-auth';
import { joinKey, NotFoundError, ObjectInfo, PutOptions, Storage } from './storage';
import { SpoolBuffer } from './spool';

const MiB = 1024 * 1024;

/** Azure's limits on block blobs (service version 2019-12-12 and later). */
export const AZURE_LIMITS = { maxBlocks: 50000, maxBlockSize: 4000 * MiB, maxPutBlobSize: 5000 * MiB };

/**
 * The size of block `n` (1-based) of an upload of unknown length. It grows with the stream, so
 * that 50,000 blocks hold 26 TiB while a small backup uses small blocks: blocks 1-10,000 are
 * 8 MiB (78 GiB), 10,001-20,000 32 MiB (391 GiB in all), 20,001-30,000 128 MiB (1.6 TiB),
 * 30,001-40,000 512 MiB (6.5 TiB), 40,001-50,000 2 GiB (26 TiB).
 */
export function blockSizeFor(n: number): number {
  return 8 * MiB * 4 ** Math.min(4, Math.floor((n - 1) / 10000));
}

/** Blocks being staged at once (plus one filling): at most 4 × 32 MiB in memory. */
const CONCURRENCY = 3;

/** Retries of one request (network errors, 408, 429, 5xx), by the SDK's own policy. */
const RETRY: StoragePipelineOptions['retryOptions'] = { maxTries: 5, retryDelayInMs: 1000, maxRetryDelayInMs: 16000 };

/** A request to Azure Blob Storage failed. */
export class AzureError extends Error {
  public readonly name = 'AzureError';
  constructor(
    message: string,
    public readonly status: number | undefined,
    public readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** How to reach the account; every field defaults from the environment. */
export interface AzureOptions {
  /** @default - the standard chain (see azure-auth.ts) */
  readonly access?: AzureAccess;
  /** The size of block `n`. @default blockSizeFor */
  readonly blockSize?: (n: number) => number;
  /** The SDK's retry policy. @default - 5 tries, 1 s doubling to 16 s */
  readonly retry?: StoragePipelineOptions['retryOptions'];
}

function restError(e: unknown): { status?: number; code?: string; message: string } {
  const r = e as RestError & { details?: { errorCode?: string } };
  const code = r.code ?? r.details?.errorCode;
  return { status: r.statusCode, code, message: scrub(String(r.message ?? e).split('\n')[0]) };
}

/**
 * `az://account/container/prefix` through `@azure/storage-blob`: block blobs staged from the
 * stream in blocks of growing size (three in flight), committed with Put Block List only once
 * the stream ended cleanly, and only if no blob has that name (`If-None-Match: *`); the tier as
 * the blob index tag `dbbackup-tier`, which lifecycle management rules can match. A failed upload
 * commits nothing: its staged blocks are never part of a blob, and Azure discards uncommitted
 * blocks after 7 days. Small objects (the manifest) are one Put Blob, atomic, with the same condition.
 */
export class AzureStorage implements Storage {
  private readonly access: AzureAccess;
  private readonly blockSize: (n: number) => number;

  constructor(
    public readonly url: StorageUrl,
    options: AzureOptions = {},
  ) {
    this.access = options.access ?? azureAccess(url, process.env, { retryOptions: options.retry ?? RETRY });
    this.blockSize = options.blockSize ?? blockSizeFor;
  }

  private get service(): BlobServiceClient {
    return this.access.client;
  }

  private get container(): ContainerClient {
    return this.service.getContainerClient(this.url.bucket);
  }

  private name(key: string): string {
    return joinKey(this.url.path, key);
  }

  private display(name: string): string {
    return `az://${this.url.account}/${this.url.bucket}/${name}`;
  }

  private get root(): string {
    return this.url.path === '' ? '' : this.url.path + '/';
  }

  /** The error for a failed request, with a hint where one helps; never a secret. */
  private failure(e: unknown, what: string): Error {
    const name = (e as Error).name;
    if (name === 'AbortError') return e as Error;
    if (['AggregateAuthenticationError', 'CredentialUnavailableError', 'AuthenticationError'].includes(name)) {
      const detail = scrub(String((e as Error).message).split('\n')[0]);
      return new AzureError(
        `${what}: no Azure credentials worked (${this.access.description}). Set` +
          ' AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or give the runner' +
          ` an identity DefaultAzureCredential finds. ${detail}`,
        undefined,
        name,
      );
    }
    const { status, code, message } = restError(e);
    let hint = '';
    if (status === 403) {
      hint =
        ` (credentials: ${this.access.description}). The runner's identity needs Storage Blob Data Contributor` +
        ' on the container, and tags write for the tier (Storage Blob Data Owner, or a custom role with' +
        ' …/blobs/tags/write); a SAS needs the permissions rcwlt (read, create, write, list, tags).';
    } else if (code === 'ContainerNotFound') {
      hint =
        ` The container '${this.url.bucket}' does not exist in the account '${this.url.account}': create it` +
        ` (az storage container create -n ${this.url.bucket}) or fix ${this.url.display}.`;
    } else if (status === undefined) {
      hint = ` (endpoint ${this.access.endpoint})`;
    }
    const answer = `${status !== undefined ? `HTTP ${status} ` : ''}${code !== undefined ? `${code} ` : ''}`;
    return new AzureError(`${what}: ${answer}${message}${hint}`, status, code);
  }

  private tags(options: PutOptions): Record<string, string> | undefined {
    return options.tier === undefined ? undefined : { [TIER_TAG_KEY]: options.tier };
  }

  public async upload(key: string, body: Readable, options: PutOptions = {}): Promise<number> {
    const name = this.name(key);
    const blob = this.container.getBlockBlobClient(name);
    const signal = options.signal;
    // Block ids are unique to this upload: no block a failed earlier attempt staged under this name can be committed.
    const nonce = crypto.randomBytes(6).toString('hex');
    const ids: string[] = [];
    const inflight = new Set<Promise<void>>();
    let failure: unknown;
    let total = 0;

    const stage = async (n: number, block: SpoolBuffer) => {
      // A file body is a factory, so the SDK can retry it.
      const spooled = await block.take();
      const { free } = spooled;
      const data = spooled.bytes ?? (() => fs.createReadStream(spooled.path));
      try {
        await blob.stageBlock(ids[n - 1], data, block.size, { abortSignal: signal });
      } catch (e) {
        throw this.failure(e, `stage block ${n} of ${this.display(name)}`);
      } finally {
        await free();
      }
    };
    const start = (n: number, block: SpoolBuffer) => {
      ids[n - 1] = Buffer.from(`${nonce}-${String(n).padStart(6, '0')}`).toString('base64');
      const p = stage(n, block).catch((e) => {
        failure ??= e;
      });
      const tracked = p.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
    };

    try {
      let n = 1;
      let block = new SpoolBuffer(this.blockSize(n), 'block');
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (failure !== undefined) throw failure;
        signal?.throwIfAborted();
        total += chunk.length;
        let rest = chunk;
        while (rest.length > 0) {
          const room = this.blockSize(n) - block.size;
          await block.add(rest.length <= room ? rest : rest.subarray(0, room));
          rest = rest.length <= room ? Buffer.alloc(0) : rest.subarray(room);
          if (block.size === this.blockSize(n)) {
            if (n >= AZURE_LIMITS.maxBlocks) {
              throw new Error(`the backup is larger than Azure's ${AZURE_LIMITS.maxBlocks} blocks allow`);
            }
            start(n, block);
            n++;
            block = new SpoolBuffer(this.blockSize(n), 'block');
            while (inflight.size >= CONCURRENCY) await Promise.race(inflight);
            if (failure !== undefined) throw failure;
          }
        }
      }
      if (block.size > 0) start(n, block);
      await Promise.all(inflight);
      if (failure !== undefined) throw failure;
      signal?.throwIfAborted();
      // The stream ended cleanly (every stage exited 0): only now does the blob come to exist.
      await this.commit(name, ids, options);
      return total;
    } catch (err) {
      await Promise.allSettled(inflight);
      const why = 'its staged blocks are never part of a blob and Azure discards them after 7 days';
      log.info(`the upload was not committed; ${why}`, { object: this.display(name) });
      throw err;
    }
  }

  private async commit(name: string, ids: string[], options: PutOptions): Promise<void> {
    const blob = this.container.getBlockBlobClient(name);
    try {
      await blob.commitBlockList(ids, {
        tags: this.tags(options),
        blobHTTPHeaders: { blobContentType: options.contentType ?? 'application/octet-stream' },
        conditions: { ifNoneMatch: '*' },
        abortSignal: options.signal,
      });
    } catch (e) {
      const { status } = restError(e);
      if (status !== 409 && status !== 412) throw this.failure(e, `commit ${this.display(name)}`);
      // A retried commit whose first answer was lost finds its own blob: the same blocks are success.
      const existing = await blob.getBlockList('committed').catch(() => undefined);
      if (existing?.committedBlocks?.map((b) => b.name).join() === ids.join()) return;
      const exists = `${this.display(name)} already exists; the runner never overwrites a blob`;
      throw new AzureError(exists, status, restError(e).code);
    }
  }

  public async putBytes(key: string, data: Buffer, options: PutOptions = {}): Promise<void> {
    const name = this.name(key);
    const blob = this.container.getBlockBlobClient(name);
    try {
      await blob.upload(data, data.length, {
        tags: this.tags(options),
        blobHTTPHeaders: { blobContentType: options.contentType ?? 'application/octet-stream' },
        conditions: { ifNoneMatch: '*' },
        abortSignal: options.signal,
      });
    } catch (e) {
      const { status } = restError(e);
      if (status !== 409 && status !== 412) throw this.failure(e, `upload ${this.display(name)}`);
      // The same bytes already there (a repeated request whose first answer was lost) are success.
      const existing = await this.readBytes(key).catch(() => undefined);
      if (existing?.equals(data)) return;
      const exists = `${this.display(name)} already exists with other content; the runner never overwrites a blob`;
      throw new AzureError(exists, status, restError(e).code);
    }
  }

  public async read(key: string): Promise<Readable> {
    const name = this.name(key);
    try {
      // The SDK resumes a download broken off by the network (up to 5 times) from the same ETag.
      const r = await this.container.getBlobClient(name).download(0, undefined, { maxRetryRequests: 5 });
      return r.readableStreamBody as Readable;
    } catch (e) {
      const { status, code } = restError(e);
      if (status === 404 && code !== 'ContainerNotFound') {
        throw new NotFoundError(`${this.url.display}/${key} does not exist`);
      }
      throw this.failure(e, `read ${this.display(name)}`);
    }
  }

  public async readBytes(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.read(key)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  public async stat(key: string): Promise<ObjectInfo | undefined> {
    const name = this.name(key);
    try {
      const p = await this.container.getBlobClient(name).getProperties();
      return { key, size: p.contentLength ?? 0 };
    } catch (e) {
      const { status, code } = restError(e);
      // A HEAD answer has no body: a missing container also shows as a bare 404 here, and the listings report it.
      if (status === 404 && code !== 'ContainerNotFound') return undefined;
      throw this.failure(e, `stat ${this.display(name)}`);
    }
  }

  public async listFolders(prefix: string): Promise<string[]> {
    const base = joinKey(this.url.path, prefix);
    const p = base === '' ? '' : base + '/';
    const out: string[] = [];
    try {
      for await (const item of this.container.listBlobsByHierarchy('/', { prefix: p })) {
        if (item.kind === 'prefix') out.push(item.name.slice(p.length).replace(/\/$/, ''));
      }
    } catch (e) {
      throw this.failure(e, `list ${this.display(p)}`);
    }
    return out.sort();
  }

  public async list(prefix: string): Promise<ObjectInfo[]> {
    const base = joinKey(this.url.path, prefix);
    const p = base === '' ? '' : base + '/';
    const out: ObjectInfo[] = [];
    try {
      for await (const b of this.container.listBlobsFlat({ prefix: p })) {
        out.push({ key: b.name.slice(this.root.length), size: b.properties.contentLength ?? 0 });
      }
    } catch (e) {
      throw this.failure(e, `list ${this.display(p)}`);
    }
    return out;
  }

  public async discardIncomplete(prefix: string): Promise<void> {
    const left = await this.list(prefix);
    if (left.length > 0) {
      log.warn(
        `${left.length} blob(s) of the failed backup stay under ${prefix}/ without a manifest (never taken for a` +
          " backup); the runner never deletes on az://, the account's lifecycle rules expire them",
        { objects: left.map((o) => o.key) },
      );
    }
  }

  public async removeFolder(): Promise<void> {
    throw new Error('the runner never deletes from Azure Blob Storage; lifecycle management rules expire backups');
  }
}
