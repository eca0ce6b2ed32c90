// wal-push / wal-fetch as archive_command / restore_command, without a server: durability and
// idempotence, a different file under an archived name refused, age and KMS encryption (KMS and
// S3 on moto), damaged objects never handed over, and the exit codes PostgreSQL relies on.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { Moto, startMoto } from '../harness/moto';
import { dbbackup, logLines } from '../harness/runner';

const SEGMENT = '000000010000000000000007';

function walDir(root: string): string {
  const d = path.join(root, 'pg_wal');
  fs.mkdirSync(d, { recursive: true });
  return d;
}

describe('wal-push and wal-fetch', () => {
  let dir: string;
  let identity: string;
  let recipient: string;
  let segment: Buffer;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-wal-'));
    identity = path.join(dir, 'identity.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
    // A segment-sized file of WAL-like content: mostly compressible, some random.
    segment = Buffer.alloc(16 * 1024 * 1024);
    crypto.randomFillSync(segment, 0, 1024 * 1024);
    fs.writeFileSync(path.join(walDir(dir), SEGMENT), segment);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('push stores the segment durably; the same segment again exits 0; fetch gives the same bytes', async () => {
    const store = `file://${dir}/plain`;
    // (PostgreSQL passes %p relative to the data directory it runs the command in: pitr-postgres covers that.)
    const p = await dbbackup(['wal-push', `${dir}/pg_wal/${SEGMENT}`, '--to', store]);
    assert.equal(p.code, 0, p.stderr);
    const stored = fs.readdirSync(path.join(dir, 'plain', 'wal', '00000001', SEGMENT));
    assert.equal(stored.length, 1);
    assert.match(
      stored[0],
      new RegExp(`^${crypto.createHash('sha256').update(segment).digest('hex')}\\.16777216\\.\\d{8}T\\d{9}Z\\.zst$`),
    );
    assert.ok(
      fs.statSync(path.join(dir, 'plain', 'wal', '00000001', SEGMENT, stored[0])).size < segment.length / 4,
      'compressed',
    );

    const again = await dbbackup(['wal-push', `${dir}/pg_wal/${SEGMENT}`, '--to', store]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(logLines(again.stderr).find((l) => l.event === 'wal-push')?.status, 'present');
    assert.equal(fs.readdirSync(path.join(dir, 'plain', 'wal', '00000001', SEGMENT)).length, 1);

    const dest = path.join(dir, 'fetched');
    const f = await dbbackup(['wal-fetch', SEGMENT, dest, '--from', store]);
    assert.equal(f.code, 0, f.stderr);
    assert.ok(fs.readFileSync(dest).equals(segment));
  });

  test('a different file under an archived name fails loudly and changes nothing', async () => {
    const store = `file://${dir}/plain`;
    const other = path.join(dir, 'other', 'pg_wal');
    fs.mkdirSync(other, { recursive: true });
    const changed = Buffer.from(segment);
    changed[100] ^= 0xff;
    fs.writeFileSync(path.join(other, SEGMENT), changed);
    const p = await dbbackup(['wal-push', path.join(other, SEGMENT), '--to', store]);
    assert.equal(p.code, 1);
    assert.match(
      p.stderr,
      new RegExp(`WAL file ${SEGMENT} is already archived at .* with different content .*Refusing to replace it`),
    );
    assert.equal(fs.readdirSync(path.join(dir, 'plain', 'wal', '00000001', SEGMENT)).length, 1);
  });

  test('fetch: a file the archive does not hold exits 1 (the normal end of recovery); bad names exit 2', async () => {
    const store = `file://${dir}/plain`;
    const f = await dbbackup(['wal-fetch', '000000010000000000000009', path.join(dir, 'nope'), '--from', store]);
    assert.equal(f.code, 1);
    assert.match(f.stderr, /is not in the WAL archive/);
    assert.equal(fs.existsSync(path.join(dir, 'nope')), false);
    const h = await dbbackup(['wal-fetch', '00000002.history', path.join(dir, 'nope'), '--from', store]);
    assert.equal(h.code, 1);
    const bad = await dbbackup(['wal-push', '/etc/passwd', '--to', store]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not a WAL file name/);
    const args = await dbbackup(['wal-fetch', SEGMENT, '--from', store]);
    assert.equal(args.code, 2);
    assert.match(args.stderr, /takes two arguments, %f and %p/);
    const noTo = await dbbackup(['wal-push', `${dir}/pg_wal/${SEGMENT}`], { env: { DBBACKUP_TO: undefined } });
    assert.equal(noTo.code, 2);
    assert.match(noTo.stderr, /needs --to \(or DBBACKUP_TO\)/);
  });

  test('a damaged stored segment is never handed to PostgreSQL (exit 3, nothing at %p)', async () => {
    const store = path.join(dir, 'damaged');
    const p = await dbbackup([
      'wal-push',
      `${dir}/pg_wal/${SEGMENT}`,
      '--to',
      `file://${store}`,
      '--compression',
      'none',
    ]);
    assert.equal(p.code, 0, p.stderr);
    const folder = path.join(store, 'wal', '00000001', SEGMENT);
    const obj = path.join(folder, fs.readdirSync(folder)[0]);
    const bytes = fs.readFileSync(obj);
    bytes[5000] ^= 1;
    fs.writeFileSync(obj, bytes);
    const dest = path.join(dir, 'damaged-out');
    const f = await dbbackup(['wal-fetch', SEGMENT, dest, '--from', `file://${store}`]);
    assert.equal(f.code, 3);
    assert.match(f.stderr, /is damaged: it decodes to 16777216 bytes with sha256 [0-9a-f]+, its name records/);
    assert.equal(fs.existsSync(dest), false);
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n.startsWith('damaged-out')),
      [],
    );
  });

  test('age encryption: fetch needs the identity; with it the bytes come back', async () => {
    const store = `file://${dir}/age`;
    const p = await dbbackup([
      'wal-push',
      `${dir}/pg_wal/${SEGMENT}`,
      '--to',
      store,
      '--encrypt',
      `age:${recipient}`,
      '--compression',
      'lz4',
    ]);
    assert.equal(p.code, 0, p.stderr);
    const [obj] = fs.readdirSync(path.join(dir, 'age', 'wal', '00000001', SEGMENT));
    assert.match(obj, /\.lz4\.age$/);
    assert.ok(
      fs
        .readFileSync(path.join(dir, 'age', 'wal', '00000001', SEGMENT, obj))
        .subarray(0, 21)
        .toString()
        .startsWith('age-encryption.org/v1'),
    );
    const noKey = await dbbackup(['wal-fetch', SEGMENT, path.join(dir, 'age-out'), '--from', store]);
    // 128 + 2: a restore_command without the archive's key aborts recovery rather than ending it.
    assert.equal(noKey.code, 130);
    assert.match(noKey.stderr, /--identity FILE/);
    const f = await dbbackup([
      'wal-fetch',
      SEGMENT,
      path.join(dir, 'age-out'),
      '--from',
      store,
      '--identity',
      identity,
    ]);
    assert.equal(f.code, 0, f.stderr);
    assert.ok(fs.readFileSync(path.join(dir, 'age-out')).equals(segment));
  });

  describe('on S3 with KMS (moto)', () => {
    let moto: Moto;
    let keyId: string;
    const bucket = 'wal-archive';
    beforeAll(async () => {
      moto = await startMoto();
      const cfg = {
        endpoint: moto.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      };
      await new S3Client(cfg).send(new CreateBucketCommand({ Bucket: bucket }));
      keyId = (await new KMSClient(cfg).send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    });
    afterAll(async () => moto?.stop());

    test('one archive key per KMS key, wrapped, made once; segments fetch back through KMS', async () => {
      const store = `s3://${bucket}/pg/main`;
      const second = path.join(dir, 'pg_wal', '000000010000000000000008');
      fs.writeFileSync(second, segment.subarray(0, 1024 * 1024));
      for (const f of [`${dir}/pg_wal/${SEGMENT}`, second, second]) {
        const p = await dbbackup(['wal-push', f, '--to', store, '--encrypt', `kms:${keyId}`], { env: moto.env });
        assert.equal(p.code, 0, p.stderr);
      }
      const s3 = new S3Client({
        endpoint: moto.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
      const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
      const keys = (
        (await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'pg/main/wal/' }))).Contents ?? []
      ).map((o) => o.Key!);
      assert.equal(keys.filter((k) => k.includes('/keys/')).length, 1, keys.join('\n'));
      assert.equal(keys.filter((k) => /\.kms-[0-9a-f]{16}\.age$/.test(k)).length, 2, keys.join('\n'));
      const out = path.join(dir, 'kms-out');
      const f = await dbbackup(['wal-fetch', SEGMENT, out, '--from', store], { env: moto.env });
      assert.equal(f.code, 0, f.stderr);
      assert.ok(fs.readFileSync(out).equals(segment));
    });
  });
});
