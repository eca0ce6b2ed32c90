// --tier on a backup that depends on another (real PostgreSQL archiving its WAL through the
// runner): a dependant may not be kept longer than its base, or lifecycle leaves it unrestorable.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres } from '../../runner/src/local/postgres-server';
import { dbbackup } from '../harness/runner';
import { sharedTempDir, startArchivingPostgres } from './pitr-harness';

describe('--tier and the chain a backup depends on', () => {
  let pg: LocalPostgres;
  let dir: string;
  let url: string;

  const backup = (type: string, tier: string) =>
    dbbackup(
      ['backup', '--engine', 'postgres', '--method', 'physical', '--type', type, '--tier', tier,
        '--source', pg.url('app'), '--to', url, '--json'],
      { env: pg.env },
    );

  beforeAll(async () => {
    dir = sharedTempDir('dbbackup-tier-store-');
    const store = path.join(dir, 'store');
    fs.mkdirSync(store);
    fs.chownSync(store, fs.statSync(dir).uid, fs.statSync(dir).gid);
    url = `file://${store}`;
    pg = await startArchivingPostgres(url);
    await pg.sql('CREATE DATABASE app');
    await pg.sql(`CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 10)`, 'app');
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an incremental written as monthly on a daily full is refused with exit 2; daily passes', async () => {
    const full = await backup('full', 'daily');
    assert.equal(full.code, 0, full.stderr);
    const fullId = JSON.parse(full.stdout).id;
    await pg.sql(`INSERT INTO a VALUES (11)`, 'app');
    const folders = () => fs.readdirSync(url.slice('file://'.length)).filter((f) => /^\d{8}T/.test(f)).sort();
    const before = folders();
    const monthly = await backup('incremental', 'monthly');
    assert.equal(monthly.code, 2, monthly.stderr);
    const refused = new RegExp(`--tier monthly would keep this backup longer than ${fullId} \\(tier daily\\)`);
    assert.match(monthly.stderr, refused);
    assert.deepEqual(folders(), before, 'no backup folder was left');
    const daily = await backup('incremental', 'daily');
    assert.equal(daily.code, 0, daily.stderr);
    assert.equal(JSON.parse(daily.stdout).base, fullId);
  });
});
