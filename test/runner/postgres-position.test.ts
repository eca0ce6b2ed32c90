// The WAL position a logical PostgreSQL backup records (manifest position.lsn) against a real server.
// With synchronous_commit off (as the harness runs its servers) a commit can sit in the WAL buffers,
// past the server's write position (pg_current_wal_lsn), until the WAL writer wakes; a long
// wal_writer_delay keeps it there. The recorded position must still cover every commit the
// backup's snapshot sees: it is the insert position, not the write position.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { formatLsn, parseLsn } from '../../runner/src/engines/postgres/wal-names';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { dbbackup } from '../harness/runner';

describe('the WAL position of a logical PostgreSQL backup', () => {
  let pg: LocalPostgres;
  let dir: string;

  beforeAll(async () => {
    pg = await startLocalPostgres({ settings: { wal_writer_delay: '10s' } });
    await pg.sql('CREATE DATABASE shop');
    await pg.sql('CREATE TABLE orders (id serial PRIMARY KEY, note text)', 'shop');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-position-'));
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('covers a commit just made that the WAL writer has not written yet', async () => {
    await pg.sql("INSERT INTO orders (note) VALUES ('just committed')", 'shop');
    const committedTo = parseLsn(await pg.sql('SELECT pg_current_wal_insert_lsn()'));
    const store = path.join(dir, 'store');
    const r = await dbbackup(
      ['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', `file://${store}`, '--json'],
      {
        env: pg.env,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const id = JSON.parse(r.stdout).id as string;
    const m = JSON.parse(fs.readFileSync(path.join(store, id, 'manifest.json'), 'utf8'));
    assert.equal(m.tables.find((t: { name: string }) => t.name === 'orders')?.rows, 1);
    assert.equal(m.position.kind, 'lsn');
    assert.ok(
      parseLsn(m.position.lsn) >= committedTo,
      `the manifest records ${m.position.lsn}, before the commit its snapshot sees (ends by ${formatLsn(committedTo)})`,
    );
  });
});
