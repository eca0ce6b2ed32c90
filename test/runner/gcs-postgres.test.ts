// End to end: `dbbackup` (the bundle) backs PostgreSQL up to gs:// and reads it back, against
// OUR OWN fake of the Cloud Storage JSON API (test/harness/fake-gcs.ts), because no real
// GCS-protocol server can run here. This shows the runner's side (layout, resumable uploads,
// manifest last, verify/restore/list through the tier folders, no deletes); it does not show
// Google's auth, IAM, retention locks, CMEK or lifecycle rules at work.
import * as assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { FakeGcs, startFakeGcs } from '../harness/fake-gcs';
import { fingerprint, loadFixture } from '../harness/pg-fixture';
import { dbbackup } from '../harness/runner';

interface Manifest {
  id: string;
  tier: string;
  manualRestore: string[];
  artifacts: { name: string; size: number; sha256: string }[];
}

describe('PostgreSQL to gs:// on our fake GCS server (not Google)', () => {
  let pg: LocalPostgres;
  let fake: FakeGcs;
  let env: Record<string, string>;
  let expected: Record<string, string>;
  let first: Manifest;
  const bucket = 'backups-vault';
  const token = 'e2e-secret-access-token-value';
  const store = `gs://${bucket}/prod/shop`;

  beforeAll(async () => {
    [pg, fake] = await Promise.all([startLocalPostgres(), startFakeGcs({ buckets: [bucket], token, pageSize: 5 })]);
    env = {
      ...pg.env,
      STORAGE_EMULATOR_HOST: fake.endpoint,
      GOOGLE_OAUTH_ACCESS_TOKEN: token,
      GOOGLE_APPLICATION_CREDENTIALS: '',
    };
    await loadFixture(pg, 'shop');
    expected = await fingerprint(pg, 'shop');
  });
  afterAll(async () => {
    await Promise.all([pg?.stop(), fake?.stop()]);
  });

  const objects = () => [...fake.bucket(bucket).values()];
  const noSecrets = (out: string) => assert.ok(!out.includes(token), 'the access token never shows in output or logs');

  test(
    'backup: every object under <prefix>/<tier>/<id>/, the manifest ' +
      'written last, no session left open, no delete tried',
    async () => {
      const b = await dbbackup(
        ['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', store, '--json'],
        {
          env,
        },
      );
      assert.equal(b.code, 0, b.stderr);
      noSecrets(b.stdout + b.stderr);
      first = JSON.parse(b.stdout) as Manifest;
      const base = `prod/shop/${first.tier}/${first.id}/`;
      const mine = objects().filter((o) => o.name.includes(first.id));
      assert.deepEqual(
        mine.map((o) => o.name).sort(),
        [...first.artifacts.map((a) => base + a.name), base + 'manifest.json'].sort(),
      );
      for (const o of mine) assert.deepEqual(o.metadata, { 'dbbackup-tier': first.tier }, o.name);
      const manifest = mine.find((o) => o.name.endsWith('manifest.json'))!;
      assert.ok(
        mine.every((o) => o.generation <= manifest.generation),
        'the manifest is the last object written',
      );
      for (const a of first.artifacts)
        assert.equal(mine.find((o) => o.name === base + a.name)!.data.length, a.size, a.name);
      assert.deepEqual(
        [...fake.sessions.values()].filter((s) => s.state === 'open'),
        [],
      );
      assert.deepEqual(
        fake.requests.filter((r) => r.kind === 'object' && r.method === 'DELETE'),
        [],
      );
      // The manual restore lines (gcloud storage cat …) name the objects where they are.
      assert.ok(
        first.manualRestore.some((l) => l.includes(`gcloud storage cat gs://${bucket}/${base}`)),
        first.manualRestore.join('\n'),
      );
    },
  );

  test(
    'list, verify --id (as the verifier job: DBBACKUP_FROM) ' + 'and restore read it back through the tier folder',
    async () => {
      const l = await dbbackup(['list', '--from', store, '--json'], { env });
      assert.equal(l.code, 0, l.stderr);
      const listed = JSON.parse(l.stdout) as { backups: { id: string; tier: string }[]; incomplete: string[] };
      assert.deepEqual(
        listed.backups.map((x) => [x.id, x.tier]),
        [[first.id, first.tier]],
      );
      const v = await dbbackup(['verify', '--id', first.id], { env: { ...env, DBBACKUP_FROM: store } });
      assert.equal(v.code, 0, v.stderr);
      const r = await dbbackup(['restore', '--from', store, '--id', first.id, '--target', pg.url('from_gcs')], { env });
      assert.equal(r.code, 0, r.stderr);
      noSecrets(l.stdout + l.stderr + v.stdout + v.stderr + r.stdout + r.stderr);
      assert.deepEqual(await fingerprint(pg, 'from_gcs'), expected);
    },
  );

  test(
    'a second backup the same week goes to another tier folder; ' +
      'chunks answered 503 are resumed; verify --id finds it',
    async () => {
      fake.inject({ on: 'chunk', times: 2, status: 503 });
      const b = await dbbackup(
        ['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', store, '--json'],
        {
          env,
        },
      );
      fake.clearFaults();
      assert.equal(b.code, 0, b.stderr);
      const second = JSON.parse(b.stdout) as Manifest;
      assert.notEqual(second.tier, first.tier, 'the first backup of the month is monthly, the next daily');
      assert.ok(fake.bucket(bucket).has(`prod/shop/${second.tier}/${second.id}/manifest.json`));
      assert.ok(
        fake.requests.some((r) => r.kind === 'session' && r.contentRange === 'bytes */*'),
        'the session was asked what it held',
      );
      const v = await dbbackup(['verify', '--id', second.id], { env: { ...env, DBBACKUP_FROM: store } });
      assert.equal(v.code, 0, v.stderr);
      const all = await dbbackup(['verify', '--from', store, '--all'], { env });
      assert.equal(all.code, 0, all.stderr);
    },
  );

  test('a backup whose upload is refused: exit 1, no manifest, the session cancelled, nothing deleted', async () => {
    const before = new Set(objects().map((o) => o.name));
    fake.inject({ on: 'chunk', times: 1, status: 403 });
    const b = await dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', store, '--json'], {
      env,
    });
    fake.clearFaults();
    assert.equal(b.code, 1, b.stderr);
    assert.match(b.stderr, /HTTP 403/);
    noSecrets(b.stdout + b.stderr);
    const added = objects().filter((o) => !before.has(o.name));
    assert.ok(
      added.every((o) => !o.name.endsWith('manifest.json')),
      `no manifest committed: ${added.map((o) => o.name).join(', ')}`,
    );
    assert.deepEqual(
      [...fake.sessions.values()].filter((s) => s.state === 'open'),
      [],
    );
    assert.deepEqual(
      fake.requests.filter((r) => r.kind === 'object' && r.method === 'DELETE'),
      [],
    );
    const l = await dbbackup(['list', '--from', store, '--json'], { env });
    assert.equal((JSON.parse(l.stdout) as { backups: unknown[] }).backups.length, 2, 'still the two committed backups');
  });

  test('one flipped byte in the stored dump: verify --id exits 3 naming the object', async () => {
    const name = `prod/shop/${first.tier}/${first.id}/${first.artifacts[0].name}`;
    const o = fake.bucket(bucket).get(name)!;
    o.data = Buffer.from(o.data);
    o.data[Math.floor(o.data.length / 2)] ^= 0x01;
    const v = await dbbackup(['verify', '--id', first.id], { env: { ...env, DBBACKUP_FROM: store } });
    assert.equal(v.code, 3, v.stderr);
    assert.match(v.stdout + v.stderr, new RegExp(first.artifacts[0].name.replace(/\./g, '\\.')));
  });
});
