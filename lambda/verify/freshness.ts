/**
 * The dead-man's switch: publish the age of the newest backup that passed verification. When
 * there is none, publish nothing: the alarm treats missing data as breaching, so a schedule that
 * stopped, a task that never started and a runner that died before its manifest all alarm.
 */
import { GetObjectCommand, GetObjectTaggingCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ManifestError, parseManifest } from '../../lib/core/manifest';
import { FreshnessCheckEvent, METRICS, VERIFIED_TAG_KEY, VerificationStatus } from '../../lib/core/metrics';
import { MANIFEST_NAME } from '../../lib/core/model';
import { EmfEmitter, emfLine, log, metricNamespace, MetricUnit, stdoutEmitter } from './emf';
import { isNamed } from './verify';

export interface FreshnessOptions {
  /** Where EMF lines go. @default - stdout */
  readonly emit?: EmfEmitter;
  /** @default - `DBBACKUP_METRIC_NAMESPACE`, else `DbBackup` */
  readonly namespace?: string;
}

/** What `checkFreshness` found. */
export interface FreshnessResult {
  readonly databaseId: string;
  /** Seconds since the newest verified backup ended; absent (and not published) when there is none. */
  readonly ageSeconds?: number;
  /** The newest verified backup. */
  readonly backupId?: string;
  readonly endedAt?: string;
  /** Folders under the prefix. */
  readonly folders: number;
  /** Folders looked at, newest first, until the answer. */
  readonly examined: number;
  /** Why there is no age. */
  readonly reason?: string;
}

/** Ids begin with the UTC time the backup started, so they sort in time order. */
const TIMESTAMP_ID = /^\d{8}T\d{6}Z/;

/** `''`, `a/b`, `/a/b/` → the listing prefix `''`, `a/b/`, `a/b/`. */
export function listingPrefix(prefix: string): string {
  const p = prefix.replace(/^\/+|\/+$/g, '');
  return p === '' ? '' : p + '/';
}

/**
 * The folder names under `prefix`, newest first: timestamped backup ids in descending order,
 * then any other folders (which are checked last; they are rarely backups).
 */
export async function listBackupFolders(
  s3: S3Client,
  bucket: string,
  prefix: string,
  pageSize?: number,
): Promise<string[]> {
  const base = listingPrefix(prefix);
  const names: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: base,
        Delimiter: '/',
        ContinuationToken: token,
        MaxKeys: pageSize,
      }),
    );
    for (const cp of page.CommonPrefixes ?? []) {
      if (cp.Prefix) names.push(cp.Prefix.slice(base.length, -1));
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const desc = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0);
  return [
    ...names.filter((n) => TIMESTAMP_ID.test(n)).sort(desc),
    ...names.filter((n) => !TIMESTAMP_ID.test(n)).sort(desc),
  ];
}

/**
 * Find the newest backup under `event.prefix` whose manifest is tagged `dbbackup-verified=passed`
 * and belongs to `event.databaseId`, walking from the newest folder and stopping at the first,
 * and publish `BackupAgeSeconds` = `now` − its `endedAt`.
 */
export async function checkFreshness(
  s3: S3Client,
  event: FreshnessCheckEvent,
  now: Date,
  options: FreshnessOptions = {},
): Promise<FreshnessResult> {
  const emit = options.emit ?? stdoutEmitter;
  const namespace = options.namespace ?? metricNamespace();
  const base = listingPrefix(event.prefix);
  const folders = await listBackupFolders(s3, event.bucket, event.prefix);
  const seen = { notBackup: 0, unverified: 0, failed: 0, otherDatabase: 0, unreadable: 0 };
  let examined = 0;

  for (const name of folders) {
    examined++;
    const key = `${base}${name}/${MANIFEST_NAME}`;
    let status: string | undefined;
    try {
      const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: event.bucket, Key: key }));
      status = tags.TagSet?.find((t) => t.Key === VERIFIED_TAG_KEY)?.Value;
    } catch (e) {
      if (!isNamed(e, 'NoSuchKey', 'NotFound')) throw e;
      seen.notBackup++; // no manifest: an interrupted run, or not a backup folder at all
      continue;
    }
    if (status !== VerificationStatus.PASSED) {
      if (status === VerificationStatus.FAILED) seen.failed++;
      else seen.unverified++;
      continue;
    }
    let endedAt: string;
    try {
      const res = await s3.send(new GetObjectCommand({ Bucket: event.bucket, Key: key }));
      const manifest = parseManifest(await res.Body!.transformToString('utf-8'), `s3://${event.bucket}/${key}`);
      if (manifest.databaseId !== event.databaseId) {
        seen.otherDatabase++;
        log('warn', 'a verified backup under the prefix belongs to another database; not counted', {
          manifest: `s3://${event.bucket}/${key}`,
          databaseId: manifest.databaseId,
          expected: event.databaseId,
        });
        continue;
      }
      endedAt = manifest.endedAt;
    } catch (e) {
      // Gone since it was tagged, or replaced by something unreadable: not a verified backup now.
      if (!isNamed(e, 'NoSuchKey', 'NotFound') && !(e instanceof ManifestError)) throw e;
      seen.unreadable++;
      continue;
    }
    const ageSeconds = Math.max(0, (now.getTime() - Date.parse(endedAt)) / 1000);
    emit(
      emfLine(
        namespace,
        event.databaseId,
        [{ name: METRICS.BACKUP_AGE, value: ageSeconds, unit: MetricUnit.SECONDS }],
        { BackupId: name, EndedAt: endedAt, Examined: examined },
        now,
      ),
    );
    log('info', 'newest verified backup', {
      databaseId: event.databaseId,
      backupId: name,
      endedAt,
      ageSeconds,
      examined,
      folders: folders.length,
    });
    return { databaseId: event.databaseId, ageSeconds, backupId: name, endedAt, folders: folders.length, examined };
  }

  const reason =
    folders.length === 0
      ? `no backup folders under s3://${event.bucket}/${base}`
      : `none of the ${folders.length} folders under s3://${event.bucket}/${base} holds a backup of ` +
        `${event.databaseId} that passed verification ` +
        `(${seen.failed} failed, ${seen.unverified} not verified yet, ${seen.notBackup} without a manifest, ` +
        `${seen.otherDatabase} of another database, ${seen.unreadable} unreadable)`;
  log('warn', `no backup age published: ${reason}; the freshness alarm treats the missing data as breaching`, {
    databaseId: event.databaseId,
  });
  return { databaseId: event.databaseId, folders: folders.length, examined, reason };
}
