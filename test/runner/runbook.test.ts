import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { fingerprint, loadFixture } from '../harness/pg-fixture';
import { DBBACKUP, dbbackup } from '../harness/runner';

/** The shell blocks of a markdown section (from its `## ` heading to the next). */
function shellBlocks(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(`## ${heading}`);
  assert.ok(start >= 0, `no section '${heading}' in:\n${markdown}`);
  const rest = markdown.slice(start + 3);
  const section = rest.slice(0, rest.search(/\n## |$/) >= 0 ? rest.search(/\n## /) : undefined);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
}

describe('dbbackup runbook (PostgreSQL, file:// store)', () => {
  let pg: LocalPostgres;
  let dir: string;
  let store: string;
  let id: string;

  beforeAll(async () => {
    pg = await startLocalPostgres();
    await loadFixture(pg, 'shop', 200);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-runbook-'));
    store = `file://${dir}/store`;
    const b = await dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', store, '--json'], {
      env: pg.env,
    });
    assert.equal(b.code, 0, b.stderr);
    id = JSON.parse(b.stdout).id;
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('prints the commands for this backup, and its by-hand lines restore it with standard tools only', async () => {
    const target = pg.url('shop_by_hand');
    const r = await dbbackup(['runbook', '--from', store, '--latest', '--target', target], { env: pg.env });
    assert.equal(r.code, 0, r.stderr);
    const md = r.stdout;
    assert.match(md, /^# Restore runbook: /);
    assert.ok(md.includes(`This page is rendered for backup \`${id}\``), md);
    assert.ok(md.includes(`dbbackup restore --from ${store} --latest --target ${target}`), md);
    assert.ok(md.includes(`dbbackup restore --from ${store} --id ${id} --target ${target}`), md);
    assert.ok(md.includes('RestoreTimeSeconds'), md);
    // PostgreSQL restores to a moment into a data directory, not a URL: no --to-time line.
    assert.ok(!md.includes('--to-time 2026'), md);

    // The by-hand block: the manifest's own lines, run verbatim by bash into a new database.
    const [byHand] = shellBlocks(md, 'By hand, with standard tools only');
    assert.match(byHand, /zstd -d -c \| pg_restore --single-transaction --exit-on-error -d TARGET_DATABASE/);
    assert.ok(!/(^|\| )dbbackup /m.test(byHand), byHand);
    await pg.sql('CREATE DATABASE shop_by_hand');
    const scratch = fs.mkdtempSync(path.join(dir, 'hand-'));
    const script = `set -euo pipefail\n${byHand.replaceAll('TARGET_DATABASE', `'${pg.url('shop_by_hand')}'`)}`;
    const run = spawnSync('bash', ['-c', script], {
      cwd: scratch,
      env: { ...process.env, ...pg.env },
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(await fingerprint(pg, 'shop_by_hand'), await fingerprint(pg, 'shop'));
  });

  test('the printed restore-by-id command restores the backup it names', async () => {
    const target = pg.url('shop_by_id');
    const r = await dbbackup(['runbook', '--from', store, '--id', id, '--target', target], { env: pg.env });
    assert.equal(r.code, 0, r.stderr);
    const line = shellBlocks(r.stdout, 'Restore from a machine of yours')[0]
      .split('\n')
      .find((l) => l.includes(`--id ${id}`));
    assert.ok(line !== undefined, r.stdout);
    await pg.sql('CREATE DATABASE shop_by_id');
    const args = line.replace(/^dbbackup /, '').split(' ');
    const restored = await dbbackup(args, { env: pg.env });
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(await fingerprint(pg, 'shop_by_id'), await fingerprint(pg, 'shop'));
  });

  test('bad usage is exit 2 naming the fix; a missing backup is exit 1 naming the store', async () => {
    const none = await dbbackup(['runbook', '--from', store]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /'runbook' needs one of --latest or --id ID/);
    const missing = await dbbackup(['runbook', '--from', store, '--id', '20200101T000000Z-shop-full-0000']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /there is no backup '20200101T000000Z-shop-full-0000'/);
    assert.ok(fs.existsSync(DBBACKUP));
  });
});
