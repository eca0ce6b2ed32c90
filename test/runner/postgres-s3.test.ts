import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateBucketCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutBucketEncryptionCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { promisify } from 'node:util';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { Moto, startMoto } from '../harness/moto';
import { fingerprint, loadFixture } from '../harness/pg-fixture';
import { dbbackup } from '../harness/runner';

const run = promisify(execFile);

describe('PostgreSQL to S3 (moto) with KMS encryption', () => {
  let pg: LocalPostgres;
  let moto: Moto;
  let s3: S3Client;
  let keyId: string;
  let env: Record<string, string>;
  let expected: Record<string, string>;
  let manifest: {
    id: string;
    manualRestore: string[];
    artifacts: { name: string; size: number }[];
    pipeline: { encryption: Record<string, unknown> };
    tier: string;
  };
  const bucket = 'backups-kms';

  beforeAll(async () => {
    [pg, moto] = await Promise.all([startLocalPostgres(), startMoto()]);
    env = { ...pg.env, ...moto.env };
    const clientConfig = {
      endpoint: moto.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    s3 = new S3Client(clientConfig);
    const kms = new KMSClient(clientConfig);
    keyId = (await kms.send(new CreateKeyCommand({ Description: 'backups' }))).KeyMetadata!.KeyId!;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(
      new PutBucketEncryptionCommand({
        Bucket: bucket,
        ServerSideEncryptionConfiguration: {
          Rules: [
            {
              ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyId },
              BucketKeyEnabled: true,
            },
          ],
        },
      }),
    );
    await loadFixture(pg, 'shop');
    expected = await fingerprint(pg, 'shop');
  });
  afterAll(async () => {
    await Promise.all([pg?.stop(), moto?.stop()]);
  });

  test('backup with kms: stores only the wrapped key, uses SSE-KMS and tags the tier', async () => {
    const b = await dbbackup(
      [
        'backup',
        '--engine',
        'postgres',
        '--source',
        pg.url('shop'),
        '--to',
        `s3://${bucket}/prod/shop`,
        '--encrypt',
        `kms:${keyId}`,
        '--json',
      ],
      { env },
    );
    assert.equal(b.code, 0, b.stderr);
    manifest = JSON.parse(b.stdout);
    const enc = manifest.pipeline.encryption;
    assert.equal(enc.scheme, 'kms');
    assert.equal(enc.keyId, keyId);
    assert.match(String(enc.wrappedKey), /^[A-Za-z0-9+/=]{40,}$/);
    assert.deepEqual(enc.encryptionContext, { 'dbbackup-backup-id': manifest.id });
    // Nothing in the manifest or the logs is the plaintext identity.
    assert.doesNotMatch(b.stdout + b.stderr, /AGE-SECRET-KEY/);

    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `prod/shop/${manifest.id}/` }));
    assert.deepEqual((listed.Contents ?? []).map((o) => o.Key).sort(), [
      `prod/shop/${manifest.id}/database.pgdump.zst.age`,
      `prod/shop/${manifest.id}/globals.sql.zst.age`,
      `prod/shop/${manifest.id}/manifest.json`,
    ]);
    for (const name of ['database.pgdump.zst.age', 'manifest.json']) {
      const key = `prod/shop/${manifest.id}/${name}`;
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      assert.equal(head.ServerSideEncryption, 'aws:kms', name);
      const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
      assert.deepEqual(tags.TagSet, [{ Key: 'dbbackup-tier', Value: manifest.tier }], name);
    }
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.equal(uploads.Uploads?.length ?? 0, 0);
  });

  test('verify --deep and restore read it back through KMS', async () => {
    const v = await dbbackup(['verify', '--from', `s3://${bucket}/prod/shop`, '--latest', '--deep'], { env });
    assert.equal(v.code, 0, v.stderr);
    const r = await dbbackup(
      ['restore', '--from', `s3://${bucket}/prod/shop`, '--id', manifest.id, '--target', pg.url('from_s3')],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await fingerprint(pg, 'from_s3'), expected);
  });

  test(
    "the manifest's manual restore lines work with standard tools " + 'only (aws, jq, base64, age, zstd, pg_restore)',
    async () => {
      const lines = manifest.manualRestore.filter((l) => !l.startsWith('#') && !l.includes('globals.sql'));
      assert.equal(lines.length, 3, lines.join('\n'));
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-manual-'));
      try {
        await pg.sql('CREATE DATABASE manual');
        // Exactly the README's lines, with TARGET_DATABASE filled in and the endpoint in the standard variable.
        const script = lines.map((l) => l.replace('TARGET_DATABASE', `'${pg.url('manual')}'`)).join('\n');
        await run('bash', ['-euo', 'pipefail', '-c', script], { cwd, env: { ...process.env, ...env } });
        assert.deepEqual(await fingerprint(pg, 'manual'), expected);
      } finally {
        fs.rmSync(cwd, { recursive: true, force: true });
      }
    },
  );

  test('a stream larger than one part is uploaded in several parts and verifies', async () => {
    // Incompressible rows make the stored object larger than one 8 MiB part.
    await pg.sql(`CREATE DATABASE big`);
    await pg.sql(
      `CREATE TABLE noise AS SELECT i, decode(string_agg(md5(i::text || j::text), ''), 'hex') ` +
        `AS b FROM generate_series(1, 6000) i, generate_series(1, 200) j GROUP BY i`,
      'big',
    );
    const b = await dbbackup(
      [
        'backup',
        '--engine',
        'postgres',
        '--source',
        pg.url('big'),
        '--to',
        `s3://${bucket}/big`,
        '--compression',
        'none',
        '--json',
      ],
      { env },
    );
    assert.equal(b.code, 0, b.stderr);
    const m = JSON.parse(b.stdout);
    const db = m.artifacts.find((a: { role: string }) => a.role === 'database');
    assert.ok(db.size > 16 * 1024 * 1024, `database artifact is ${db.size} bytes`);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `big/${m.id}/${db.name}` }));
    assert.equal(head.ContentLength, db.size);
    assert.match(head.ETag ?? '', /-\d+"$/, 'a multipart ETag');
    const v = await dbbackup(['verify', '--from', `s3://${bucket}/big`, '--latest'], { env });
    assert.equal(v.code, 0, v.stderr);
  });
});
