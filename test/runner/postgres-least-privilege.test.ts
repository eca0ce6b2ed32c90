// A PostgreSQL backup by an account that is not a superuser (SELECT on what it backs up, as a
// least-privilege backup role has) against a real server: pg_dumpall may not read pg_authid, so the
// roles are saved without their passwords, and the manifest says so; the backup restores whole.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { dbbackup } from '../harness/runner';

describe('PostgreSQL: a backup by an account that is not a superuser', () => {
  let pg: LocalPostgres;
  let dir: string;
  // Throwaway passwords for the throwaway server, made here rather than written in the test.
  const password = crypto.randomBytes(12).toString('hex');
  const appPassword = crypto.randomBytes(12).toString('hex');

  beforeAll(async () => {
    pg = await startLocalPostgres();
    await pg.sql('CREATE DATABASE shop');
    await pg.sql(
      'CREATE TABLE orders (id serial PRIMARY KEY, note text); ' +
        "INSERT INTO orders (note) SELECT 'order ' || g FROM generate_series(1, 50) g",
      'shop',
    );
    await pg.sql(`CREATE ROLE backup LOGIN PASSWORD '${password}'; CREATE ROLE app LOGIN PASSWORD '${appPassword}'`);
    // What a table-by-table least-privilege account has: SELECT on the tables and sequences it backs up.
    await pg.sql(
      'GRANT SELECT ON ALL TABLES IN SCHEMA public TO backup; GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO backup',
      'shop',
    );
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-least-priv-'));
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('roles are saved without their passwords, the manifest says so, and the backup restores', async () => {
    const store = path.join(dir, 'store');
    const r = await dbbackup(
      ['backup', '--engine', 'postgres', '--source', pg.url('shop', 'backup'), '--to', `file://${store}`, '--json'],
      { env: { ...pg.env, DBBACKUP_SOURCE_PASSWORD: password } },
    );
    assert.equal(r.code, 0, r.stderr);
    const id = JSON.parse(r.stdout).id as string;
    const m = JSON.parse(fs.readFileSync(path.join(store, id, 'manifest.json'), 'utf8'));
    assert.deepEqual(
      m.artifacts.map((a: { role: string }) => a.role),
      ['database', 'globals'],
    );
    assert.match(
      (m.warnings ?? []).join('\n'),
      /roles were saved without their passwords: backup may not read pg_authid.*--no-role-passwords/,
    );
    const globals = m.artifacts.find((a: { role: string }) => a.role === 'globals').name as string;
    const script = execFileSync('zstd', ['-dc', path.join(store, id, globals)], { encoding: 'utf8' });
    assert.match(script, /CREATE ROLE app;/);
    assert.doesNotMatch(script, /SCRAM-SHA-256|PASSWORD '/);
    // The restore runbook says it before anyone restores.
    const page = await dbbackup(['runbook', '--from', `file://${store}`, '--id', id], { env: pg.env });
    assert.equal(page.code, 0, page.stderr);
    assert.match(
      page.stdout,
      /## What this backup lacks\n\n.*\n\n- roles were saved without their passwords: backup may/,
    );
    const back = await dbbackup(['restore', '--from', `file://${store}`, '--id', id, '--target', pg.url('shop_back')], {
      env: pg.env,
    });
    assert.equal(back.code, 0, back.stderr);
    assert.equal(await pg.sql('SELECT count(*) FROM orders', 'shop_back'), '50');
  });
});
