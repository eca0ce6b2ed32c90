// The gs:// backend against OUR OWN fake of the Cloud Storage JSON API (test/harness/fake-gcs.ts):
// resumable-upload recovery, write-once names, the tier layout, and Application Default
// Credentials. The fake implements only the subset the backend uses; nothing here was run
// against Google's service (auth, IAM, retention locks, CMEK and resumable behaviour beyond that
// subset are as Google documents them, not observed).
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, test } from '@jest/globals';
import { ConfigError } from '../../lib/core/errors';
import { RetentionTier, TIER_TAG_KEY } from '../../lib/core/model';
import { parseStorageUrl } from '../../lib/core/urls';
import { chunkSizeFor, GCS_CHUNK_QUANTUM, gcsEndpoint, GcsStorage } from '../../runner/src/storage/gcs';
import { defaultCredentials, GCS_SCOPE, TokenSource } from '../../runner/src/storage/gcs-auth';
import { FakeGcs, startFakeGcs } from '../harness/fake-gcs';
import { freePort } from '../harness/ports';

const KiB = 1024;
const MiB = 1024 * KiB;
const BUCKET = 'vault';
const TOKEN = 'unit-test-token';
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let seq = 0;
const backupId = () =>
  `20260201T0300${String(++seq % 60).padStart(2, '0')}Z-orders-full-${crypto.randomBytes(2).toString('hex')}`;

function pieces(data: Buffer, size = 37 * KiB): Readable {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) out.push(data.subarray(at, at + size));
  return Readable.from(out);
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('gs:// chunk sizes and endpoint', () => {
  test('chunks are multiples of 256 KiB, start at 8 MiB and grow to 32 MiB', () => {
    for (let n = 1; n <= 100; n++) {
      assert.equal(chunkSizeFor(n) % GCS_CHUNK_QUANTUM, 0, `chunk ${n}`);
      if (n > 1) assert.ok(chunkSizeFor(n) >= chunkSizeFor(n - 1));
    }
    assert.equal(chunkSizeFor(1), 8 * MiB);
    assert.equal(chunkSizeFor(17), 16 * MiB);
    assert.equal(chunkSizeFor(100), 32 * MiB);
  });

  test('STORAGE_EMULATOR_HOST selects the endpoint (http:// when no scheme), else Google', () => {
    assert.deepEqual(gcsEndpoint({}), { base: 'https://storage.googleapis.com', emulator: false });
    assert.deepEqual(gcsEndpoint({ STORAGE_EMULATOR_HOST: 'localhost:4443' }), {
      base: 'http://localhost:4443',
      emulator: true,
    });
    assert.deepEqual(gcsEndpoint({ STORAGE_EMULATOR_HOST: 'https://gcs.test:9000/storage/v1/' }), {
      base: 'https://gcs.test:9000',
      emulator: true,
    });
  });
});

describe('gs:// uploads on our fake GCS: recovery, write-once names, cancel', () => {
  let fake: FakeGcs;
  const open = (prefix = 'db/orders') =>
    new GcsStorage(parseStorageUrl(`gs://${BUCKET}/${prefix}`), {
      endpoint: fake.endpoint,
      credentials: defaultCredentials({ GOOGLE_OAUTH_ACCESS_TOKEN: TOKEN }, { emulator: true }),
      chunkSize: (i) => 512 * KiB * Math.min(i, 2),
      retryDelaysMs: [5, 10, 20, 40],
    });
  beforeAll(async () => {
    fake = await startFakeGcs({ buckets: [BUCKET], token: TOKEN, pageSize: 3 });
  });
  afterAll(async () => {
    await fake?.stop();
  });
  beforeEach(() => fake.clearFaults());

  const chunkPuts = (name: string) =>
    fake.requests.filter((r) => r.kind === 'session' && r.method === 'PUT' && r.name === name);

  async function roundTrip(size: number): Promise<{ key: string; name: string }> {
    const s = open();
    const id = backupId();
    const key = `${id}/database.pgdump.zst`;
    const data = crypto.randomBytes(size);
    assert.equal(await s.upload(key, pieces(data), { tier: RetentionTier.DAILY }), size);
    const name = `db/orders/daily/${key}`;
    assert.equal(sha256(fake.bucket(BUCKET).get(name)!.data), sha256(data), 'stored bytes');
    assert.equal(sha256(await readAll(await open().read(key))), sha256(data), 'read back');
    return { key, name };
  }

  test(
    'the session URI, the token and the bucket path: chunks go in order ' +
      'with Content-Range bytes a-b/* and a final bytes a-b/TOTAL',
    async () => {
      const { name } = await roundTrip(3 * 512 * KiB + 1000);
      const ranges = chunkPuts(name).map((r) => r.contentRange);
      // 512 KiB, then 1 MiB chunks; the last one carries the total.
      assert.deepEqual(ranges, [
        `bytes 0-${512 * KiB - 1}/*`,
        `bytes ${512 * KiB}-${1536 * KiB - 1}/*`,
        `bytes ${1536 * KiB}-${1536 * KiB + 1000 - 1}/${1536 * KiB + 1000}`,
      ]);
      const start = fake.requests.find((r) => r.kind === 'upload' && r.name === name)!;
      assert.equal(start.authorized, true, 'the upload was started with the bearer token');
    },
  );

  test('with the default chunk sizes: 8 MiB chunks in order, the last with the total, byte-identical', async () => {
    const s = new GcsStorage(parseStorageUrl(`gs://${BUCKET}/db/orders`), {
      endpoint: fake.endpoint,
      credentials: defaultCredentials({ GOOGLE_OAUTH_ACCESS_TOKEN: TOKEN }, { emulator: true }),
    });
    const key = `${backupId()}/big.bin`;
    const data = crypto.randomBytes(2 * 8 * MiB + 999);
    assert.equal(await s.upload(key, pieces(data, 300 * KiB), { tier: RetentionTier.DAILY }), data.length);
    const name = `db/orders/daily/${key}`;
    assert.deepEqual(
      chunkPuts(name).map((r) => r.contentRange),
      [
        `bytes 0-${8 * MiB - 1}/*`,
        `bytes ${8 * MiB}-${16 * MiB - 1}/*`,
        `bytes ${16 * MiB}-${16 * MiB + 998}/${data.length}`,
      ],
    );
    assert.equal(sha256(await s.readBytes(key)), sha256(data));
  });

  test('a stream that ends exactly on a chunk boundary is completed with an empty bytes */TOTAL', async () => {
    const { name } = await roundTrip(512 * KiB);
    assert.deepEqual(
      chunkPuts(name).map((r) => r.contentRange),
      [`bytes 0-${512 * KiB - 1}/*`, `bytes */${512 * KiB}`],
    );
  });

  test('a chunk answered 503 is resent after asking the session what it holds', async () => {
    fake.inject({ on: 'chunk', skip: 1, times: 2, status: 503 });
    const { name } = await roundTrip(3 * MiB + 5);
    const ranges = chunkPuts(name).map((r) => r.contentRange);
    assert.ok(ranges.filter((r) => r === 'bytes */*').length >= 2, `status queries: ${ranges.join(' ; ')}`);
  });

  test('a connection dropped after half a chunk was kept resumes at the byte the session holds', async () => {
    fake.inject({ on: 'chunk', skip: 1, drop: true, persist: 'half' });
    const { name } = await roundTrip(3 * MiB);
    const ranges = chunkPuts(name).map((r) => r.contentRange);
    // Chunk 2 is 1 MiB from 512 KiB; the session kept 512 KiB of it, so the resend starts at 1 MiB.
    assert.ok(ranges.includes(`bytes ${1 * MiB}-${1536 * KiB - 1}/*`), ranges.join(' ; '));
  });

  test('a lost answer to the last chunk: the session says the object is complete, the upload resolves', async () => {
    fake.inject({ on: 'chunk', skip: 2, drop: true, persist: 'all' });
    await roundTrip(MiB + 77);
  });

  test(
    'a failing upload cancels its session (DELETE of the ' + 'session URI, never of an object) and leaves nothing',
    async () => {
      fake.inject({ on: 'chunk', skip: 1, times: Infinity, status: 503 });
      const s = open();
      const id = backupId();
      const key = `${id}/database.pgdump.zst`;
      await assert.rejects(
        s.upload(key, pieces(crypto.randomBytes(3 * MiB)), { tier: RetentionTier.WEEKLY }),
        /gave up after 5 attempts/,
      );
      const session = [...fake.sessions.values()].find((x) => x.name === `db/orders/weekly/${key}`)!;
      assert.equal(session.state, 'cancelled');
      assert.equal(fake.bucket(BUCKET).has(`db/orders/weekly/${key}`), false);
      assert.equal(await s.stat(key), undefined);
      assert.deepEqual(
        fake.requests.filter((r) => r.kind === 'object' && r.method === 'DELETE'),
        [],
      );
    },
  );

  test('a 4xx other than 408/429 is not retried', async () => {
    fake.inject({ on: 'chunk', status: 400 });
    const s = open();
    const key = `${backupId()}/x.bin`;
    const before = fake.requests.length;
    await assert.rejects(s.upload(key, pieces(crypto.randomBytes(100)), { tier: RetentionTier.DAILY }), /HTTP 400/);
    assert.equal(
      fake.requests.slice(before).filter((r) => r.kind === 'session' && r.contentRange === 'bytes */*').length,
      0,
    );
  });

  test('an object name is written once: an upload onto it fails with 412 and the first object stays', async () => {
    const s = open();
    const key = `${backupId()}/database.pgdump.zst`;
    await s.upload(key, pieces(Buffer.from('first')), { tier: RetentionTier.DAILY });
    await assert.rejects(
      open().upload(key, pieces(Buffer.from('second')), { tier: RetentionTier.DAILY }),
      /already exists; the runner never overwrites/,
    );
    assert.equal((await s.readBytes(key)).toString(), 'first');
    // The precondition is in the request: ifGenerationMatch=0 on every write.
    assert.ok(fake.requests.filter((r) => r.kind === 'upload').length > 0);
  });

  test('putBytes: the same bytes again succeed (an answer lost and retried), other bytes are refused', async () => {
    const s = open();
    const key = `${backupId()}/manifest.json`;
    fake.inject({ on: 'multipart', drop: true, persist: 'all' });
    await s.putBytes(key, Buffer.from('{"a":1}'), { tier: RetentionTier.MONTHLY, contentType: 'application/json' });
    const stored = [...fake.bucket(BUCKET).values()].find((o) => o.name.endsWith(key))!;
    assert.equal(stored.name, `db/orders/monthly/${key}`);
    assert.equal(stored.contentType, 'application/json');
    assert.deepEqual(stored.metadata, { [TIER_TAG_KEY]: RetentionTier.MONTHLY });
    await s.putBytes(key, Buffer.from('{"a":1}'), { tier: RetentionTier.MONTHLY });
    await assert.rejects(
      s.putBytes(key, Buffer.from('{"a":2}'), { tier: RetentionTier.MONTHLY }),
      /already exists with other content/,
    );
    assert.equal((await open().readBytes(key)).toString(), '{"a":1}');
  });

  test('a read broken off by the network resumes with Range from the same generation', async () => {
    const { key } = await roundTrip(700 * KiB);
    const data = fake.bucket(BUCKET).get(`db/orders/daily/${key}`)!.data;
    fake.inject({ on: 'media', times: 2, drop: true });
    assert.equal(sha256(await readAll(await open().read(key))), sha256(data));
  });

  test(
    'backup objects need a tier; other keys (wal/) map ' + 'straight under the prefix; one backup keeps one tier',
    async () => {
      const s = open();
      const id = backupId();
      await assert.rejects(s.putBytes(`${id}/manifest.json`, Buffer.from('{}')), /need a retention tier/);
      await s.putBytes('wal/keys/k.json', Buffer.from('{}'));
      assert.ok(fake.bucket(BUCKET).has('db/orders/wal/keys/k.json'));
      await s.upload(`${id}/a.bin`, pieces(Buffer.from('a')), { tier: RetentionTier.WEEKLY });
      await assert.rejects(
        s.upload(`${id}/b.bin`, pieces(Buffer.from('b')), { tier: RetentionTier.DAILY }),
        /already stored under weekly/,
      );
      // A copy written without a tier (as copyArtifact would after a read) goes to the backup's tier folder.
      const fresh = open();
      await fresh.putBytes(`${id}/c.bin`, Buffer.from('c'));
      assert.ok(fake.bucket(BUCKET).has(`db/orders/weekly/${id}/c.bin`));
    },
  );

  test('a bucket without a prefix: <tier>/<id>/ at the top, listFolders unions the tiers', async () => {
    const s = open('');
    const [a, b] = [backupId(), backupId()];
    await s.putBytes(`${a}/manifest.json`, Buffer.from('{}'), { tier: RetentionTier.DAILY });
    await s.putBytes(`${b}/manifest.json`, Buffer.from('{}'), { tier: RetentionTier.MONTHLY });
    assert.ok(fake.bucket(BUCKET).has(`daily/${a}/manifest.json`));
    assert.ok(fake.bucket(BUCKET).has(`monthly/${b}/manifest.json`));
    const folders = await open('').listFolders('');
    assert.ok(folders.includes(a) && folders.includes(b), folders.join(','));
    assert.ok(!folders.includes('daily') && !folders.includes('monthly'), 'tier folders are not listed as folders');
    assert.ok(folders.includes('db'), 'an untiered top-level folder is listed as is');
  });

  test('an unknown bucket is an error naming it, not an empty storage', async () => {
    const s = new GcsStorage(parseStorageUrl('gs://no-such-bucket/x'), {
      endpoint: fake.endpoint,
      credentials: defaultCredentials({ GOOGLE_OAUTH_ACCESS_TOKEN: TOKEN }, { emulator: true }),
      retryDelaysMs: [],
    });
    await assert.rejects(
      s.listFolders(''),
      /HTTP 404 The specified bucket does not exist\. Check the bucket name in gs:\/\/no-such-bucket\/x/,
    );
  });

  test(
    'without a valid token the server answers 401 and the error names ' +
      'where the credentials came from, never the token',
    async () => {
      const s = new GcsStorage(parseStorageUrl(`gs://${BUCKET}/x`), {
        endpoint: fake.endpoint,
        credentials: defaultCredentials({ GOOGLE_OAUTH_ACCESS_TOKEN: 'wrong-token-value' }, { emulator: true }),
        retryDelaysMs: [],
      });
      const err = await s.listFolders('').then(
        () => assert.fail('listing succeeded without a valid token'),
        (e: Error) => e,
      );
      assert.match(err.message, /HTTP 401 .*GOOGLE_OAUTH_ACCESS_TOKEN.*roles\/storage\.objectCreator/);
      assert.doesNotMatch(err.message, /wrong-token-value/);
    },
  );
});

describe('gs:// Application Default Credentials (token endpoint and metadata server of our fake)', () => {
  let fake: FakeGcs;
  let dir: string;
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const user = {
    clientId: 'cid.apps.googleusercontent.com',
    clientSecret: 'user-secret',
    refreshToken: 'user-refresh-token',
  };
  beforeAll(async () => {
    fake = await startFakeGcs({
      buckets: [BUCKET],
      serviceAccountPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      authorizedUser: user,
      tokenLifetimeSeconds: 3600,
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-gcs-adc-'));
  });
  afterAll(async () => {
    await fake?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function keyFile(extra: Record<string, unknown> = {}): string {
    const file = path.join(dir, `key-${crypto.randomBytes(3).toString('hex')}.json`);
    const key = {
      type: 'service_account',
      project_id: 'p',
      private_key_id: 'kid1',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: 'dbbackup-runner@p.iam.gserviceaccount.com',
      token_uri: `${fake.endpoint}/token`,
      ...extra,
    };
    fs.writeFileSync(file, JSON.stringify(key), { mode: 0o600 });
    return file;
  }

  test('GOOGLE_OAUTH_ACCESS_TOKEN comes first, as given', async () => {
    const c = defaultCredentials({
      GOOGLE_OAUTH_ACCESS_TOKEN: 'tok',
      GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent.json',
    });
    assert.equal(await c.token(), 'tok');
  });

  test(
    'a service-account key: an RS256 JWT (scope devstorage.read_write) ' +
      'exchanged at token_uri, cached, refreshed before expiry',
    async () => {
      const before = fake.issued.length;
      const c = defaultCredentials({ GOOGLE_APPLICATION_CREDENTIALS: keyFile() });
      const t1 = await c.token();
      assert.equal(fake.issued.length, before + 1);
      assert.equal(t1, fake.issued.at(-1));
      assert.equal(await c.token(), t1, 'cached while far from expiry');
      assert.equal(fake.issued.length, before + 1);
      c.invalidate();
      assert.notEqual(await c.token(), t1, 'a 401 makes it fetch a new one');
      const claims = fake.grants.at(-1)!;
      assert.equal(claims.iss, 'dbbackup-runner@p.iam.gserviceaccount.com');
      assert.equal(claims.scope, GCS_SCOPE);
      assert.equal(claims.aud, `${fake.endpoint}/token`);
      assert.equal(Number(claims.exp) - Number(claims.iat), 3600);
    },
  );

  test('a short-lived token is refreshed halfway through its life', async () => {
    const short = await startFakeGcs({
      buckets: [],
      serviceAccountPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      tokenLifetimeSeconds: 1,
    });
    try {
      const file = keyFile({ token_uri: `${short.endpoint}/token` });
      const c = defaultCredentials({ GOOGLE_APPLICATION_CREDENTIALS: file });
      const t1 = await c.token();
      assert.equal(await c.token(), t1);
      await new Promise((r) => setTimeout(r, 600));
      assert.notEqual(await c.token(), t1);
      assert.equal(short.issued.length, 2);
    } finally {
      await short.stop();
    }
  });

  test('a key the token endpoint rejects fails with its error, never the key or assertion', async () => {
    const other = crypto
      .generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const c = defaultCredentials({ GOOGLE_APPLICATION_CREDENTIALS: keyFile({ private_key: other }) });
    const err = await c.token().then(
      () => assert.fail('a wrongly signed JWT was accepted'),
      (e: Error) => e,
    );
    assert.match(
      err.message,
      new RegExp(
        /refused the service account dbbackup-runner@p\.iam\.gserviceaccount\.com/.source +
          / \(invalid_grant: Invalid JWT Signature\.\)/.source,
      ),
    );
    assert.doesNotMatch(err.message, /PRIVATE KEY|eyJ/);
  });

  test(
    "gcloud's authorized_user credentials " +
      '(GOOGLE_APPLICATION_CREDENTIALS or the well-known file) use the refresh-token grant',
    async () => {
      const file = path.join(dir, 'adc.json');
      fs.writeFileSync(
        file,
        JSON.stringify({
          type: 'authorized_user',
          client_id: user.clientId,
          client_secret: user.clientSecret,
          refresh_token: user.refreshToken,
          token_uri: `${fake.endpoint}/token`,
        }),
      );
      assert.equal(await defaultCredentials({ GOOGLE_APPLICATION_CREDENTIALS: file }).token(), fake.issued.at(-1));
      const gcloudDir = path.join(dir, 'gcloud');
      fs.mkdirSync(gcloudDir);
      fs.copyFileSync(file, path.join(gcloudDir, 'application_default_credentials.json'));
      const c = defaultCredentials({ CLOUDSDK_CONFIG: gcloudDir, GCE_METADATA_HOST: '127.0.0.1:1' });
      assert.match(c.description, /gcloud's application-default credentials/);
      assert.equal(await c.token(), fake.issued.at(-1));
    },
  );

  test(
    'no file: the metadata server (keyless, the attached ' + 'service account), asked with Metadata-Flavor: Google',
    async () => {
      const host = new URL(fake.endpoint).host;
      const c = defaultCredentials({ GCE_METADATA_HOST: host, HOME: dir });
      assert.match(c.description, /attached service account/);
      const t = await c.token();
      assert.equal(t, fake.issued.at(-1));
      assert.equal(fake.requests.filter((r) => r.kind === 'metadata').at(-1)?.status, 200);
    },
  );

  test('no credentials anywhere: a configuration error that says what to set', async () => {
    const c = defaultCredentials({ GCE_METADATA_HOST: `127.0.0.1:${await freePort()}`, HOME: dir });
    await assert.rejects(
      c.token(),
      (e: Error) =>
        e instanceof ConfigError &&
        /GOOGLE_APPLICATION_CREDENTIALS/.test(e.message) &&
        /gcloud auth application-default login/.test(e.message),
    );
  });

  test('unsupported credential types are refused up front', () => {
    const file = path.join(dir, 'wif.json');
    fs.writeFileSync(file, JSON.stringify({ type: 'external_account', audience: 'x' }));
    assert.throws(
      () => defaultCredentials({ GOOGLE_APPLICATION_CREDENTIALS: file }),
      (e: Error) => e instanceof ConfigError && /external_account/.test(e.message),
    );
    assert.throws(
      () => defaultCredentials({ GOOGLE_APPLICATION_CREDENTIALS: path.join(dir, 'missing.json') }),
      ConfigError,
    );
  });

  test('with an emulator and no credentials, no token is sent (as Google libraries do)', async () => {
    const c: TokenSource = defaultCredentials({ HOME: dir }, { emulator: true });
    assert.equal(await c.token(), undefined);
  });

  test('the storage sends the token it got from a service-account key, and a 401 gets one fresh token', async () => {
    const guarded = await startFakeGcs({
      buckets: [BUCKET],
      token: 'never-issued',
      serviceAccountPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    });
    try {
      const creds = defaultCredentials({
        GOOGLE_APPLICATION_CREDENTIALS: keyFile({ token_uri: `${guarded.endpoint}/token` }),
      });
      const s = new GcsStorage(parseStorageUrl(`gs://${BUCKET}/p`), {
        endpoint: guarded.endpoint,
        credentials: creds,
        retryDelaysMs: [],
      });
      await s.putBytes('wal/x', Buffer.from('x'));
      assert.equal(guarded.requests.find((r) => r.kind === 'upload')?.authorized, true);
      // Revoke every issued token: the next request gets a 401, fetches a new token and succeeds.
      guarded.issued.splice(0);
      assert.equal((await s.readBytes('wal/x')).toString(), 'x');
      assert.equal(guarded.issued.length, 1);
    } finally {
      await guarded.stop();
    }
  });
});
