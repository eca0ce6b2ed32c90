// The storage contract every backend keeps (runner/src/storage/storage.ts), run against each:
// file:// on a temporary directory, s3:// on moto (a real S3-protocol server), and gs:// on OUR
// OWN fake of the Cloud Storage JSON API (test/harness/fake-gcs.ts) — no real GCS-protocol server
// can run here, so the gs:// results show the backend keeps the contract against that subset of
// the API, not that Google's service behaves like the fake. az:// runs on Azurite, Microsoft's
// Azure Storage emulator (test/harness/azurite.ts), not on Azure itself.
import {
  CreateBucketCommand,
  GetObjectTaggingCommand,
  ListMultipartUploadsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { RetentionTier, TIER_TAG_KEY } from '../../lib/core/model';
import { parseStorageUrl } from '../../lib/core/urls';
import { readCatalog } from '../../runner/src/catalog';
import { azureAccess } from '../../runner/src/storage/azure-auth';
import { AzureStorage } from '../../runner/src/storage/azure';
import { FileStorage } from '../../runner/src/storage/file';
import { GcsStorage } from '../../runner/src/storage/gcs';
import { defaultCredentials } from '../../runner/src/storage/gcs-auth';
import { S3Storage } from '../../runner/src/storage/s3';
import { NotFoundError, Storage } from '../../runner/src/storage/storage';
import { Azurite, startAzurite } from '../harness/azurite';
import { FakeGcs, startFakeGcs } from '../harness/fake-gcs';
import { Moto, MOTO_ENV, startMoto } from '../harness/moto';

const KiB = 1024;
const MiB = 1024 * KiB;

/** What the shared tests need from a backend. */
interface Backend {
  readonly name: string;
  /** A fresh instance (no cached state) on `sub` below this backend's test location. */
  open(sub: string): Storage;
  /** A size that spans several chunks / parts of this backend's uploads. */
  readonly multiChunk: number;
  /** Assert that `key` (written with `tier`) is where this backend's lifecycle rules look. */
  assertTier(storage: Storage, key: string, tier: RetentionTier): Promise<void>;
  /** Assert that no upload is left open (S3 multipart uploads, GCS sessions, file:// temporaries). */
  assertNoOpenUploads(sub: string): Promise<void>;
  /** Whether the runner may delete here (file://); object stores keep a failed backup's objects. */
  readonly deletes: boolean;
}

let n = 0;
/** A backup id, unique per call (object stores never overwrite). */
function backupId(): string {
  n++;
  return `20260105T0200${String(n % 60).padStart(2, '0')}Z-shop-full-${crypto.randomBytes(2).toString('hex')}`;
}

/** `size` random bytes as a stream of irregular pieces (1 byte to 100 KiB), like a pipeline's output. */
function randomStream(size: number): { data: Buffer; stream: Readable } {
  const data = crypto.randomBytes(size);
  const pieces: Buffer[] = [];
  for (let at = 0; at < size; ) {
    const len = Math.min(size - at, 1 + crypto.randomInt(100 * KiB));
    pieces.push(data.subarray(at, at + len));
    at += len;
  }
  return { data, stream: Readable.from(pieces) };
}

/** A stream that yields `bytes` and then fails. */
function failingStream(bytes: number): Readable {
  return Readable.from(
    (async function* () {
      for (let at = 0; at < bytes; at += 64 * KiB) {
        yield crypto.randomBytes(Math.min(64 * KiB, bytes - at));
        await new Promise((r) => setImmediate(r));
      }
      throw new Error('the producer failed');
    })(),
  );
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function assertNothingAt(storage: Storage, key: string, folder: string): Promise<void> {
  assert.equal(await storage.stat(key), undefined, `stat ${key}`);
  await assert.rejects(storage.read(key), NotFoundError);
  assert.deepEqual(await storage.list(folder), []);
}

function contract(backend: () => Backend): void {
  let b: Backend;
  beforeAll(() => {
    b = backend();
  });

  test('upload then read back byte-identical (sha256) for 0, 1, 256 KiB − 1 bytes and several chunks', async () => {
    const s = b.open('sizes');
    const id = backupId();
    for (const size of [0, 1, 256 * KiB - 1, b.multiChunk]) {
      const { data, stream } = randomStream(size);
      const key = `${id}/artifact-${size}.bin`;
      assert.equal(await s.upload(key, stream, { tier: RetentionTier.DAILY }), size, `uploaded size of ${size}`);
      assert.equal(sha256(await readAll(await s.read(key))), sha256(data), `read of ${size}`);
      assert.ok((await s.readBytes(key)).equals(data), `readBytes of ${size}`);
      assert.deepEqual(await s.stat(key), { key, size });
    }
  });

  test('an upload whose stream fails (after several chunks) leaves nothing at its key', async () => {
    const s = b.open('failed');
    const id = backupId();
    for (const bytes of [100 * KiB, Math.floor(b.multiChunk * 0.75)]) {
      const key = `${id}/dump-${bytes}.bin`;
      await assert.rejects(s.upload(key, failingStream(bytes), { tier: RetentionTier.DAILY }), /the producer failed/);
      await assertNothingAt(s, key, id);
      await assertNothingAt(b.open('failed'), key, id);
    }
    await b.assertNoOpenUploads('failed');
  });

  test('an upload cancelled by its signal leaves nothing at its key', async () => {
    const s = b.open('aborted');
    const id = backupId();
    const key = `${id}/dump.bin`;
    const controller = new AbortController();
    let sent = 0;
    const endless = Readable.from(
      (async function* () {
        for (;;) {
          const c = crypto.randomBytes(64 * KiB);
          sent += c.length;
          if (sent > b.multiChunk / 2) controller.abort(new Error('cancelled by the test'));
          yield c;
          await new Promise((r) => setImmediate(r));
        }
      })(),
    );
    await assert.rejects(s.upload(key, endless, { tier: RetentionTier.DAILY, signal: controller.signal }));
    endless.destroy();
    await assertNothingAt(s, key, id);
    await b.assertNoOpenUploads('aborted');
  });

  test('putBytes is atomic: a concurrent reader sees no object or the whole object', async () => {
    const s = b.open('atomic');
    const key = `${backupId()}/manifest.json`;
    const data = crypto.randomBytes(2 * MiB);
    let done = false;
    const seen: string[] = [];
    const reader = (async () => {
      while (!done) {
        try {
          const got = await s.readBytes(key);
          seen.push(got.equals(data) ? 'whole' : `partial ${got.length}`);
        } catch (e) {
          if (!(e instanceof NotFoundError)) throw e;
          seen.push('none');
        }
      }
    })();
    await s.putBytes(key, data, { tier: RetentionTier.WEEKLY, contentType: 'application/json' });
    done = true;
    await reader;
    assert.ok((await s.readBytes(key)).equals(data));
    assert.deepEqual(
      seen.filter((x) => x !== 'none' && x !== 'whole'),
      [],
      'no reader saw a partial object',
    );
  });

  test('stat, list and listFolders speak logical keys (a backup id first), whatever the layout', async () => {
    const s = b.open('listing');
    const [id1, id2] = [backupId(), backupId()];
    await s.upload(`${id1}/database.pgdump`, Readable.from([Buffer.from('dump one')]), { tier: RetentionTier.WEEKLY });
    await s.upload(`${id1}/sub/part.bin`, Readable.from([Buffer.from('sub')]), { tier: RetentionTier.WEEKLY });
    await s.putBytes(`${id1}/manifest.json`, Buffer.from('{}'), { tier: RetentionTier.WEEKLY });
    await s.upload(`${id2}/database.pgdump`, Readable.from([Buffer.from('dump two!')]), { tier: RetentionTier.DAILY });
    await s.upload('wal/0000000100000000/000000010000000000000001/x.zst', Readable.from([Buffer.from('wal')]));
    await s.putBytes('wal/keys/k1.json', Buffer.from('{"k":1}'));
    for (const fresh of [s, b.open('listing')]) {
      assert.deepEqual(await fresh.listFolders(''), [id1, id2, 'wal'].sort());
      assert.deepEqual(await fresh.listFolders(id1), ['sub']);
      assert.deepEqual(await fresh.listFolders('wal'), ['0000000100000000', 'keys']);
      assert.deepEqual(await fresh.list(id1), [
        { key: `${id1}/database.pgdump`, size: 8 },
        { key: `${id1}/manifest.json`, size: 2 },
        { key: `${id1}/sub/part.bin`, size: 3 },
      ]);
      assert.deepEqual(
        (await fresh.list('')).map((o) => o.key).sort(),
        [
          `${id1}/database.pgdump`,
          `${id1}/manifest.json`,
          `${id1}/sub/part.bin`,
          `${id2}/database.pgdump`,
          'wal/0000000100000000/000000010000000000000001/x.zst',
          'wal/keys/k1.json',
        ].sort(),
      );
      assert.deepEqual(await fresh.list('wal/keys'), [{ key: 'wal/keys/k1.json', size: 7 }]);
      assert.deepEqual(await fresh.stat(`${id2}/database.pgdump`), { key: `${id2}/database.pgdump`, size: 9 });
      assert.equal((await fresh.readBytes(`${id1}/sub/part.bin`)).toString(), 'sub');
      assert.equal((await fresh.readBytes('wal/keys/k1.json')).toString(), '{"k":1}');
    }
  });

  test('missing objects: NotFoundError from read/readBytes, undefined from stat, empty lists', async () => {
    const s = b.open('missing');
    const id = backupId();
    await s.putBytes(`${id}/manifest.json`, Buffer.from('{}'), { tier: RetentionTier.DAILY });
    for (const key of [`${id}/nothing.bin`, `${backupId()}/manifest.json`, 'wal/nothing', 'nothing']) {
      await assert.rejects(s.read(key), NotFoundError, key);
      await assert.rejects(s.readBytes(key), NotFoundError, key);
      assert.equal(await s.stat(key), undefined, key);
    }
    assert.deepEqual(await s.list(backupId()), []);
    assert.deepEqual(await s.listFolders(backupId()), []);
    assert.deepEqual(await b.open('never-written').listFolders(''), []);
    assert.deepEqual(await b.open('never-written').list(''), []);
  });

  test('the tier lands where the lifecycle rules look (S3, Azure: tag; GCS: <prefix>/<tier>/ name)', async () => {
    const s = b.open('tiers');
    for (const tier of [RetentionTier.DAILY, RetentionTier.WEEKLY, RetentionTier.MONTHLY]) {
      const id = backupId();
      await s.upload(`${id}/database.pgdump`, Readable.from([Buffer.from(tier)]), { tier });
      await s.putBytes(`${id}/manifest.json`, Buffer.from('{}'), { tier, contentType: 'application/json' });
      await b.assertTier(s, `${id}/database.pgdump`, tier);
      await b.assertTier(s, `${id}/manifest.json`, tier);
      assert.equal(
        (await b.open('tiers').readBytes(`${id}/database.pgdump`)).toString(),
        tier,
        'a fresh instance finds the backup under its tier',
      );
    }
  });

  test(
    'an unfinished backup folder (no manifest) is never ' + 'taken for a backup, before or after discardIncomplete',
    async () => {
      const s = b.open('incomplete');
      const id = backupId();
      await s.upload(`${id}/database.pgdump`, Readable.from([Buffer.from('half a backup')]), {
        tier: RetentionTier.DAILY,
      });
      const before = await readCatalog(s);
      assert.deepEqual(before.backups, []);
      assert.deepEqual(before.incomplete, [id]);
      await s.discardIncomplete(id);
      const catalog = await readCatalog(b.open('incomplete'));
      assert.deepEqual(catalog.backups, []);
      if (b.deletes) {
        assert.deepEqual(catalog.incomplete, [], 'file:// removes what the failed backup wrote');
      } else {
        assert.deepEqual(
          catalog.incomplete,
          [id],
          'object stores keep it (no delete right) until the lifecycle rules expire it',
        );
        assert.deepEqual(await s.list(id), [{ key: `${id}/database.pgdump`, size: 13 }]);
      }
    },
  );

  test('removeFolder deletes only where the runner may delete', async () => {
    const s = b.open('remove');
    const id = backupId();
    await s.putBytes(`${id}/manifest.json`, Buffer.from('{}'), { tier: RetentionTier.DAILY });
    if (b.deletes) {
      await s.removeFolder(id);
      assert.deepEqual(await s.list(id), []);
    } else {
      await assert.rejects(s.removeFolder(id), /never deletes/);
      assert.equal((await s.readBytes(`${id}/manifest.json`)).toString(), '{}');
    }
  });
}

describe('storage contract: file:// (temporary directory)', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-contract-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  contract(() => ({
    name: 'file',
    open: (sub) => new FileStorage(parseStorageUrl(`file://${dir}/${sub}`)),
    multiChunk: 3 * MiB + 17,
    assertTier: async () => undefined, // file:// has no lifecycle rules; `prune` applies the tiers
    assertNoOpenUploads: async (sub) => {
      const walk = (d: string): string[] =>
        fs.existsSync(d)
          ? fs
              .readdirSync(d, { withFileTypes: true })
              .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [e.name]))
          : [];
      assert.deepEqual(
        walk(path.join(dir, sub)).filter((f) => f.includes('.partial-')),
        [],
      );
    },
    deletes: true,
  }));
});

describe('storage contract: s3:// (moto, a real S3-protocol server)', () => {
  let moto: Moto;
  let client: S3Client;
  const bucket = 'contract';
  beforeAll(async () => {
    moto = await startMoto();
    client = new S3Client({
      endpoint: moto.endpoint,
      region: MOTO_ENV.AWS_REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  });
  afterAll(async () => {
    client?.destroy();
    await moto?.stop();
  });
  contract(() => ({
    name: 's3',
    open: (sub) => new S3Storage(parseStorageUrl(`s3://${bucket}/backups/${sub}`), client),
    // Two 8 MiB parts and a bit: the multipart path with parts in flight.
    multiChunk: 2 * 8 * MiB + 12345,
    assertTier: async (_s, key, tier) => {
      const tags = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: `backups/tiers/${key}` }));
      assert.deepEqual(tags.TagSet, [{ Key: TIER_TAG_KEY, Value: tier }]);
    },
    assertNoOpenUploads: async (sub) => {
      const open = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `backups/${sub}/` }));
      assert.equal(open.Uploads?.length ?? 0, 0, 'no multipart upload is left open');
    },
    deletes: false,
  }));
});

describe('storage contract: gs:// (OUR fake of the GCS JSON API, not Google)', () => {
  let fake: FakeGcs;
  const bucket = 'contract';
  const token = 'contract-test-token';
  beforeAll(async () => {
    fake = await startFakeGcs({ buckets: [bucket], token, pageSize: 2 });
  });
  afterAll(async () => {
    await fake?.stop();
  });
  contract(() => ({
    name: 'gs',
    open: (sub) =>
      new GcsStorage(parseStorageUrl(`gs://${bucket}/backups/${sub}`), {
        endpoint: fake.endpoint,
        credentials: defaultCredentials({ GOOGLE_OAUTH_ACCESS_TOKEN: token }, { emulator: true }),
        // Growing chunks of 256 KiB, 512 KiB, 768 KiB, then 1 MiB: several chunks in a small test.
        chunkSize: (i) => 256 * KiB * Math.min(i, 4),
        retryDelaysMs: [10, 20, 40],
      }),
    multiChunk: 256 * KiB * 10 + 4321,
    assertTier: async (_s, key, tier) => {
      const o = fake.bucket(bucket).get(`backups/tiers/${tier}/${key}`);
      assert.ok(
        o !== undefined,
        `backups/tiers/${tier}/${key} exists (names: ` +
          `${[...fake.bucket(bucket).keys()].filter((k) => k.includes(key.split('/')[0])).join(', ')})`,
      );
      assert.deepEqual(o.metadata, { [TIER_TAG_KEY]: tier });
    },
    assertNoOpenUploads: async (sub) => {
      const open = [...fake.sessions.values()].filter(
        (s) => s.name.startsWith(`backups/${sub}/`) && s.state === 'open',
      );
      assert.deepEqual(
        open.map((s) => s.name),
        [],
        'every failed session was cancelled',
      );
      assert.deepEqual(
        fake.requests.filter((r) => r.kind === 'object' && r.method === 'DELETE'),
        [],
        'no object DELETE was tried',
      );
    },
    deletes: false,
  }));
});

describe("storage contract: az:// (Azurite, Microsoft's emulator, not Azure)", () => {
  let azurite: Azurite;
  const container = 'contract';
  beforeAll(async () => {
    azurite = await startAzurite();
    await azurite.createContainer(container);
  });
  afterAll(async () => {
    await azurite?.stop();
  });
  contract(() => ({
    name: 'az',
    open: (sub) => {
      const url = parseStorageUrl(`az://${azurite.account}/${container}/backups/${sub}`);
      return new AzureStorage(url, {
        access: azureAccess(
          url,
          { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString },
          {
            retryOptions: { maxTries: 2, retryDelayInMs: 50 },
          },
        ),
        // Growing blocks of 256 KiB, 512 KiB, 768 KiB, then 1 MiB: several blocks in flight in a small test.
        blockSize: (i) => 256 * KiB * Math.min(i, 4),
      });
    },
    multiChunk: 256 * KiB * 10 + 4321,
    assertTier: async (_s, key, tier) => {
      const blob = azurite.client.getContainerClient(container).getBlobClient(`backups/tiers/${key}`);
      assert.deepEqual((await blob.getTags()).tags, { [TIER_TAG_KEY]: tier });
    },
    assertNoOpenUploads: async (sub) => {
      // Azure has no upload to abort: staged blocks belong to no blob until committed, and the
      // service discards them after 7 days. What must hold: nothing under sub/ was committed.
      const c = azurite.client.getContainerClient(container);
      const committed: string[] = [];
      for await (const b of c.listBlobsFlat({ prefix: `backups/${sub}/` })) committed.push(b.name);
      assert.deepEqual(committed, [], 'no blob was committed');
      for await (const b of c.listBlobsFlat({ prefix: `backups/${sub}/`, includeUncommitedBlobs: true })) {
        const blocks = await c.getBlockBlobClient(b.name).getBlockList('all');
        assert.deepEqual(blocks.committedBlocks ?? [], [], `${b.name} has no committed block`);
      }
    },
    deletes: false,
  }));
});
