// End to end: `dbbackup` (the bundle) backs PostgreSQL up to az:// and reads it back, against
// Azurite (Microsoft's Azure Storage emulator, test/harness/azurite.ts) — not Azure itself: no
// Entra ID, managed identity, RBAC, lifecycle management or immutability policy is exercised.
import {
  ContainerSASPermissions,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { RetentionTier, TIER_TAG_KEY } from '../../lib/core/model';
import { parseStorageUrl } from '../../lib/core/urls';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { AzureStorage } from '../../runner/src/storage/azure';
import { azureAccess } from '../../runner/src/storage/azure-auth';
import { Azurite, startAzurite } from '../harness/azurite';
import { fingerprint, loadFixture } from '../harness/pg-fixture';
import { TcpProxy } from '../harness/proxy';
import { dbbackup } from '../harness/runner';

interface Manifest {
  id: string;
  tier: string;
  manualRestore: string[];
  artifacts: { name: string; size: number; sha256: string }[];
}

/** No Azure variable of the caller's environment leaks into a run: each test names its own. */
const CLEAN = {
  AZURE_STORAGE_CONNECTION_STRING: undefined,
  AZURE_STORAGE_ACCOUNT: undefined,
  AZURE_STORAGE_KEY: undefined,
  AZURE_STORAGE_SAS_TOKEN: undefined,
  AZURE_STORAGE_BLOB_ENDPOINT: undefined,
};

describe('PostgreSQL to az:// on Azurite (Microsoft\'s emulator, not Azure)', () => {
  let pg: LocalPostgres;
  let azurite: Azurite;
  let env: Record<string, string | undefined>;
  let expected: Record<string, string>;
  let first: Manifest;
  const container = 'backups';
  let store: string;

  beforeAll(async () => {
    [pg, azurite] = await Promise.all([startLocalPostgres(), startAzurite()]);
    await azurite.createContainer(container);
    store = `az://${azurite.account}/${container}/prod/shop`;
    env = { ...pg.env, ...CLEAN, AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString };
    await loadFixture(pg, 'shop');
    expected = await fingerprint(pg, 'shop');
    // About 50 MB of incompressible rows (six 8 MiB blocks): long enough to cut the storage off mid-upload.
    await pg.sql('CREATE DATABASE big');
    await pg.sql(
      "CREATE TABLE noise AS SELECT i, decode(string_agg(md5(i::text || j::text), ''), 'hex') AS b" +
        ' FROM generate_series(1, 16000) i, generate_series(1, 200) j GROUP BY i',
      'big',
    );
  });
  afterAll(async () => {
    await Promise.all([pg?.stop(), azurite?.stop()]);
  });

  const blobs = async (prefix: string, uncommitted = false) => {
    const out: { name: string; size: number; tags?: Record<string, string>; created: number }[] = [];
    const c = azurite.client.getContainerClient(container);
    for await (const b of c.listBlobsFlat({ prefix, includeTags: true, includeUncommitedBlobs: uncommitted })) {
      const created = b.properties.createdOn?.getTime() ?? 0;
      out.push({ name: b.name, size: b.properties.contentLength ?? 0, tags: b.tags, created });
    }
    return out;
  };
  const backup = (db: string, to: string, e: Record<string, string | undefined>) =>
    dbbackup(['backup', '--engine', 'postgres', '--source', pg.url(db), '--to', to, '--json'], { env: e });
  /** A container SAS token signed with the account key. */
  const containerSas = (permissions: string) =>
    generateBlobSASQueryParameters(
      {
        containerName: container,
        permissions: ContainerSASPermissions.parse(permissions),
        expiresOn: new Date(Date.now() + 3600_000),
      },
      new StorageSharedKeyCredential(azurite.account, azurite.key),
    ).toString();
  /** Blocks staged but not committed under a prefix. */
  const staged = async (prefix: string) => {
    let n = 0;
    const c = azurite.client.getContainerClient(container);
    for await (const b of c.listBlobsFlat({ prefix, includeUncommitedBlobs: true })) {
      n += ((await c.getBlockBlobClient(b.name).getBlockList('uncommitted')).uncommittedBlocks ?? []).length;
    }
    return n;
  };
  const noSecrets = (out: string) => {
    assert.ok(!out.includes(azurite.key), 'the account key never shows in output or logs');
    assert.ok(!out.includes(azurite.key.slice(0, 20)), 'nor a piece of it');
  };

  test('backup: block blobs under <prefix>/<id>/, tagged with the tier, the manifest last, no key shown', async () => {
    const b = await backup('shop', store, env);
    assert.equal(b.code, 0, b.stderr);
    noSecrets(b.stdout + b.stderr);
    first = JSON.parse(b.stdout) as Manifest;
    const base = `prod/shop/${first.id}/`;
    const mine = await blobs(base);
    const names = [...first.artifacts.map((a) => base + a.name), base + 'manifest.json'];
    assert.deepEqual(mine.map((o) => o.name).sort(), names.sort());
    for (const o of mine) assert.deepEqual(o.tags, { [TIER_TAG_KEY]: first.tier }, o.name);
    const manifest = mine.find((o) => o.name.endsWith('manifest.json'))!;
    assert.ok(mine.every((o) => o.created <= manifest.created), 'the manifest is the last blob written');
    for (const a of first.artifacts) assert.equal(mine.find((o) => o.name === base + a.name)!.size, a.size, a.name);
    for (const a of first.artifacts) {
      const props = await azurite.client.getContainerClient(container).getBlobClient(base + a.name).getProperties();
      assert.equal(props.blobType, 'BlockBlob', a.name);
    }
    assert.ok(
      first.manualRestore.some((l) =>
        l.includes(`blob download --account-name ${azurite.account} --container-name ${container} --name ${base}`),
      ),
      first.manualRestore.join('\n'),
    );
  });

  test('list, verify --deep and restore read it back (byte-identical database)', async () => {
    const l = await dbbackup(['list', '--from', store, '--json'], { env });
    assert.equal(l.code, 0, l.stderr);
    const listed = JSON.parse(l.stdout) as { backups: { id: string; tier: string }[]; incomplete: string[] };
    assert.deepEqual(listed.backups.map((x) => [x.id, x.tier]), [[first.id, first.tier]]);
    const v = await dbbackup(['verify', '--from', store, '--id', first.id, '--deep'], { env });
    assert.equal(v.code, 0, v.stderr);
    const r = await dbbackup(['restore', '--from', store, '--id', first.id, '--target', pg.url('from_azure')], { env });
    assert.equal(r.code, 0, r.stderr);
    noSecrets(l.stdout + l.stderr + v.stdout + v.stderr + r.stdout + r.stderr);
    assert.deepEqual(await fingerprint(pg, 'from_azure'), expected);
  });

  test('the rest of the chain: AZURE_STORAGE_KEY, and a SAS token, with AZURE_STORAGE_BLOB_ENDPOINT', async () => {
    const withKey = { AZURE_STORAGE_KEY: azurite.key, AZURE_STORAGE_BLOB_ENDPOINT: azurite.endpoint };
    const keyEnv = { ...pg.env, ...CLEAN, ...withKey };
    const k = await dbbackup(['verify', '--from', store, '--id', first.id], { env: keyEnv });
    assert.equal(k.code, 0, k.stderr);
    noSecrets(k.stdout + k.stderr);
    const sas = containerSas('rcwlt');
    const sig = new URLSearchParams(sas).get('sig')!;
    const sasEnv = { ...pg.env, ...CLEAN, AZURE_STORAGE_SAS_TOKEN: sas, AZURE_STORAGE_BLOB_ENDPOINT: azurite.endpoint };
    const b = await backup('shop', `az://${azurite.account}/${container}/sas`, sasEnv);
    assert.equal(b.code, 0, b.stderr);
    const m = JSON.parse(b.stdout) as Manifest;
    const from = `az://${azurite.account}/${container}/sas`;
    const v = await dbbackup(['verify', '--from', from, '--id', m.id, '--deep'], { env: sasEnv });
    assert.equal(v.code, 0, v.stderr);
    for (const out of [b.stdout + b.stderr, v.stdout + v.stderr]) {
      assert.ok(!out.includes(sig) && !out.includes(encodeURIComponent(sig)), 'the SAS signature never shows');
      noSecrets(out);
    }
    // A read-only SAS cannot write: the backup fails (exit 1), names the missing permission, commits nothing.
    const readOnly = containerSas('rl');
    const roEnv = { ...sasEnv, AZURE_STORAGE_SAS_TOKEN: readOnly };
    const ro = await backup('shop', `az://${azurite.account}/${container}/readonly`, roEnv);
    assert.equal(ro.code, 1, ro.stderr);
    assert.match(ro.stderr, /HTTP 403/);
    assert.match(ro.stderr, /rcwlt/);
    assert.deepEqual(await blobs('readonly/'), []);
    assert.ok(!ro.stderr.includes(new URLSearchParams(readOnly).get('sig')!));
  });

  test('bad configuration exits 2 naming the value and the fix, before any work, never echoing a secret', async () => {
    const other = `AccountName=someoneelse;AccountKey=${azurite.key};BlobEndpoint=http://127.0.0.1:9/someoneelse`;
    const cases: [string, Record<string, string | undefined>, RegExp][] = [
      [`az://${azurite.account}/${container}/x?sv=2024&sig=c2VjcmV0`, env, /has a query \(a SAS token\?\).*SAS_TOKEN/],
      [`az://Bad_Account/${container}/x`, env, /account name 'Bad_Account'.*3 to 24 lower-case letters and digits/],
      [`az://${azurite.account}/a--b/x`, env, /container name 'a--b'.*single hyphens/],
      [`https://${azurite.account}.example.com/${container}/x`, env, /not of an Azure blob service/],
      [store, { ...env, AZURE_STORAGE_CONNECTION_STRING: other }, /account 'someoneelse', but .* names 'dbbackuptest'/],
      [store, { ...pg.env, ...CLEAN, AZURE_STORAGE_KEY: 'not base64!' }, /AZURE_STORAGE_KEY is not base64/],
      [store, { ...pg.env, ...CLEAN, AZURE_STORAGE_SAS_TOKEN: 'sv=2024&sp=r' }, /SAS_TOKEN is not a SAS token/],
    ];
    for (const [to, e, message] of cases) {
      const r = await backup('shop', to, e);
      assert.equal(r.code, 2, `${to}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.ok(!r.stderr.includes('c2VjcmV0'), 'a SAS in the URL is not echoed');
      noSecrets(r.stdout + r.stderr);
    }
  });

  test('a container that does not exist: exit 1 naming it and how to create it, nothing written', async () => {
    const r = await backup('shop', `az://${azurite.account}/no-such-container/x`, env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /ContainerNotFound.*'no-such-container' does not exist in the account 'dbbackuptest'/);
    const created = await azurite.client.getContainerClient('no-such-container').exists();
    assert.equal(created, false, 'the runner does not create containers');
    noSecrets(r.stdout + r.stderr);
  });

  test('write-once: nothing is overwritten (If-None-Match: *); the same bytes again succeed', async () => {
    const url = parseStorageUrl(store);
    const access = azureAccess(url, { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString });
    const s = new AzureStorage(url, { access });
    const key = `${first.id}/manifest.json`;
    const original = await s.readBytes(key);
    const daily = { tier: RetentionTier.DAILY };
    await assert.rejects(s.putBytes(key, Buffer.from('{"forged":true}'), daily), /already exists with other content/);
    await s.putBytes(key, original, { tier: RetentionTier.DAILY });
    const artifact = `${first.id}/${first.artifacts[0].name}`;
    const other = Readable.from([crypto.randomBytes(1000)]);
    await assert.rejects(s.upload(artifact, other, daily), /already exists; the runner never/);
    assert.ok((await s.readBytes(key)).equals(original));
    assert.equal((await s.stat(artifact))?.size, first.artifacts[0].size);
    const v = await dbbackup(['verify', '--from', store, '--id', first.id, '--deep'], { env });
    assert.equal(v.code, 0, v.stderr);
  });

  test('the storage goes away mid-upload: exit 1, no manifest, the dump never committed', async () => {
    const proxy = new TcpProxy(azurite.port, 4 * 1024 * 1024);
    const port = await proxy.start();
    try {
      const to = `az://${azurite.account}/${container}/outage`;
      const args = ['backup', '--engine', 'postgres', '--source', pg.url('big'), '--to', to, '--compression', 'none'];
      const viaProxy = { AZURE_STORAGE_KEY: azurite.key, AZURE_STORAGE_BLOB_ENDPOINT: azurite.endpointVia(port) };
      const running = dbbackup(args, { env: { ...pg.env, ...CLEAN, ...viaProxy }, timeoutMs: 180_000 });
      // Cut the storage off once a block of the dump is staged (asked of Azurite directly, not through the proxy).
      const end = Date.now() + 60_000;
      while ((await staged('outage/')) === 0) {
        assert.ok(Date.now() < end, 'a block was staged within a minute');
        await new Promise((r) => setTimeout(r, 50));
      }
      await proxy.stop();
      const r = await running;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /nothing was committed/);
      assert.match(r.stderr, /was not committed; its staged blocks are never part of a blob/);
      noSecrets(r.stdout + r.stderr);
      const committed = await blobs('outage/');
      assert.deepEqual(committed.filter((o) => o.name.endsWith('manifest.json')), [], 'no manifest');
      const all = await blobs('outage/', true);
      const dump = all.filter((o) => !committed.some((c) => c.name === o.name));
      assert.ok(dump.length >= 1, `the dump was being staged when the storage went: ${all.map((o) => o.name).join()}`);
      const c = azurite.client.getContainerClient(container);
      for (const d of dump) {
        const blocks = await c.getBlockBlobClient(d.name).getBlockList('all');
        assert.deepEqual(blocks.committedBlocks ?? [], [], `${d.name} has no committed block`);
        assert.ok((blocks.uncommittedBlocks ?? []).length >= 1, `${d.name} has staged blocks (for Azure to discard)`);
        assert.equal(await c.getBlobClient(d.name).exists(), false, `${d.name} does not exist as a blob`);
      }
      const l = await dbbackup(['list', '--from', `az://${azurite.account}/${container}/outage`, '--json'], { env });
      assert.equal(l.code, 0, l.stderr);
      assert.deepEqual((JSON.parse(l.stdout) as { backups: unknown[] }).backups, []);
    } finally {
      await proxy.stop();
    }
  });
});
