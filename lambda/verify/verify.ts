/**
 * Verify one committed backup: its manifest reads, and every artifact it lists exists in the
 * backup's folder with the recorded size and sha256 of the stored bytes. Pure check: no tags,
 * metrics or messages (see `report.ts`).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, HeadObjectCommandOutput, S3Client } from '@aws-sdk/client-s3';
import { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  encryptionPolicyViolation,
  FIRST_DIGEST_VERSION,
  Manifest,
  ManifestError,
  manifestMacKey,
  manifestMacMatches,
  parseManifest,
} from '../../lib/core/manifest';
import { EncryptionScheme } from '../../lib/core/urls';
import { MANIFEST_NAME } from '../../lib/core/model';
import { decideChecksumSkip } from './checksum';

/** One thing wrong with a backup. */
export interface VerificationFailure {
  /** The artifact's name, or `manifest.json` for the manifest itself. */
  readonly artifact: string;
  /** Starts with the kind of problem: `missing`, `size`, `sha256`, `manifest`, `timeout`, … */
  readonly reason: string;
}

/** How an artifact's sha256 was established. */
export enum CheckMethod {
  /** Every stored byte was read and hashed here. */
  READ = 'read',
  /** S3's verified full-object SHA-256 equals the manifest's (see `checksum.ts`). */
  S3_CHECKSUM = 's3-checksum',
}

/** An artifact that checked out. */
export interface ArtifactCheck {
  readonly artifact: string;
  readonly size: number;
  readonly method: CheckMethod;
  /** Why the bytes were or were not read. */
  readonly why: string;
}

/** The outcome of `verifyBackup`. */
export interface VerificationResult {
  readonly ok: boolean;
  readonly bucket: string;
  readonly manifestKey: string;
  /** The manifest's id, or the folder name when the manifest cannot be read. */
  readonly backupId: string;
  /** The manifest's databaseId (the metric dimension value); see `VerifyOptions.fallbackDatabaseId`. */
  readonly databaseId: string;
  readonly failures: readonly VerificationFailure[];
  /** The artifacts that checked out. */
  readonly passed: readonly ArtifactCheck[];
  /** Bytes read and hashed. */
  readonly bytesRead: number;
  /** Sum of the artifacts' recorded sizes (0 when the manifest cannot be read). */
  readonly storedBytes: number;
  readonly durationMs: number;
  /** The parsed manifest, when it could be read. */
  readonly manifest?: Manifest;
  /**
   * How the manifest's own content was checked: `sha256` (its digest matched; a changed field
   * fails as `manifest: … does not match its digest`), or `none` (an older manifest without one).
   */
  readonly digest?: 'sha256' | 'none';
  /**
   * kms: manifests: `checked` (KMS unwrapped the backup's key and the manifest's HMAC matched; a
   * mismatch is a `manifest` failure) or `unchecked` (no KMS client, or no kms:Decrypt: the
   * sha256 digest matched, but write access to the bucket could have forged it).
   */
  readonly mac?: 'checked' | 'unchecked';
}

export interface VerifyOptions {
  /** Aborts reading; what is unfinished then fails with a `timeout` reason. */
  readonly signal?: AbortSignal;
  /** Artifacts checked at once (each holds one stream's buffers). @default 2 */
  readonly concurrency?: number;
  /** The database id to report when the manifest does not name one. @default 'unknown' */
  readonly fallbackDatabaseId?: string;
  /** Unwraps a kms: backup's key to check its manifest's HMAC. @default - the HMAC is not checked */
  readonly kms?: KMSClient;
  /**
   * The scheme every manifest must be encrypted with (`kms` for a vault whose backups use KMS):
   * another scheme, a version 1 manifest (no digest), or a kms: manifest whose HMAC is missing or
   * could not be checked is a `manifest` failure. @default - any scheme
   */
  readonly requireEncryption?: EncryptionScheme;
}

/** A manifest larger than this is refused unread (a real one is a few KiB to a few MiB). */
export const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;

/** The database id used when nothing names one. */
export const UNKNOWN_DATABASE_ID = 'unknown';

/** Whether `e` is an error with one of these names (the SDK names service errors by code). */
export function isNamed(e: unknown, ...names: string[]): boolean {
  return e instanceof Error && names.includes(e.name);
}

/** `PREFIX/<id>/manifest.json` → `{ folder: 'PREFIX/<id>/', folderName: '<id>' }`. */
export function backupFolder(manifestKey: string): { folder: string; folderName: string } {
  if (!manifestKey.endsWith('/' + MANIFEST_NAME) && manifestKey !== MANIFEST_NAME) {
    throw new Error(`'${manifestKey}' is not a ${MANIFEST_NAME} key`);
  }
  const folder = manifestKey.slice(0, manifestKey.length - MANIFEST_NAME.length);
  const parts = folder.split('/').filter((p) => p !== '');
  return { folder, folderName: parts[parts.length - 1] ?? '' };
}

/**
 * Check the backup whose manifest is `s3://bucket/manifestKey`. A damaged backup is a result
 * with `ok: false`; errors other than "not there" (access denied, throttling, network) are
 * thrown, because they say nothing about the backup.
 */
export async function verifyBackup(
  s3: S3Client,
  bucket: string,
  manifestKey: string,
  options: VerifyOptions = {},
): Promise<VerificationResult> {
  const started = Date.now();
  const { folder, folderName } = backupFolder(manifestKey);
  const fallbackId = options.fallbackDatabaseId || UNKNOWN_DATABASE_ID;
  const base = { bucket, manifestKey };

  const read = await readManifest(s3, bucket, manifestKey);
  if ('failure' in read) {
    return {
      ...base,
      ok: false,
      backupId: folderName,
      databaseId: read.databaseId ?? fallbackId,
      failures: [read.failure],
      passed: [],
      bytesRead: 0,
      storedBytes: 0,
      durationMs: Date.now() - started,
    };
  }
  const manifest = read.manifest;
  const failures: VerificationFailure[] = [];
  const databaseId =
    typeof manifest.databaseId === 'string' && manifest.databaseId !== '' ? manifest.databaseId : undefined;
  if (databaseId === undefined) {
    failures.push({ artifact: MANIFEST_NAME, reason: 'manifest: has no databaseId' });
  }
  if (manifest.id !== folderName) {
    failures.push({
      artifact: MANIFEST_NAME,
      reason: `manifest: its id '${manifest.id}' is not its folder's name '${folderName}'`,
    });
  }
  const required = options.requireEncryption;
  const violation = required === undefined ? undefined : encryptionPolicyViolation(manifest, required);
  if (violation !== undefined) failures.push({ artifact: MANIFEST_NAME, reason: `manifest: ${violation}` });
  const mac = await checkMac(manifest, options.kms);
  if (mac.failure !== undefined) failures.push(mac.failure);
  if (violation === undefined && required === EncryptionScheme.KMS && mac.state !== 'checked') {
    const reason =
      "manifest: its HMAC could not be checked (no kms:Decrypt on the backup's key), and a kms: vault accepts " +
      'only authenticated manifests';
    failures.push({ artifact: MANIFEST_NAME, reason });
  }
  const seen = new Set<string>();
  for (const a of manifest.artifacts) {
    if (seen.has(a.name)) failures.push({ artifact: a.name, reason: 'manifest: the artifact is listed twice' });
    seen.add(a.name);
  }

  // Check the artifacts a few at a time; each check streams, so memory stays flat.
  const artifacts = manifest.artifacts;
  const outcomes: Array<ArtifactOutcome | undefined> = new Array(artifacts.length);
  let next = 0;
  const worker = async () => {
    while (next < artifacts.length) {
      const i = next++;
      const a = artifacts[i];
      outcomes[i] = await checkArtifact(s3, bucket, folder + a.name, a.name, a.size, a.sha256, options.signal);
    }
  };
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 2, artifacts.length));
  await Promise.all(Array.from({ length: concurrency }, worker));

  const passed: ArtifactCheck[] = [];
  let bytesRead = 0;
  for (const o of outcomes) {
    bytesRead += o!.bytesRead;
    if (o!.failure) failures.push(o!.failure);
    else passed.push(o!.check!);
  }
  return {
    ...base,
    ok: failures.length === 0,
    backupId: manifest.id,
    databaseId: databaseId ?? fallbackId,
    failures,
    passed,
    bytesRead,
    storedBytes: artifacts.reduce((n, a) => n + a.size, 0),
    durationMs: Date.now() - started,
    manifest,
    digest: manifest.version >= FIRST_DIGEST_VERSION ? 'sha256' : 'none',
    mac: mac.state,
  };
}

interface MacCheck {
  readonly state?: 'checked' | 'unchecked';
  readonly failure?: VerificationFailure;
}

/** A kms: manifest's HMAC, under the key KMS unwraps (errors that say nothing about the backup leave it unchecked). */
async function checkMac(m: Manifest, kms: KMSClient | undefined): Promise<MacCheck> {
  const enc = m.pipeline.encryption;
  if (m.version < FIRST_DIGEST_VERSION || enc.scheme !== EncryptionScheme.KMS) return {};
  if (kms === undefined) return { state: 'unchecked' };
  let secret: Uint8Array;
  try {
    const out = await kms.send(
      new DecryptCommand({
        CiphertextBlob: Buffer.from(enc.wrappedKey ?? '', 'base64'),
        KeyId: enc.keyId,
        EncryptionContext: enc.encryptionContext as Record<string, string> | undefined,
      }),
    );
    secret = out.Plaintext!;
  } catch (e) {
    if (isNamed(e, 'InvalidCiphertextException')) {
      const reason = 'manifest: KMS refuses its wrapped key (not made by the key it names, or for another backup)';
      return { state: 'checked', failure: { artifact: MANIFEST_NAME, reason } };
    }
    if (isNamed(e, 'AccessDeniedException', 'NotFoundException', 'DisabledException', 'KMSInvalidStateException')) {
      return { state: 'unchecked' };
    }
    throw e;
  }
  const key = manifestMacKey(secret, m.id);
  Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength).fill(0);
  if (manifestMacMatches(m, key)) return { state: 'checked' };
  const reason = "manifest: its HMAC does not match: it was changed or forged by someone without the backup's KMS key";
  return { state: 'checked', failure: { artifact: MANIFEST_NAME, reason } };
}

type ManifestRead = { manifest: Manifest } | { failure: VerificationFailure; databaseId?: string };

async function readManifest(s3: S3Client, bucket: string, key: string): Promise<ManifestRead> {
  let text: string;
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const body = res.Body as Readable | undefined;
    if ((res.ContentLength ?? 0) > MAX_MANIFEST_BYTES) {
      body?.destroy();
      return {
        failure: {
          artifact: MANIFEST_NAME,
          reason: `manifest: is ${res.ContentLength} bytes, more than the ${MAX_MANIFEST_BYTES} a manifest may have`,
        },
      };
    }
    text = body === undefined ? '' : await res.Body!.transformToString('utf-8');
  } catch (e) {
    if (isNamed(e, 'NoSuchKey', 'NotFound')) {
      return {
        failure: {
          artifact: MANIFEST_NAME,
          reason: `missing: the manifest s3://${bucket}/${key} does not exist (any more)`,
        },
      };
    }
    throw e;
  }
  try {
    return { manifest: parseManifest(text, `s3://${bucket}/${key}`) };
  } catch (e) {
    if (!(e instanceof ManifestError)) throw e;
    return {
      failure: { artifact: MANIFEST_NAME, reason: `manifest: ${e.message}` },
      databaseId: salvageDatabaseId(text),
    };
  }
}

/** The `databaseId` of a manifest that failed its checks, if it is JSON that names one. */
function salvageDatabaseId(text: string): string | undefined {
  try {
    const m = JSON.parse(text) as { databaseId?: unknown } | null;
    const id = m?.databaseId;
    return typeof id === 'string' && id !== '' && id.length <= 255 ? id : undefined;
  } catch {
    return undefined;
  }
}

interface ArtifactOutcome {
  readonly bytesRead: number;
  readonly failure?: VerificationFailure;
  readonly check?: ArtifactCheck;
}

async function checkArtifact(
  s3: S3Client,
  bucket: string,
  key: string,
  name: string,
  size: number,
  sha256: string,
  signal: AbortSignal | undefined,
): Promise<ArtifactOutcome> {
  const where = `s3://${bucket}/${key}`;
  const fail = (reason: string, bytesRead = 0): ArtifactOutcome => ({ bytesRead, failure: { artifact: name, reason } });
  if (signal?.aborted) return fail(`timeout: not checked before the function's deadline (${size} bytes)`);

  let head: HeadObjectCommandOutput;
  try {
    head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }), {
      abortSignal: signal,
    });
  } catch (e) {
    if (isNamed(e, 'NotFound', 'NoSuchKey')) return fail(`missing: no object at ${where}`);
    if (signal?.aborted) return fail(`timeout: not checked before the function's deadline (${size} bytes)`);
    throw e;
  }
  if (head.ContentLength !== size) {
    return fail(`size: ${where} holds ${head.ContentLength} bytes, the manifest says ${size}`);
  }
  const decision = decideChecksumSkip(head, sha256);
  if (decision.skipRead) {
    return { bytesRead: 0, check: { artifact: name, size, method: CheckMethod.S3_CHECKSUM, why: decision.why } };
  }

  let bytesRead = 0;
  const hash = createHash('sha256');
  try {
    // If-Match: hash the very object whose size was just checked.
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: head.ETag }), {
      abortSignal: signal,
    });
    const body = res.Body;
    if (!(body instanceof Readable))
      throw new TypeError(`GetObject returned a ${typeof body} body, not a Node.js stream`);
    const onAbort = () => body.destroy(new Error('aborted at the deadline'));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        hash.update(chunk);
        bytesRead += chunk.length;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  } catch (e) {
    if (signal?.aborted)
      return fail(`timeout: read ${bytesRead} of ${size} bytes before the function's deadline`, bytesRead);
    if (isNamed(e, 'NoSuchKey', 'NotFound'))
      return fail(`missing: ${where} disappeared while being verified`, bytesRead);
    if (isNamed(e, 'PreconditionFailed')) return fail(`changed: ${where} was replaced while being verified`, bytesRead);
    throw e;
  }
  if (bytesRead !== size) {
    return fail(`size: read ${bytesRead} bytes from ${where}, the manifest says ${size}`, bytesRead);
  }
  const actual = hash.digest('hex');
  if (actual !== sha256) {
    return fail(`sha256: the stored bytes of ${where} hash to ${actual}, the manifest says ${sha256}`, bytesRead);
  }
  return { bytesRead, check: { artifact: name, size, method: CheckMethod.READ, why: decision.why } };
}
