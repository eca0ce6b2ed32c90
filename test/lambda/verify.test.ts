// The verification function against moto: real S3 objects (multipart uploads of several parts),
// a real SNS topic delivering to an HTTP subscriber, EMF lines captured from the emitter.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { METRIC_DIMENSION, METRICS, VERIFIED_TAG_KEY, VERIFIER_ENV } from '../../lib/core/metrics';
import { TIER_TAG_KEY } from '../../lib/core/model';
import { handleEvent, verifierSettings } from '../../lambda/verify/handle';
import { CheckMethod, verifyBackup } from '../../lambda/verify/verify';
import { Moto, startMoto } from '../harness/moto';
import {
  createBucket,
  declared,
  emfCapture,
  putArtifact,
  randomArtifact,
  s3For,
  sha256Base64,
  snsFor,
  tagsOf,
  TopicSink,
  topicWithSink,
  Upload,
  writeBackup,
} from './fixtures';

const BUCKET = 'backups-verify';
const PREFIX = 'prod/orders';
const DB = 'orders-prod';

let moto: Moto;
let s3: S3Client;
let sns: SNSClient;
let sink: TopicSink;

beforeAll(async () => {
  moto = await startMoto();
  s3 = s3For(moto.endpoint);
  sns = snsFor(moto.endpoint);
  await createBucket(s3, BUCKET);
  sink = await topicWithSink(sns, 'dbbackup-alarms');
});

afterAll(async () => {
  s3?.destroy();
  sns?.destroy();
  await sink?.close();
  await moto?.stop();
});

/** An EventBridge S3 Object Created event, as the rule delivers it. */
function objectCreated(key: string, bucket = BUCKET) {
  return {
    version: '0',
    id: '17793124-05d4-b198-2fde-7ededc63b103',
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '123456789012',
    time: '2026-11-20T03:04:11Z',
    region: 'us-east-1',
    resources: [`arn:aws:s3:::${bucket}`],
    detail: { version: '0', bucket: { name: bucket }, object: { key, size: 1234 }, reason: 'PutObject' },
  };
}

/** Run the handler's body with the test's clients, the topic and captured EMF. */
async function invoke(event: unknown, env: Record<string, string> = {}) {
  const emf = emfCapture();
  const settings = verifierSettings({ [VERIFIER_ENV.ALARM_TOPIC_ARN]: sink.topicArn, ...env });
  const sent = sink.deliveries.length;
  const result = await handleEvent({ s3, sns, settings, emit: emf.emit }, event);
  return { result, emf, messages: sink.deliveries.slice(sent) };
}

/** A good two-artifact backup: a multipart dump of several parts and a small globals file. */
async function goodBackup(id: string, extra: Partial<Parameters<typeof writeBackup>[3]> = {}) {
  const dump = randomArtifact();
  const globals = Buffer.from('CREATE ROLE app;\n');
  const written = await writeBackup(s3, BUCKET, PREFIX, {
    id,
    databaseId: DB,
    artifacts: [
      { name: 'database.dump.zst', data: dump },
      { name: 'globals.sql.zst', data: globals, upload: Upload.PUT },
    ],
    ...extra,
  });
  return { ...written, dump, globals };
}

describe('verifyBackup', () => {
  test('a good backup passes, reading every byte of multipart artifacts', async () => {
    const b = await goodBackup('20261120T030000Z-good');
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.deepEqual(r.failures, []);
    assert.equal(r.ok, true);
    assert.equal(r.backupId, '20261120T030000Z-good');
    assert.equal(r.databaseId, DB);
    assert.deepEqual(
      r.passed.map((p) => [p.artifact, p.method]),
      [
        ['database.dump.zst', CheckMethod.READ],
        ['globals.sql.zst', CheckMethod.READ],
      ],
    );
    assert.equal(r.bytesRead, b.dump.length + b.globals.length);
    assert.equal(r.storedBytes, b.dump.length + b.globals.length);
  });

  test('one flipped byte fails naming the artifact and sha256', async () => {
    const b = await goodBackup('20261120T040000Z-flipped');
    const damaged = Buffer.from(b.dump);
    damaged[7_654_321] ^= 0x01;
    await putArtifact(s3, BUCKET, b.folder + 'database.dump.zst', { name: 'database.dump.zst', data: damaged });
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(r.ok, false);
    assert.equal(r.failures.length, 1);
    assert.equal(r.failures[0].artifact, 'database.dump.zst');
    assert.match(r.failures[0].reason, /^sha256: /);
    assert.ok(r.failures[0].reason.includes(b.manifest.artifacts[0].sha256), r.failures[0].reason);
    assert.deepEqual(
      r.passed.map((p) => p.artifact),
      ['globals.sql.zst'],
    );
  });

  test('a missing artifact fails with "missing"', async () => {
    const b = await goodBackup('20261120T050000Z-missing');
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: b.folder + 'globals.sql.zst' }));
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(r.ok, false);
    assert.deepEqual(
      r.failures.map((f) => f.artifact),
      ['globals.sql.zst'],
    );
    assert.match(
      r.failures[0].reason,
      /^missing: no object at s3:\/\/backups-verify\/prod\/orders\/20261120T050000Z-missing\/globals\.sql\.zst$/,
    );
  });

  test('a truncated object fails with "size"', async () => {
    const b = await goodBackup('20261120T060000Z-truncated');
    await putArtifact(s3, BUCKET, b.folder + 'database.dump.zst', {
      name: 'database.dump.zst',
      data: b.dump.subarray(0, b.dump.length - 4096),
    });
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(r.ok, false);
    assert.equal(r.failures[0].artifact, 'database.dump.zst');
    assert.match(
      r.failures[0].reason,
      new RegExp(`^size: .* holds ${b.dump.length - 4096} bytes, the manifest says ${b.dump.length}$`),
    );
    assert.equal(r.bytesRead, b.globals.length, 'a wrong size is reported without reading the object');
  });

  test("an unparsable manifest fails with the parser's reason", async () => {
    const b = await goodBackup('20261120T070000Z-garbled', { manifest: () => '{"version": 1, "id": "20261120T07' });
    const r = await verifyBackup(s3, BUCKET, b.manifestKey, { fallbackDatabaseId: 'from-env' });
    assert.equal(r.ok, false);
    assert.equal(r.backupId, '20261120T070000Z-garbled', 'the folder name stands in for the id');
    assert.equal(r.databaseId, 'from-env');
    assert.equal(r.failures.length, 1);
    assert.equal(r.failures[0].artifact, 'manifest.json');
    assert.match(r.failures[0].reason, /^manifest: s3:\/\/.*manifest\.json is not JSON/);
  });

  test('a manifest that fails its checks still names its database when it can', async () => {
    const b = await goodBackup('20261120T071500Z-noartifacts', { manifest: (m) => ({ ...m, artifacts: [] }) });
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(r.ok, false);
    assert.equal(r.databaseId, DB);
    assert.match(r.failures[0].reason, /lists no artifacts/);
  });

  test("a manifest whose id is not its folder's name fails", async () => {
    const b = await goodBackup('20261120T073000Z-moved', {
      manifest: (m) => ({ ...m, id: '20261119T030000Z-elsewhere' }),
    });
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(r.ok, false);
    assert.deepEqual(
      r.failures.map((f) => f.artifact),
      ['manifest.json'],
    );
    assert.match(r.failures[0].reason, /is not its folder's name '20261120T073000Z-moved'/);
  });

  test('a manifest that is gone is a failure, not an error', async () => {
    const r = await verifyBackup(s3, BUCKET, `${PREFIX}/20261120T074500Z-never/manifest.json`);
    assert.equal(r.ok, false);
    assert.match(r.failures[0].reason, /^missing: the manifest/);
  });

  test('a deadline that has passed fails the unread artifacts with "timeout"', async () => {
    const b = await goodBackup('20261120T075000Z-late');
    const r = await verifyBackup(s3, BUCKET, b.manifestKey, { signal: AbortSignal.abort() });
    assert.equal(r.ok, false);
    assert.deepEqual(
      r.failures.map((f) => f.reason.split(':')[0]),
      ['timeout', 'timeout'],
    );
  });
});

describe('the full-object checksum rule against moto', () => {
  test('a FULL_OBJECT SHA-256 equal to the manifest skips the read', async () => {
    // Real S3 accepts FULL_OBJECT only for CRC algorithms on multipart uploads (and for any
    // single PutObject); moto 5.2 accepts SHA256 here, which exercises the same HeadObject shape.
    const data = randomArtifact();
    const b = await writeBackup(s3, BUCKET, PREFIX, {
      id: '20261120T080000Z-fullsha',
      databaseId: DB,
      artifacts: [{ name: 'database.dump.zst', data, upload: Upload.MULTIPART_FULL_SHA256 }],
    });
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(r.ok, true, JSON.stringify(r.failures));
    assert.equal(r.passed[0].method, CheckMethod.S3_CHECKSUM);
    assert.equal(r.bytesRead, 0);
  });

  test('a COMPOSITE SHA-256 (multipart) does not count: the bytes are read', async () => {
    const data = randomArtifact();
    const b = await writeBackup(s3, BUCKET, PREFIX, {
      id: '20261120T081000Z-composite',
      databaseId: DB,
      artifacts: [{ name: 'database.dump.zst', data, upload: Upload.MULTIPART_COMPOSITE_SHA256 }],
    });
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(r.ok, true, JSON.stringify(r.failures));
    assert.equal(r.passed[0].method, CheckMethod.READ);
    assert.equal(r.bytesRead, data.length);
  });

  test('damaged bytes behind a full-object checksum of the damaged bytes are caught by reading', async () => {
    const data = randomArtifact();
    const b = await writeBackup(s3, BUCKET, PREFIX, {
      id: '20261120T082000Z-fullsha-damaged',
      databaseId: DB,
      artifacts: [{ name: 'database.dump.zst', data, upload: Upload.MULTIPART_FULL_SHA256 }],
    });
    const damaged = Buffer.from(data);
    damaged[3] ^= 0x80;
    await putArtifact(s3, BUCKET, b.folder + 'database.dump.zst', {
      name: 'database.dump.zst',
      data: damaged,
      upload: Upload.MULTIPART_FULL_SHA256,
    });
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(r.ok, false);
    assert.match(r.failures[0].reason, /^sha256: /);
    assert.equal(r.bytesRead, data.length);
  });

  test("the stored full-object value is the server's own, not the uploader's claim", async () => {
    // CompleteMultipartUpload is given a wrong full-object SHA-256. moto 5.2 ignores the claim and
    // keeps the value it computes from the parts (real S3 refuses such an upload with BadDigest):
    // either way the value the function trusts is the server's, not the uploader's.
    const data = randomArtifact();
    const b = await writeBackup(s3, BUCKET, PREFIX, {
      id: '20261120T083000Z-fullsha-claim',
      databaseId: DB,
      artifacts: [
        {
          name: 'database.dump.zst',
          data,
          upload: Upload.MULTIPART_FULL_SHA256,
          claimedSha256Base64: sha256Base64(Buffer.from('other')),
        },
      ],
    });
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: BUCKET, Key: b.folder + 'database.dump.zst', ChecksumMode: 'ENABLED' }),
    );
    assert.equal(head.ChecksumSHA256, sha256Base64(data));
    assert.equal(head.ChecksumType, 'FULL_OBJECT');
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(r.ok, true, JSON.stringify(r.failures));
    assert.equal(r.passed[0].method, CheckMethod.S3_CHECKSUM);
  });
});

describe('handleEvent (the handler body): metrics, tags, alarm topic', () => {
  test('a good backup: EMF success, manifest tagged passed with its tier tag kept, no message', async () => {
    const b = await goodBackup('20261121T030000Z-good', { tier: 'weekly' });
    const { result, emf, messages } = await invoke(objectCreated(b.manifestKey), {
      [VERIFIER_ENV.METRIC_NAMESPACE]: 'DbBackupTest',
    });
    assert.equal(result.verifications.length, 1);
    assert.equal(result.verifications[0].ok, true);
    assert.equal(result.verifications[0].tagged, true);
    assert.equal(result.verifications[0].notified, false);
    assert.deepEqual(messages, []);
    assert.deepEqual(await tagsOf(s3, BUCKET, b.manifestKey), {
      [TIER_TAG_KEY]: 'weekly',
      [VERIFIED_TAG_KEY]: 'passed',
    });
    // The artifacts' tags are left alone.
    assert.deepEqual(await tagsOf(s3, BUCKET, b.folder + 'database.dump.zst'), { [TIER_TAG_KEY]: 'weekly' });

    assert.equal(emf.docs.length, 1);
    const doc = emf.docs[0];
    const d = declared(doc);
    assert.equal(d.namespace, 'DbBackupTest');
    assert.deepEqual(d.dimensions, [[METRIC_DIMENSION]]);
    assert.deepEqual(d.metrics, [
      METRICS.VERIFICATION_SUCCEEDED,
      METRICS.VERIFICATION_FAILED,
      METRICS.VERIFICATION_DURATION,
    ]);
    assert.equal(doc[METRIC_DIMENSION], DB);
    assert.equal(doc[METRICS.VERIFICATION_SUCCEEDED], 1);
    assert.equal(doc[METRICS.VERIFICATION_FAILED], 0);
    assert.equal(doc.BackupId, '20261121T030000Z-good');
    assert.equal(emf.lines[0].includes('\n'), false, 'one EMF document per line');
  });

  test(
    'a damaged backup: EMF failure, tagged failed (tier ' + 'kept), and the topic gets id, database and reason',
    async () => {
      const b = await goodBackup('20261121T040000Z-flipped', { tier: 'monthly' });
      const damaged = Buffer.from(b.dump);
      damaged[b.dump.length - 1] ^= 0xff;
      await putArtifact(
        s3,
        BUCKET,
        b.folder + 'database.dump.zst',
        { name: 'database.dump.zst', data: damaged },
        'monthly',
      );
      const { result, emf, messages } = await invoke(objectCreated(b.manifestKey));
      assert.equal(result.verifications[0].ok, false);
      assert.equal(result.verifications[0].notified, true);
      assert.deepEqual(await tagsOf(s3, BUCKET, b.manifestKey), {
        [TIER_TAG_KEY]: 'monthly',
        [VERIFIED_TAG_KEY]: 'failed',
      });

      const doc = emf.docs[0];
      assert.equal(declared(doc).namespace, 'DbBackup', 'the default namespace');
      assert.equal(doc[METRIC_DIMENSION], DB);
      assert.equal(doc[METRICS.VERIFICATION_SUCCEEDED], 0);
      assert.equal(doc[METRICS.VERIFICATION_FAILED], 1);
      assert.deepEqual(
        (doc.Failures as Array<{ artifact: string }>).map((f) => f.artifact),
        ['database.dump.zst'],
      );

      assert.equal(messages.length, 1);
      const m = messages[0];
      assert.equal(m.TopicArn, sink.topicArn);
      assert.equal(m.Subject, `dbbackup: backup 20261121T040000Z-flipped of ${DB} failed verification`);
      assert.match(m.Message, /Backup id: {3}20261121T040000Z-flipped/);
      assert.match(m.Message, new RegExp(`Database id: ${DB}`));
      assert.match(m.Message, /- database\.dump\.zst: sha256: /);
    },
  );

  test('missing, truncated and unreadable each reach the topic with their reason', async () => {
    const missing = await goodBackup('20261121T050000Z-missing');
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: missing.folder + 'database.dump.zst' }));
    const truncated = await goodBackup('20261121T060000Z-truncated');
    await putArtifact(s3, BUCKET, truncated.folder + 'globals.sql.zst', {
      name: 'globals.sql.zst',
      data: truncated.globals.subarray(0, 3),
      upload: Upload.PUT,
    });
    const garbled = await goodBackup('20261121T070000Z-garbled', { manifest: () => 'not json' });

    for (const [b, expected] of [
      [missing, /- database\.dump\.zst: missing: /],
      [truncated, /- globals\.sql\.zst: size: /],
      [garbled, /- manifest\.json: manifest: .* is not JSON/],
    ] as const) {
      const { result, emf, messages } = await invoke(objectCreated(b.manifestKey), { [VERIFIER_ENV.DATABASE_ID]: DB });
      assert.equal(result.verifications[0].ok, false, b.manifestKey);
      assert.equal(emf.docs[0][METRICS.VERIFICATION_FAILED], 1);
      assert.equal(emf.docs[0][METRIC_DIMENSION], DB, 'an unreadable manifest is published under DBBACKUP_DATABASE_ID');
      assert.equal(messages.length, 1, b.manifestKey);
      assert.match(messages[0].Message, expected);
      assert.equal((await tagsOf(s3, BUCKET, b.manifestKey))[VERIFIED_TAG_KEY], 'failed');
    }
  });

  test('events for other keys and other S3 events are ignored', async () => {
    const { result, emf } = await invoke(objectCreated(`${PREFIX}/20261121T030000Z-good/database.dump.zst`));
    assert.deepEqual(result.verifications, []);
    assert.equal(result.ignored.length, 1);
    assert.deepEqual(emf.docs, []);
    const del = await invoke({ ...objectCreated(`${PREFIX}/x/manifest.json`), 'detail-type': 'Object Deleted' });
    assert.deepEqual(del.result.verifications, []);
  });

  test('an unknown event is an error, not a silent success', async () => {
    await assert.rejects(invoke({ hello: 'world' }), { name: 'EventError' });
    await assert.rejects(invoke({ action: 'freshness', bucket: BUCKET }), { name: 'EventError' });
  });

  test('a key that arrives URL-encoded is found', async () => {
    const data = randomArtifact(10_000);
    const written = await writeBackup(s3, BUCKET, 'team a/db=1', {
      id: '20261121T080000Z-encoded',
      databaseId: DB,
      artifacts: [{ name: 'database.dump.zst', data, upload: Upload.PUT }],
    });
    const encoded = written.manifestKey.replace(/ /g, '+').replace(/=/g, '%3D');
    const eb = await invoke(objectCreated(encoded));
    assert.equal(eb.result.verifications[0].ok, true, JSON.stringify(eb.result.verifications[0].failures));
    assert.equal(eb.result.verifications[0].manifestKey, written.manifestKey);
    const plain = await invoke(objectCreated(written.manifestKey));
    assert.equal(plain.result.verifications[0].ok, true);
    const records = await invoke({
      Records: [
        {
          eventSource: 'aws:s3',
          eventName: 'ObjectCreated:Put',
          s3: { bucket: { name: BUCKET }, object: { key: encoded } },
        },
      ],
    });
    assert.equal(records.result.verifications[0].ok, true);
  });
});

describe('the Lambda handler itself', () => {
  test('uses module-scope clients from AWS_ENDPOINT_URL and writes EMF to stdout', async () => {
    const b = await goodBackup('20261122T030000Z-handler');
    const saved = { ...process.env };
    Object.assign(process.env, moto.env, { [VERIFIER_ENV.ALARM_TOPIC_ARN]: sink.topicArn });
    const out: string[] = [];
    const write = process.stdout.write;
    try {
      const { handler } = await import('../../lambda/verify/index.js');
      process.stdout.write = ((chunk: string | Uint8Array) => {
        out.push(chunk.toString());
        return true;
      }) as typeof process.stdout.write;
      const result = await handler(objectCreated(b.manifestKey), { getRemainingTimeInMillis: () => 60_000 });
      process.stdout.write = write;
      assert.equal(result.verifications[0].ok, true, JSON.stringify(result.verifications[0].failures));
    } finally {
      process.stdout.write = write;
      process.env = saved;
    }
    const docs = out
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(docs.length, 1);
    assert.equal(docs[0][METRICS.VERIFICATION_SUCCEEDED], 1);
    assert.equal(docs[0][METRIC_DIMENSION], DB);
    assert.equal((await tagsOf(s3, BUCKET, b.manifestKey))[VERIFIED_TAG_KEY], 'passed');
  });

  test('a manifest overwritten by a bad one is re-verified and re-tagged', async () => {
    const b = await goodBackup('20261122T040000Z-rewritten');
    await invoke(objectCreated(b.manifestKey));
    assert.equal((await tagsOf(s3, BUCKET, b.manifestKey))[VERIFIED_TAG_KEY], 'passed');
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: b.manifestKey, Body: '{}', Tagging: `${TIER_TAG_KEY}=daily` }),
    );
    const { result } = await invoke(objectCreated(b.manifestKey));
    assert.equal(result.verifications[0].ok, false);
    assert.deepEqual(await tagsOf(s3, BUCKET, b.manifestKey), {
      [TIER_TAG_KEY]: 'daily',
      [VERIFIED_TAG_KEY]: 'failed',
    });
  });
});
