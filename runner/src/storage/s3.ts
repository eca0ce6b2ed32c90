import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetBucketEncryptionCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  ServerSideEncryption,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { RetentionTier, TIER_TAG_KEY } from '../../../lib/core/model';
import { StorageUrl } from '../../../lib/core/urls';
import { log } from '../log';
import { joinKey, NotFoundError, ObjectInfo, PutOptions, Storage } from './storage';
import { SpoolBuffer } from './spool';

const MiB = 1024 * 1024;

/** S3's limits on multipart uploads. */
export const S3_LIMITS = { maxParts: 10000, minPartSize: 5 * MiB, maxPartSize: 5 * 1024 * MiB };

/**
 * The size of part `n` (1-based) of an upload of unknown length. It grows with the stream, so
 * that 10,000 parts hold more than 5 TiB while a small backup uses small parts:
 * parts 1-2000 are 8 MiB (16 GiB), 2001-4000 32 MiB (78 GiB in all), 4001-6000 128 MiB
 * (328 GiB), 6001-8000 512 MiB (1.3 TiB), 8001-10000 2 GiB (5.3 TiB).
 */
export function partSizeFor(n: number): number {
  return 8 * MiB * 4 ** Math.min(4, Math.floor((n - 1) / 2000));
}

/** Parts uploading at once. */
const CONCURRENCY = 3;

function endpoint(): string | undefined {
  return process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
}

let client: S3Client | undefined;
/** One client per process; the endpoint comes from the standard AWS_ENDPOINT_URL(_S3) variables. */
export function s3Client(): S3Client {
  if (client === undefined) {
    const ep = endpoint();
    client = new S3Client({
      endpoint: ep,
      forcePathStyle: ep !== undefined,
      region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      maxAttempts: 4,
    });
  }
  return client;
}

/**
 * `s3://bucket/prefix`: streamed multipart uploads with growing parts, SSE-KMS when the bucket's
 * default encryption is KMS, the tier as an object tag; a failed upload is aborted.
 */
export class S3Storage implements Storage {
  private sse?: Promise<{
    ServerSideEncryption?: ServerSideEncryption;
    SSEKMSKeyId?: string;
    BucketKeyEnabled?: boolean;
  }>;

  constructor(
    public readonly url: StorageUrl,
    private readonly s3: S3Client = s3Client(),
  ) {}

  private key(k: string): string {
    return joinKey(this.url.path, k);
  }

  /** Ask the bucket how it wants objects encrypted; send the same headers so a deny-unencrypted policy is met. */
  private encryption() {
    this.sse ??= this.s3
      .send(new GetBucketEncryptionCommand({ Bucket: this.url.bucket }))
      .then((r) => {
        const rule = r.ServerSideEncryptionConfiguration?.Rules?.[0];
        const by = rule?.ApplyServerSideEncryptionByDefault;
        if (by?.SSEAlgorithm === 'aws:kms' || by?.SSEAlgorithm === 'aws:kms:dsse') {
          return {
            ServerSideEncryption: by.SSEAlgorithm as ServerSideEncryption,
            SSEKMSKeyId: by.KMSMasterKeyID,
            BucketKeyEnabled: rule?.BucketKeyEnabled,
          };
        }
        return {};
      })
      .catch((e: Error) => {
        log.debug('could not read the bucket encryption; relying on its default', {
          bucket: this.url.bucket,
          error: e.name,
        });
        return {};
      });
    return this.sse;
  }

  private tagging(options: PutOptions): string | undefined {
    return options.tier === undefined ? undefined : `${TIER_TAG_KEY}=${options.tier}`;
  }

  public async upload(key: string, body: Readable, options: PutOptions = {}): Promise<number> {
    const Key = this.key(key);
    const Bucket = this.url.bucket;
    const created = await this.s3.send(
      new CreateMultipartUploadCommand({
        Bucket,
        Key,
        ContentType: options.contentType ?? 'application/octet-stream',
        Tagging: this.tagging(options),
        ...(await this.encryption()),
      }),
      { abortSignal: options.signal },
    );
    const UploadId = created.UploadId!;
    const parts: { PartNumber: number; ETag: string }[] = [];
    const inflight = new Set<Promise<void>>();
    let failure: unknown;
    let total = 0;

    const send = async (n: number, part: SpoolBuffer) => {
      const spooled = await part.take();
      const { free } = spooled;
      const Body = spooled.bytes ?? fs.createReadStream(spooled.path);
      try {
        const r = await this.s3.send(
          new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: n, Body, ContentLength: part.size }),
          {
            abortSignal: options.signal,
          },
        );
        parts.push({ PartNumber: n, ETag: r.ETag! });
      } finally {
        await free();
      }
    };
    const start = (n: number, part: SpoolBuffer) => {
      const p = send(n, part).catch((e) => {
        failure ??= e;
      });
      const tracked = p.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
    };

    try {
      let n = 1;
      let part = new SpoolBuffer(partSizeFor(n), 'part');
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (failure !== undefined) throw failure;
        total += chunk.length;
        let rest = chunk;
        while (rest.length > 0) {
          const room = partSizeFor(n) - part.size;
          await part.add(rest.length <= room ? rest : rest.subarray(0, room));
          rest = rest.length <= room ? Buffer.alloc(0) : rest.subarray(room);
          if (part.size === partSizeFor(n)) {
            if (n >= S3_LIMITS.maxParts)
              throw new Error(`the backup is larger than S3's ${S3_LIMITS.maxParts} parts allow`);
            start(n, part);
            n++;
            part = new SpoolBuffer(partSizeFor(n), 'part');
            while (inflight.size >= CONCURRENCY) await Promise.race(inflight);
            if (failure !== undefined) throw failure;
          }
        }
      }
      if (part.size > 0 || n === 1) start(n, part);
      await Promise.all(inflight);
      if (failure !== undefined) throw failure;
      parts.sort((a, b) => a.PartNumber - b.PartNumber);
      await this.s3.send(
        new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }),
        {
          abortSignal: options.signal,
        },
      );
      return total;
    } catch (err) {
      await Promise.allSettled(inflight);
      await this.abort(Key, UploadId);
      throw err;
    }
  }

  /** Abort a multipart upload, retrying for about half a minute so that no upload is left open. */
  private async abort(Key: string, UploadId: string): Promise<void> {
    const delays = [250, 500, 1000, 2000, 3000, 5000, 5000, 5000, 5000];
    for (let i = 0; ; i++) {
      try {
        await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.url.bucket, Key, UploadId }));
        log.info('aborted the incomplete upload', { key: Key });
        return;
      } catch (e) {
        if ((e as Error).name === 'NoSuchUpload') return;
        if (i >= delays.length) {
          log.error(
            `could not abort the multipart upload of ${Key}; the bucket's abort-incomplete-uploads lifecycle rule ` +
              'will remove it',
            {
              uploadId: UploadId,
              error: (e as Error).message,
            },
          );
          return;
        }
        log.warn('abort of the incomplete upload failed; retrying', { key: Key, error: (e as Error).message });
        await new Promise((r) => setTimeout(r, delays[i]));
      }
    }
  }

  public async putBytes(key: string, data: Buffer, options: PutOptions = {}): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.url.bucket,
        Key: this.key(key),
        Body: data,
        ContentType: options.contentType ?? 'application/octet-stream',
        Tagging: this.tagging(options),
        ...(await this.encryption()),
      }),
    );
  }

  public async read(key: string): Promise<Readable> {
    try {
      const r = await this.s3.send(new GetObjectCommand({ Bucket: this.url.bucket, Key: this.key(key) }));
      return r.Body as Readable;
    } catch (e) {
      if ((e as Error).name === 'NoSuchKey' || (e as Error).name === 'NotFound') {
        throw new NotFoundError(`${this.url.display}/${key} does not exist`);
      }
      throw e;
    }
  }

  public async readBytes(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.read(key)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  public async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const r = await this.s3.send(new HeadObjectCommand({ Bucket: this.url.bucket, Key: this.key(key) }));
      return { key, size: r.ContentLength ?? 0 };
    } catch (e) {
      if ((e as Error).name === 'NotFound' || (e as Error).name === 'NoSuchKey') return undefined;
      throw e;
    }
  }

  public async listFolders(prefix: string): Promise<string[]> {
    const base = joinKey(this.url.path, prefix);
    const Prefix = base === '' ? '' : base + '/';
    const out: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const r = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.url.bucket, Prefix, Delimiter: '/', ContinuationToken }),
      );
      for (const p of r.CommonPrefixes ?? []) out.push(p.Prefix!.slice(Prefix.length).replace(/\/$/, ''));
      ContinuationToken = r.NextContinuationToken;
    } while (ContinuationToken !== undefined);
    return out.sort();
  }

  public async list(prefix: string): Promise<ObjectInfo[]> {
    const root = this.url.path === '' ? '' : this.url.path + '/';
    const base = joinKey(this.url.path, prefix);
    const Prefix = base === '' ? '' : base + '/';
    const out: ObjectInfo[] = [];
    let ContinuationToken: string | undefined;
    do {
      const r = await this.s3.send(new ListObjectsV2Command({ Bucket: this.url.bucket, Prefix, ContinuationToken }));
      for (const o of r.Contents ?? []) out.push({ key: o.Key!.slice(root.length), size: o.Size ?? 0 });
      ContinuationToken = r.NextContinuationToken;
    } while (ContinuationToken !== undefined);
    return out;
  }

  public async currentTier(key: string): Promise<RetentionTier | undefined> {
    const r = await this.s3.send(new GetObjectTaggingCommand({ Bucket: this.url.bucket, Key: this.key(key) }));
    return r.TagSet?.find((t) => t.Key === TIER_TAG_KEY)?.Value as RetentionTier | undefined;
  }

  public async raiseTier(folder: string, tier: RetentionTier): Promise<void> {
    // The manifest last: until it carries the new tier, the next dependant raises again.
    const objects = (await this.list(folder))
      .map((o) => o.key)
      .sort((a, b) => Number(a.endsWith('/manifest.json')) - Number(b.endsWith('/manifest.json')));
    for (const key of objects) {
      const Key = this.key(key);
      const current = (await this.s3.send(new GetObjectTaggingCommand({ Bucket: this.url.bucket, Key }))).TagSet ?? [];
      const TagSet = [...current.filter((t) => t.Key !== TIER_TAG_KEY), { Key: TIER_TAG_KEY, Value: tier }];
      await this.s3.send(new PutObjectTaggingCommand({ Bucket: this.url.bucket, Key, Tagging: { TagSet } }));
    }
  }

  public async discardIncomplete(prefix: string): Promise<void> {
    const left = await this.list(prefix);
    if (left.length > 0) {
      log.warn(
        `${left.length} object(s) of the failed backup stay under ${prefix}/ without a manifest (never taken for a ` +
          `backup); the bucket's lifecycle rules expire them`,
        {
          objects: left.map((o) => o.key),
        },
      );
    }
  }

  public async removeFolder(): Promise<void> {
    throw new Error('the runner never deletes from S3; the bucket lifecycle rules expire backups');
  }
}
