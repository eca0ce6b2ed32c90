import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { fingerprint, loadFixture } from '../harness/pg-fixture';
import { dbbackup, logLines } from '../harness/runner';

describe('PostgreSQL round trips to file:// storage', () => {
  let pg: LocalPostgres;
  let dir: string;
  let expected: Record<string, string>;
  let identity: string;
  let recipient: string;

  beforeAll(async () => {
    pg = await startLocalPostgres();
    await loadFixture(pg, 'shop');
    expected = await fingerprint(pg, 'shop');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-rt-'));
    identity = path.join(dir, 'identity.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [compression, encrypt] of [
    ['zstd', 'none'],
    ['gzip', 'none'],
    ['lz4', 'none'],
    ['none', 'none'],
    ['zstd', 'age'],
  ] as const) {
    test(`${compression} + ${encrypt}: backup, verify --deep, restore gives identical data`, async () => {
      const store = `file://${dir}/${compression}-${encrypt}`;
      const enc = encrypt === 'age' ? `age:${recipient}` : 'none';
      const b = await dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', store, '--compression', compression, '--encrypt', enc, '--json'], {
        env: pg.env,
      });
      assert.equal(b.code, 0, b.stderr);
      const manifest = JSON.parse(b.stdout);
      assert.equal(manifest.engine, 'postgres');
      assert.equal(manifest.pipeline.compression, compression);
      assert.deepEqual(
        manifest.artifacts.map((a: { role: string }) => a.role),
        ['database', 'globals'],
      );
      assert.match(manifest.position.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
      assert.deepEqual(
        manifest.tables.find((t: { name: string }) => t.name === 'orders'),
        { schema: 'sales', name: 'orders', rows: 4000 },
      );
      // The stored bytes are what each standard tool decodes.
      const stored = path.join(dir, `${compression}-${encrypt}`, manifest.id, manifest.artifacts[0].name);
      const ext = { zstd: '.zst', gzip: '.gz', lz4: '.lz4', none: '' }[compression];
      assert.equal(path.basename(stored), `database.pgdump${ext}${encrypt === 'age' ? '.age' : ''}`);

      const identityArgs = encrypt === 'age' ? ['--identity', identity] : [];
      const v = await dbbackup(['verify', '--from', store, '--latest', '--deep', ...identityArgs], { env: pg.env });
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, new RegExp(`ok\\s+${manifest.id} \\(deep\\)`));

      const target = `restored_${compression}_${encrypt}`;
      const r = await dbbackup(['restore', '--from', store, '--id', manifest.id, '--target', pg.url(target), ...identityArgs], { env: pg.env });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await fingerprint(pg, target), expected);
    });
  }

  test('list shows committed backups and ignores a folder without a manifest', async () => {
    const store = `file://${dir}/zstd-none`;
    fs.mkdirSync(path.join(dir, 'zstd-none', '20260101T000000Z-shop-full-dead'));
    fs.writeFileSync(path.join(dir, 'zstd-none', '20260101T000000Z-shop-full-dead', 'database.pgdump.zst'), 'partial');
    const l = await dbbackup(['list', '--from', store, '--json']);
    assert.equal(l.code, 0, l.stderr);
    const list = JSON.parse(l.stdout);
    assert.equal(list.backups.length, 1);
    assert.deepEqual(list.incomplete, ['20260101T000000Z-shop-full-dead']);
    const text = await dbbackup(['list', '--from', store]);
    assert.match(text.stdout, /shop\s+full\s+monthly/);
    assert.match(text.stdout, /1 incomplete folder/);
  });

  test('restore --with-globals brings roles to a fresh server; roles that exist are not an error', async () => {
    const store = `file://${dir}/zstd-none`;
    const other = await startLocalPostgres();
    try {
      const r = await dbbackup(['restore', '--from', store, '--latest', '--with-globals', '--target', other.url('shop')], { env: other.env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await other.sql(`SELECT rolname FROM pg_roles WHERE rolname = 'reporting'`), 'reporting');
      const fp = await fingerprint(other, 'shop');
      assert.deepEqual(fp, expected);
    } finally {
      await other.stop();
    }
  });

  test('restore refuses a target with tables unless --clean, and --clean replaces them', async () => {
    const store = `file://${dir}/zstd-none`;
    await pg.sql('CREATE DATABASE busy');
    await pg.sql('CREATE TABLE public.customers (id int); INSERT INTO public.customers VALUES (42);', 'busy');
    const refused = await dbbackup(['restore', '--from', store, '--latest', '--target', pg.url('busy')], { env: pg.env });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /already has 1 tables.*--clean/);
    assert.equal(await pg.sql('SELECT count(*) FROM public.customers', 'busy'), '1');
    const cleaned = await dbbackup(['restore', '--from', store, '--latest', '--clean', '--target', pg.url('busy')], { env: pg.env });
    assert.equal(cleaned.code, 0, cleaned.stderr);
    assert.deepEqual(await fingerprint(pg, 'busy'), expected);
  });

  test('progress and events are JSON lines on stderr when it is not a terminal', async () => {
    const b = await dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', `file://${dir}/progress`], {
      env: { ...pg.env, DBBACKUP_PROGRESS_INTERVAL: '0.01' },
    });
    assert.equal(b.code, 0, b.stderr);
    const lines = logLines(b.stderr);
    assert.ok(lines.some((l) => l.event === 'progress' && typeof l.bytes === 'number' && typeof l.bytesPerSecond === 'number'), b.stderr);
    assert.ok(lines.some((l) => l.event === 'backup-done'));
  });
});
