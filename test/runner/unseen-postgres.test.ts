// Backup and restore of a varied PostgreSQL database never seen before (test/harness/pg-unseen.ts),
// on every path: pg_dump -Fc (--jobs 1) and pg_dump -Fd -j N (--jobs 2, 4), each restored with
// --jobs 1, 2 and 4 into a new database, into an existing empty one and with --clean into an
// occupied one; schema (pg_dump -s), every table's rows, sequences, materialized views, large
// objects and the database's own properties must come back exactly.
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { contentOf, loadUnseen, schemaOf } from '../harness/pg-unseen';
import { dbbackup } from '../harness/runner';

const BACKUP_JOBS = ['1', '2', '4'] as const;

describe('PostgreSQL: an unseen, varied database comes back exactly', () => {
  let source: LocalPostgres;
  let target: LocalPostgres;
  let dir: string;
  let identity: string;
  let recipient: string;
  let schema: string;
  let content: Record<string, string>;

  const store = (jobs: string) => `file://${dir}/store-${jobs}`;
  const restore = (jobs: string, database: string, ...extra: string[]) =>
    dbbackup(
      ['restore', '--from', store(jobs), '--latest', '--target', target.url(database), '--with-globals', ...extra],
      { env: target.env, timeoutMs: 120000 },
    );
  // Every difference at once (a failure names them all, not only the first).
  const differences = async (database: string): Promise<string[]> => {
    const got = await contentOf(target, database);
    const diffs = [...new Set([...Object.keys(content), ...Object.keys(got)])]
      .filter((k) => content[k] !== got[k])
      .map((k) => `${k}: ${content[k]} != ${got[k]}`);
    const s = await schemaOf(target, database);
    if (s !== schema) {
      const a = new Set(schema.split('\n'));
      const b = new Set(s.split('\n'));
      diffs.push(
        'schema: ' +
          [
            ...[...a].filter((l) => !b.has(l)).map((l) => `- ${l}`),
            ...[...b].filter((l) => !a.has(l)).map((l) => `+ ${l}`),
          ]
            .slice(0, 30)
            .join('\n'),
      );
    }
    return diffs;
  };

  beforeAll(async () => {
    [source, target] = await Promise.all([startLocalPostgres(), startLocalPostgres()]);
    await loadUnseen(source, 'unseen');
    [schema, content] = await Promise.all([schemaOf(source, 'unseen'), contentOf(source, 'unseen')]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-unseen-'));
    identity = path.join(dir, 'identity.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
    const backups = await Promise.all(
      BACKUP_JOBS.map((jobs) =>
        dbbackup(
          [
            'backup',
            '--engine',
            'postgres',
            '--source',
            source.url('unseen'),
            '--to',
            store(jobs),
            '--json',
            '--jobs',
            jobs,
            ...(jobs === '2' ? ['--encrypt', `age:${recipient}`] : []),
          ],
          { env: source.env, timeoutMs: 120000 },
        ),
      ),
    );
    for (const b of backups) assert.equal(b.code, 0, b.stderr);
  }, 120000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the source holds what the comparison must see', () => {
    assert.ok(Object.keys(content).length > 30, Object.keys(content).join(' '));
    assert.match(content['plain.mv_empty'], /not populated/);
    assert.match(content['large objects'], /424244 postgres - the big one/);
  });

  for (const backupJobs of BACKUP_JOBS) {
    test(`backup --jobs ${backupJobs}: restore --jobs 1, 2, 4 into new databases`, async () => {
      const found: string[] = [];
      for (const jobs of ['1', '2', '4']) {
        const db = `new_${backupJobs}_${jobs}`;
        const extra = backupJobs === '2' ? ['--identity', identity] : [];
        const r = await restore(backupJobs, db, '--jobs', jobs, ...extra);
        if (r.code !== 0) found.push(`restore --jobs ${jobs} exit ${r.code}: ${r.stderr.slice(-1500)}`);
        else {
          found.push(...(await differences(db)).map((d) => `restore --jobs ${jobs}: ${d}`));
        }
      }
      assert.deepEqual(found, []);
    }, 120000);
  }

  test('into an existing empty database, and with --clean into an occupied one', async () => {
    const found: string[] = [];
    for (const [backupJobs, jobs] of [
      ['1', '1'],
      ['4', '2'],
    ]) {
      const empty = `empty_${backupJobs}_${jobs}`;
      await target.sql(`CREATE DATABASE ${empty}`);
      const r = await restore(backupJobs, empty, '--jobs', jobs);
      if (r.code !== 0) found.push(`${empty} exit ${r.code}: ${r.stderr.slice(-1500)}`);
      else
        found.push(
          ...(await differences(empty)).filter((d) => !d.startsWith('database: ')).map((d) => `${empty}: ${d}`),
        );
      // Occupied by an older version of two of the backup's tables: --clean replaces them.
      const busy = `busy_${backupJobs}_${jobs}`;
      await target.sql(`CREATE DATABASE ${busy}`);
      await target.sql(
        'CREATE TABLE public."user" (id int, "group" text); INSERT INTO public."user" VALUES (9, \'old\');' +
          'CREATE TABLE public."table" (id int);',
        busy,
      );
      const c = await restore(backupJobs, busy, '--jobs', jobs, '--clean');
      if (c.code !== 0) found.push(`${busy} exit ${c.code}: ${c.stderr.slice(-1500)}`);
      else
        found.push(...(await differences(busy)).filter((d) => !d.startsWith('database: ')).map((d) => `${busy}: ${d}`));
    }
    assert.deepEqual(found, []);
  }, 120000);
});
