import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { manifestDigest } from '../../lib/core/manifest';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { loadFixture } from '../harness/pg-fixture';
import { dbbackup, logLines } from '../harness/runner';

describe('restore drills (PostgreSQL)', () => {
  let pg: LocalPostgres;
  let dir: string;
  let id: string;

  beforeAll(async () => {
    pg = await startLocalPostgres();
    await loadFixture(pg, 'shop', 300);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-drill-'));
    const b = await dbbackup(
      ['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', `file://${dir}/store`, '--json'],
      { env: pg.env },
    );
    assert.equal(b.code, 0, b.stderr);
    id = JSON.parse(b.stdout).id;
    // The live database is emptied after the backup: the drill checks the backup, not it.
    await pg.sql('TRUNCATE sales.orders, public.customers CASCADE', 'shop');
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test(
    'a good backup passes: every table and row count matches the ' +
      'manifest, the time is reported, the database is dropped',
    async () => {
      const r = await dbbackup(
        ['drill', '--from', `file://${dir}/store`, '--target', pg.url('drill_scratch'), '--json'],
        { env: { ...pg.env, DBBACKUP_DATABASE_ID: 'shop-prod' } },
      );
      assert.equal(r.code, 0, r.stderr);
      const result = JSON.parse(r.stdout);
      assert.equal(result.id, id);
      assert.equal(result.ok, true);
      assert.equal(result.tablesChecked, 5);
      assert.equal(result.rowsChecked, 300 + 600 + 3 + 0 + 1);
      assert.ok(result.restoreSeconds > 0);
      const emf = logLines(r.stderr).find((l) => l._aws !== undefined);
      assert.equal(emf?.DatabaseId, 'shop-prod');
      assert.equal(emf?.DrillSucceeded, 1);
      assert.equal(emf?.DrillFailed, 0);
      assert.equal(typeof emf?.RestoreTimeSeconds, 'number');
      assert.equal(await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = 'drill_scratch'`), '0');
    },
  );

  test('a restore that does not match the recorded counts fails, naming the table', async () => {
    const manifestPath = path.join(dir, 'store', id, 'manifest.json');
    const original = fs.readFileSync(manifestPath, 'utf8');
    try {
      const m = JSON.parse(original);
      m.tables.find((t: { name: string }) => t.name === 'orders').rows = 601;
      // Recorded so at backup time (digest included): the drill, not the digest check, must catch it.
      fs.writeFileSync(manifestPath, JSON.stringify({ ...m, digest: manifestDigest(m) }));
      const r = await dbbackup(['drill', '--from', `file://${dir}/store`, '--target', pg.url('drill_scratch')], {
        env: pg.env,
      });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /table sales\.orders has 600 rows after the restore; the backup recorded 601/);
      assert.equal(logLines(r.stderr).find((l) => l._aws !== undefined)?.DrillFailed, 1);
    } finally {
      fs.writeFileSync(manifestPath, original);
    }
  });

  test('a damaged artifact fails the drill (exit 3) and leaves no drill database', async () => {
    const object = path.join(dir, 'store', id, 'database.pgdump.zst');
    const original = fs.readFileSync(object);
    try {
      const damaged = Buffer.from(original);
      damaged[damaged.length - 10] ^= 0xff;
      fs.writeFileSync(object, damaged);
      const r = await dbbackup(['drill', '--from', `file://${dir}/store`, '--target', pg.url('drill_scratch')], {
        env: pg.env,
      });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /database\.pgdump\.zst: sha256 .* does not match/);
      assert.equal(await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = 'drill_scratch'`), '0');
    } finally {
      fs.writeFileSync(object, original);
    }
  });

  test('a drill refuses a target database that exists', async () => {
    await pg.sql('CREATE DATABASE occupied');
    const r = await dbbackup(['drill', '--from', `file://${dir}/store`, '--target', pg.url('occupied')], {
      env: pg.env,
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /the drill's target database occupied already exists/);
    assert.equal(await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = 'occupied'`), '1');
  });
});
