// --require-encryption (the expected-scheme policy), against a real PostgreSQL 15 and moto KMS:
// someone with write access to the store alone puts a plain (encryption: none) backup, or a
// version 1 manifest without a digest, beside the kms: backups. Without the policy --latest takes
// it; with it every command refuses it (exit 3, naming the manifest and the scheme found vs
// required) and nothing is restored.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { Moto, startMoto } from '../harness/moto';
import { dbbackup } from '../harness/runner';

describe('--require-encryption kms refuses a forged plain backup', () => {
  let pg: LocalPostgres;
  let moto: Moto;
  let tmp: string;
  let store: string;
  let env: Record<string, string>;
  let keyId: string;
  let forgedId: string;

  const backup = async (to: string, encrypt: string) => {
    const args = ['backup', '--engine', 'postgres', '--source', pg.url('app'), '--to', `file://${to}`];
    const b = await dbbackup([...args, '--encrypt', encrypt, '--json'], { env });
    assert.equal(b.code, 0, b.stderr);
    return JSON.parse(b.stdout).id as string;
  };
  const exists = async (db: string) =>
    (await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = '${db}'`)) === '1';

  beforeAll(async () => {
    [pg, moto] = await Promise.all([startLocalPostgres(), startMoto()]);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-forged-'));
    store = path.join(tmp, 'store');
    env = { ...pg.env, ...moto.env };
    const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
    const kms = new KMSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials });
    keyId = (await kms.send(new CreateKeyCommand({ Description: 'backups' }))).KeyMetadata!.KeyId!;
    kms.destroy();
    await pg.sql('CREATE DATABASE app');
    await pg.sql('CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, $$genuine$$)', 'app');
    await backup(store, `kms:${keyId}`);
    // The forger's backup: made elsewhere, plain, then put into the store as the newest one.
    await pg.sql("UPDATE t SET v = 'forged'", 'app');
    const elsewhere = path.join(tmp, 'elsewhere');
    forgedId = await backup(elsewhere, 'none');
    fs.cpSync(path.join(elsewhere, forgedId), path.join(store, forgedId), { recursive: true });
  });
  afterAll(async () => {
    await Promise.all([pg?.stop(), moto?.stop()]);
    if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const restore = (db: string, extra: string[]) =>
    dbbackup(['restore', '--from', `file://${store}`, '--target', pg.url(db), ...extra], { env });

  test('without the policy --latest restores the forged backup (the hole)', async () => {
    const r = await restore('open_door', ['--latest']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await pg.sql('SELECT v FROM t', 'open_door'), 'forged');
  });

  test('restore, verify, drill and list with the policy refuse it: exit 3, naming it and the schemes', async () => {
    const refusal = new RegExp(
      `${forgedId}/manifest.json is encrypted with 'none', not 'kms' as required \\(--require-encryption kms\\)`,
    );
    for (const extra of [['--latest'], ['--id', forgedId]]) {
      const r = await restore('guarded', [...extra, '--require-encryption', 'kms']);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, refusal);
      assert.equal(await exists('guarded'), false, 'no database was created');
    }
    // The same from the environment, as the task definitions set it.
    const e = await dbbackup(['restore', '--from', `file://${store}`, '--latest', '--target', pg.url('guarded')], {
      env: { ...env, DBBACKUP_REQUIRE_ENCRYPTION: 'kms' },
    });
    assert.equal(e.code, 3, e.stderr);
    assert.match(e.stderr, refusal);
    const v = await dbbackup(['verify', '--from', `file://${store}`, '--latest', '--require-encryption', 'kms'], {
      env,
    });
    assert.equal(v.code, 3, v.stderr);
    assert.match(v.stderr, refusal);
    const all = await dbbackup(['verify', '--from', `file://${store}`, '--all', '--require-encryption', 'kms'], {
      env,
    });
    assert.equal(all.code, 3, all.stderr);
    assert.match(all.stdout, new RegExp(`DAMAGED  ${forgedId}`));
    const d = await dbbackup(
      ['drill', '--from', `file://${store}`, '--target', pg.url('drill_db'), '--require-encryption', 'kms'],
      { env },
    );
    assert.equal(d.code, 3, d.stderr);
    assert.match(d.stderr, refusal);
    assert.equal(await exists('drill_db'), false);
    const l = await dbbackup(['list', '--from', `file://${store}`, '--require-encryption', 'kms', '--json'], { env });
    assert.equal(l.code, 0, l.stderr);
    const listed = JSON.parse(l.stdout);
    assert.deepEqual(
      listed.unreadable.map((u: { id: string }) => u.id),
      [forgedId],
    );
  });

  test('a version 1 manifest (no digest, no HMAC) claiming kms: is refused when a scheme is required', async () => {
    const file = path.join(store, forgedId, 'manifest.json');
    const saved = fs.readFileSync(file, 'utf8');
    try {
      const { digest: _d, ...body } = JSON.parse(saved);
      void _d;
      const v1 = { ...body, version: 1, pipeline: { ...body.pipeline, encryption: { scheme: 'kms', keyId } } };
      fs.writeFileSync(file, JSON.stringify(v1, null, 2));
      const r = await restore('guarded_v1', ['--id', forgedId, '--require-encryption', 'kms']);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /is manifest version 1, without the digest and HMAC that --require-encryption kms needs/);
      assert.equal(await exists('guarded_v1'), false);
    } finally {
      fs.writeFileSync(file, saved);
    }
  });

  test('with the forged folder gone the genuine kms: backup restores under the policy', async () => {
    fs.rmSync(path.join(store, forgedId), { recursive: true });
    const r = await restore('genuine', ['--latest', '--require-encryption', 'kms']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await pg.sql('SELECT v FROM t', 'genuine'), 'genuine');
  });

  test('backup with --require-encryption kms refuses another --encrypt (exit 2)', async () => {
    const to = path.join(tmp, 'refused');
    const b = await dbbackup(
      [
        'backup',
        '--engine',
        'postgres',
        '--source',
        pg.url('app'),
        '--to',
        `file://${to}`,
        '--require-encryption',
        'kms',
      ],
      { env },
    );
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr, /--encrypt none does not use the scheme --require-encryption kms requires/);
    assert.equal(fs.existsSync(to), false);
  });
});
