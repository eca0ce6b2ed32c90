// The freshness check (dead-man's switch) against moto: backups verified by the function itself,
// then the age of the newest one that passed.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { FreshnessCheckEvent, METRIC_DIMENSION, METRICS, VERIFIER_ENV } from '../../lib/core/metrics';
import { checkFreshness, listBackupFolders, listingPrefix } from '../../lambda/verify/freshness';
import { handleEvent, verifierSettings } from '../../lambda/verify/handle';
import { tagManifest } from '../../lambda/verify/report';
import { VerificationStatus } from '../../lib/core/metrics';
import { Moto, startMoto } from '../harness/moto';
import { createBucket, declared, emfCapture, putArtifact, s3For, snsFor, Upload, writeBackup } from './fixtures';

const BUCKET = 'backups-fresh';
const DB = 'billing-prod';

let moto: Moto;
let s3: S3Client;
let sns: SNSClient;

beforeAll(async () => {
  moto = await startMoto();
  s3 = s3For(moto.endpoint);
  sns = snsFor(moto.endpoint);
  await createBucket(s3, BUCKET);
});

afterAll(async () => {
  s3?.destroy();
  sns?.destroy();
  await moto?.stop();
});

const small = (seed: string) => Buffer.from(`pg_dump output of ${seed}\n`.repeat(500));

/** Write a backup and have the function verify it (so the tags are the function's own). */
async function backup(prefix: string, id: string, endedAt: string, opts: { damage?: boolean; verify?: boolean; databaseId?: string } = {}) {
  const data = small(id);
  const b = await writeBackup(s3, BUCKET, prefix, {
    id,
    databaseId: opts.databaseId ?? DB,
    startedAt: new Date(Date.parse(endedAt) - 60_000).toISOString(),
    endedAt,
    artifacts: [{ name: 'database.dump.zst', data, upload: Upload.PUT }],
  });
  if (opts.damage) {
    const bad = Buffer.from(data);
    bad[10] ^= 1;
    await putArtifact(s3, BUCKET, b.folder + 'database.dump.zst', { name: 'database.dump.zst', data: bad, upload: Upload.PUT });
  }
  if (opts.verify !== false) {
    const r = await handleEvent(
      { s3, sns, settings: verifierSettings({}), emit: () => undefined },
      { source: 'aws.s3', 'detail-type': 'Object Created', detail: { bucket: { name: BUCKET }, object: { key: b.manifestKey } } },
    );
    assert.equal(r.verifications[0].ok, !opts.damage);
  }
  return b;
}

const event = (prefix: string, databaseId = DB): FreshnessCheckEvent => ({ action: 'freshness', bucket: BUCKET, prefix, databaseId });

describe('checkFreshness', () => {
  test('publishes the age of the newest passed backup, walking from the newest and stopping there', async () => {
    const prefix = 'prod/billing';
    await backup(prefix, '20261118T030000Z-a', '2026-11-18T03:05:00.000Z');
    await backup(prefix, '20261119T030000Z-b', '2026-11-19T03:06:40.000Z');
    await backup(prefix, '20261120T030000Z-c', '2026-11-20T03:05:00.000Z', { damage: true });
    await backup(prefix, '20261121T030000Z-d', '2026-11-21T03:05:00.000Z', { verify: false });
    // An interrupted run: artifacts, no manifest. And a folder that is not a backup at all.
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/20261121T090000Z-e/database.dump.zst`, Body: 'partial' }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/wal/000000010000000000000003.zst`, Body: 'wal' }));

    const emf = emfCapture();
    const now = new Date('2026-11-21T12:00:00.000Z');
    const r = await checkFreshness(s3, event(prefix), now, { emit: emf.emit, namespace: 'DbBackup' });
    assert.equal(r.backupId, '20261119T030000Z-b');
    assert.equal(r.endedAt, '2026-11-19T03:06:40.000Z');
    assert.equal(r.ageSeconds, 2 * 86400 + 8 * 3600 + 53 * 60 + 20);
    assert.equal(r.folders, 6);
    assert.equal(r.examined, 4, 'e (no manifest), d (unverified), c (failed), b (passed): a and wal/ are never looked at');

    assert.equal(emf.docs.length, 1);
    const doc = emf.docs[0];
    assert.deepEqual(declared(doc), { namespace: 'DbBackup', dimensions: [[METRIC_DIMENSION]], metrics: [METRICS.BACKUP_AGE] });
    assert.equal(doc[METRIC_DIMENSION], DB);
    assert.equal(doc[METRICS.BACKUP_AGE], r.ageSeconds);
    assert.equal((doc._aws as { Timestamp: number }).Timestamp, now.getTime());
    assert.equal((doc._aws as { CloudWatchMetrics: Array<{ Metrics: Array<{ Unit: string }> }> }).CloudWatchMetrics[0].Metrics[0].Unit, 'Seconds');
  });

  test('with no passed backup, no age datapoint is published and the reason is given', async () => {
    const prefix = 'prod/stale';
    await backup(prefix, '20261120T030000Z-failed', '2026-11-20T03:05:00.000Z', { damage: true });
    await backup(prefix, '20261121T030000Z-unverified', '2026-11-21T03:05:00.000Z', { verify: false });
    const emf = emfCapture();
    const r = await checkFreshness(s3, event(prefix), new Date('2026-11-21T12:00:00Z'), { emit: emf.emit });
    assert.deepEqual(emf.docs, []);
    assert.equal(r.ageSeconds, undefined);
    assert.equal(r.examined, 2);
    assert.match(r.reason!, /1 failed, 1 not verified yet/);
  });

  test('an empty or absent prefix publishes nothing', async () => {
    const emf = emfCapture();
    const r = await checkFreshness(s3, event('prod/never-ran'), new Date(), { emit: emf.emit });
    assert.deepEqual(emf.docs, []);
    assert.equal(r.folders, 0);
    assert.match(r.reason!, /no backup folders under s3:\/\/backups-fresh\/prod\/never-ran\//);
  });

  test("a passed backup of another database under the prefix does not count", async () => {
    const prefix = 'prod/shared';
    await backup(prefix, '20261121T030000Z-other', '2026-11-21T03:05:00.000Z', { databaseId: 'someone-else' });
    const emf = emfCapture();
    const r = await checkFreshness(s3, event(prefix), new Date('2026-11-21T12:00:00Z'), { emit: emf.emit });
    assert.deepEqual(emf.docs, []);
    assert.match(r.reason!, /1 of another database/);
  });

  test('an age is never negative (a clock behind endedAt)', async () => {
    const prefix = 'prod/future';
    await backup(prefix, '20261121T030000Z-f', '2026-11-21T03:05:00.000Z');
    const emf = emfCapture();
    const r = await checkFreshness(s3, event(prefix), new Date('2026-11-21T03:04:00Z'), { emit: emf.emit });
    assert.equal(r.ageSeconds, 0);
  });

  test('the freshness event through the handler body, with the namespace from the environment', async () => {
    const prefix = 'prod/handler';
    await backup(prefix, '20261121T030000Z-h', '2026-11-21T03:00:00.000Z');
    const emf = emfCapture();
    const r = await handleEvent(
      { s3, sns, settings: verifierSettings({ [VERIFIER_ENV.METRIC_NAMESPACE]: 'Custom/Backups' }), emit: emf.emit, now: () => new Date('2026-11-21T04:00:00Z') },
      { action: 'freshness', bucket: BUCKET, prefix: `/${prefix}/`, databaseId: DB },
    );
    assert.equal(r.freshness[0].ageSeconds, 3600);
    assert.equal(declared(emf.docs[0]).namespace, 'Custom/Backups');
    assert.equal(emf.docs[0][METRICS.BACKUP_AGE], 3600);
  });
});

describe('listing', () => {
  test('folders come newest first across pages, non-timestamp folders last', async () => {
    const prefix = 'prod/paged';
    const ids = ['20261101T000000Z-1', '20261102T000000Z-2', '20261103T000000Z-3', '20261104T000000Z-4', '20261105T000000Z-5'];
    for (const id of [...ids, 'wal', 'locks']) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${id}/x`, Body: 'x' }));
    }
    assert.deepEqual(await listBackupFolders(s3, BUCKET, prefix, 2), [...ids].reverse().concat(['wal', 'locks']));
  });

  test('listingPrefix normalises slashes', () => {
    assert.equal(listingPrefix(''), '');
    assert.equal(listingPrefix('/'), '');
    assert.equal(listingPrefix('a/b'), 'a/b/');
    assert.equal(listingPrefix('/a/b//'), 'a/b/');
  });

  test('a backup at the bucket root (empty prefix) is found', async () => {
    // A bucket of its own: the root listing must not see the other tests' folders.
    const own = 'backups-fresh-root';
    await createBucket(s3, own);
    const data = small('root');
    const b = await writeBackup(s3, own, '', { id: '20261121T030000Z-root', databaseId: DB, endedAt: '2026-11-21T03:00:00.000Z', artifacts: [{ name: 'd.zst', data, upload: Upload.PUT }] });
    assert.equal(await tagManifest(s3, own, b.manifestKey, VerificationStatus.PASSED), true);
    const r = await checkFreshness(s3, { action: 'freshness', bucket: own, prefix: '', databaseId: DB }, new Date('2026-11-21T03:01:00Z'), { emit: () => undefined });
    assert.equal(r.backupId, '20261121T030000Z-root');
    assert.equal(r.ageSeconds, 60);
  });
});
