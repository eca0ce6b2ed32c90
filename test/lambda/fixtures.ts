// Shared by the verification function's tests: backups written to moto in the runner's layout,
// an HTTP endpoint that SNS (moto) delivers to, and EMF capture.
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectTaggingCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { Manifest, manifestDigest } from '../../lib/core/manifest';
import { MANIFEST_NAME, MANIFEST_VERSION, TIER_TAG_KEY } from '../../lib/core/model';
import { MOTO_ENV } from '../harness/moto';
import { freePort } from '../harness/ports';

export const MiB = 1024 * 1024;
/** moto, like S3, refuses parts below 5 MiB except the last. */
export const PART_SIZE = 5 * MiB;

const credentials = { accessKeyId: MOTO_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: MOTO_ENV.AWS_SECRET_ACCESS_KEY };

export function s3For(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    credentials,
    forcePathStyle: true,
    region: MOTO_ENV.AWS_REGION,
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export function snsFor(endpoint: string): SNSClient {
  return new SNSClient({ endpoint, credentials, region: MOTO_ENV.AWS_REGION });
}

export async function createBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

export const sha256Hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
export const sha256Base64 = (b: Buffer) => createHash('sha256').update(b).digest('base64');

/** How a test artifact is stored. */
export enum Upload {
  /** Like the runner: multipart, unknown length, no SHA-256 checksum. */
  MULTIPART = 'multipart',
  /** Multipart with ChecksumAlgorithm SHA256 (COMPOSITE, as real S3 does for SHA-256). */
  MULTIPART_COMPOSITE_SHA256 = 'multipart-composite-sha256',
  /**
   * Multipart with a FULL_OBJECT SHA-256. Real S3 refuses this combination (full-object
   * checksums are CRC-only); moto 5.2 accepts it, which is how the skip path is exercised.
   */
  MULTIPART_FULL_SHA256 = 'multipart-full-sha256',
  /** One PutObject, no checksum. */
  PUT = 'put',
}

export interface ArtifactSpec {
  readonly name: string;
  readonly data: Buffer;
  readonly upload?: Upload;
  /** The full-object checksum to claim (MULTIPART_FULL_SHA256); default: the true one. */
  readonly claimedSha256Base64?: string;
}

export interface BackupSpec {
  readonly id: string;
  readonly databaseId: string;
  readonly tier?: string;
  readonly startedAt?: string;
  readonly endedAt?: string;
  readonly artifacts: readonly ArtifactSpec[];
  /** Change the manifest before it is written (or replace it with raw text). */
  readonly manifest?: (m: Manifest) => Manifest | string;
}

export interface WrittenBackup {
  readonly folder: string;
  readonly manifestKey: string;
  readonly manifest: Manifest;
}

export function manifestFor(spec: BackupSpec): Manifest {
  return {
    version: MANIFEST_VERSION,
    id: spec.id,
    engine: 'postgres',
    database: 'app',
    databaseId: spec.databaseId,
    source: { host: 'db.internal', port: 5432, user: 'backup' },
    serverVersion: '15.8',
    tools: { pg_dump: '15.8' },
    type: 'full',
    method: 'logical',
    tier: (spec.tier ?? 'daily') as Manifest['tier'],
    startedAt: spec.startedAt ?? '2026-11-20T03:00:00.000Z',
    endedAt: spec.endedAt ?? '2026-11-20T03:04:10.000Z',
    position: { kind: 'lsn', lsn: '0/3000028', timeline: 1 },
    pipeline: { compression: 'zstd', encryption: { scheme: 'none' } },
    artifacts: spec.artifacts.map((a) => ({
      name: a.name,
      role: a.name.startsWith('globals') ? 'globals' : 'database',
      format: a.name.startsWith('globals') ? 'sql' : 'pg_dump-custom',
      size: a.data.length,
      sha256: sha256Hex(a.data),
    })),
    tables: [{ schema: 'public', name: 'orders', rows: 1000 }],
  } as unknown as Manifest;
}

export async function putArtifact(
  s3: S3Client,
  bucket: string,
  key: string,
  a: ArtifactSpec,
  tier = 'daily',
): Promise<void> {
  const Tagging = `${TIER_TAG_KEY}=${tier}`;
  const upload = a.upload ?? Upload.MULTIPART;
  if (upload === Upload.PUT) {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: a.data, Tagging }));
    return;
  }
  const sha = upload !== Upload.MULTIPART;
  const full = upload === Upload.MULTIPART_FULL_SHA256;
  const { UploadId } = await s3.send(
    new CreateMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      Tagging,
      ...(sha
        ? {
            ChecksumAlgorithm: 'SHA256' as const,
            ChecksumType: full ? ('FULL_OBJECT' as const) : ('COMPOSITE' as const),
          }
        : {}),
    }),
  );
  const parts: { PartNumber: number; ETag?: string; ChecksumSHA256?: string }[] = [];
  for (let off = 0, n = 1; off < a.data.length || n === 1; off += PART_SIZE, n++) {
    const Body = a.data.subarray(off, off + PART_SIZE);
    const r = await s3.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        PartNumber: n,
        Body,
        ...(sha ? { ChecksumSHA256: sha256Base64(Body) } : {}),
      }),
    );
    parts.push({ PartNumber: n, ETag: r.ETag, ...(sha ? { ChecksumSHA256: r.ChecksumSHA256 } : {}) });
    if (off + PART_SIZE >= a.data.length) break;
  }
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      UploadId,
      MultipartUpload: { Parts: parts },
      ...(full
        ? { ChecksumType: 'FULL_OBJECT' as const, ChecksumSHA256: a.claimedSha256Base64 ?? sha256Base64(a.data) }
        : {}),
    }),
  );
}

/** Write a backup in the runner's layout: artifacts first, then `manifest.json`, all tier-tagged. */
export async function writeBackup(
  s3: S3Client,
  bucket: string,
  prefix: string,
  spec: BackupSpec,
): Promise<WrittenBackup> {
  const folder = `${prefix === '' ? '' : prefix + '/'}${spec.id}/`;
  for (const a of spec.artifacts) await putArtifact(s3, bucket, folder + a.name, a, spec.tier);
  const base = manifestFor(spec);
  const edited = spec.manifest ? spec.manifest(base) : base;
  // An object is written as the runner writes it: with its digest (a string is written as it is).
  const text =
    typeof edited === 'string' ? edited : JSON.stringify({ ...edited, digest: manifestDigest(edited) }, null, 2);
  const manifestKey = folder + MANIFEST_NAME;
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: manifestKey,
      Body: text,
      ContentType: 'application/json',
      Tagging: `${TIER_TAG_KEY}=${spec.tier ?? 'daily'}`,
    }),
  );
  return { folder, manifestKey, manifest: base };
}

/** A few MiB of random bytes: several 5 MiB parts and a short last one. */
export function randomArtifact(bytes = 2 * PART_SIZE + 123_457): Buffer {
  return randomBytes(bytes);
}

export async function tagsOf(s3: S3Client, bucket: string, key: string): Promise<Record<string, string>> {
  const r = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
  return Object.fromEntries((r.TagSet ?? []).map((t) => [t.Key!, t.Value!]));
}

/** One delivery of moto's SNS to an HTTP subscriber. */
export interface SnsDelivery {
  readonly Type: string;
  readonly TopicArn: string;
  readonly Subject?: string;
  readonly Message: string;
}

/** An SNS topic with an HTTP subscription to a local server that records what arrives. */
export interface TopicSink {
  readonly topicArn: string;
  readonly deliveries: SnsDelivery[];
  close(): Promise<void>;
}

export async function topicWithSink(sns: SNSClient, name: string): Promise<TopicSink> {
  const deliveries: SnsDelivery[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      deliveries.push(JSON.parse(body) as SnsDelivery);
      res.end('ok');
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: name }));
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'http', Endpoint: `http://127.0.0.1:${port}/` }));
  return {
    topicArn: TopicArn!,
    deliveries,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** An EMF emitter that keeps the parsed documents. */
export function emfCapture(): { emit: (line: string) => void; docs: Array<Record<string, unknown>>; lines: string[] } {
  const docs: Array<Record<string, unknown>> = [];
  const lines: string[] = [];
  return {
    lines,
    docs,
    emit: (line: string) => {
      lines.push(line);
      docs.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
}

/** The metric names and namespace an EMF document declares. */
export function declared(doc: Record<string, unknown>): {
  namespace: string;
  dimensions: string[][];
  metrics: string[];
} {
  const d = (
    doc._aws as {
      CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string }> }>;
    }
  ).CloudWatchMetrics[0];
  return { namespace: d.Namespace, dimensions: d.Dimensions, metrics: d.Metrics.map((m) => m.Name) };
}
