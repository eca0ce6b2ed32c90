// Hostile cases for wal-fetch as PostgreSQL's restore_command: PostgreSQL reads an exit code up to
// 125 as "the archive has no more WAL" and ends recovery there (promoting, without a target). A
// runtime failure (storage unreachable) must therefore exit above 125 (PostgreSQL aborts recovery,
// to resume once the cause is fixed); "not in the archive" exits 1 and damage 3 (permanent, and
// PostgreSQL reads ahead past a target into them). Against a real PostgreSQL 15 server.
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres } from '../../runner/src/local/postgres-server';
import { DBBACKUP, dbbackup } from '../harness/runner';
import { expectStartFailure, sharedTempDir, startArchivingPostgres, switchAndWait } from './pitr-harness';

const PG_BIN = '/usr/lib/postgresql/15/bin';

const UNREACHABLE = {
  AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
  AWS_ACCESS_KEY_ID: 'x',
  AWS_SECRET_ACCESS_KEY: 'y',
  AWS_REGION: 'us-east-1',
};

describe('wal-fetch: a transient failure never ends recovery', () => {
  let pg: LocalPostgres;
  let dir: string;
  let store: string;
  let url: string;
  let baseId: string;
  let later: string;

  beforeAll(async () => {
    dir = sharedTempDir('dbbackup-hostile-walfetch-');
    store = path.join(dir, 'store');
    fs.mkdirSync(store);
    fs.chownSync(store, fs.statSync(dir).uid, fs.statSync(dir).gid);
    url = `file://${store}`;
    pg = await startArchivingPostgres(url, ' --compression none');
    await pg.sql('CREATE DATABASE app');
    await pg.sql(`CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)`, 'app');
    const b = await dbbackup(
      ['backup', '--engine', 'postgres', '--method', 'physical', '--source', pg.url('app'), '--to', url, '--json'],
      { env: pg.env },
    );
    assert.equal(b.code, 0, b.stderr);
    baseId = JSON.parse(b.stdout).id;
    await switchAndWait(pg);
    await pg.sql(`INSERT INTO t SELECT generate_series(11, 20)`, 'app');
    later = await switchAndWait(pg);
    await pg.sql(`INSERT INTO t SELECT generate_series(21, 30)`, 'app');
    await switchAndWait(pg);
  });
  afterAll(async () => {
    await pg?.stop();
  });

  const objectOf = (seg: string) => {
    const folder = path.join(store, 'wal', seg.slice(0, 8), seg);
    return path.join(folder, fs.readdirSync(folder)[0]);
  };

  test('a storage error exits 129, never 1; damage still exits 3 and a missing file 1', async () => {
    const obj = objectOf(later);
    const good = fs.readFileSync(obj);
    const bad = Buffer.from(good);
    bad[4096] ^= 1;
    fs.writeFileSync(obj, bad);
    try {
      const f = await dbbackup(['wal-fetch', later, path.join(dir, 'out'), '--from', url, '--abort-recovery']);
      assert.equal(f.code, 3, f.stderr);
      assert.match(f.stderr, /is damaged: /);
      assert.equal(fs.existsSync(path.join(dir, 'out')), false);
    } finally {
      fs.writeFileSync(obj, good);
    }
    // A runtime failure: the storage cannot be reached (what PostgreSQL would have taken for the end).
    const fetchArgs = (from: string, ...more: string[]) => [
      'wal-fetch',
      later,
      path.join(dir, 'out'),
      '--from',
      from,
      ...more,
    ];
    // Run by hand (no --abort-recovery), the usual exit codes hold: 1 for the failure.
    const byHand = await dbbackup(fetchArgs('s3://no-bucket/wal'), { env: UNREACHABLE });
    assert.equal(byHand.code, 1, byHand.stderr);
    const down = await dbbackup(fetchArgs('s3://no-bucket/wal', '--abort-recovery'), {
      env: {
        AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
        AWS_ACCESS_KEY_ID: 'x',
        AWS_SECRET_ACCESS_KEY: 'y',
        AWS_REGION: 'us-east-1',
      },
    });
    assert.equal(down.code, 129, down.stderr);
    assert.match(
      down.stderr,
      new RegExp(`wal-fetch ${later} from s3://no-bucket/wal: .*ECONNREFUSED.*exits 129, not 1`),
    );
    const gone = await dbbackup([
      'wal-fetch',
      'FFFFFFFF0000000000000001',
      path.join(dir, 'out'),
      '--from',
      url,
      '--abort-recovery',
    ]);
    assert.equal(gone.code, 1, gone.stderr);
  });

  test(
    'recovery without a target, the storage gone at one segment: ' +
      'aborts instead of promoting without the later rows',
    async () => {
      const laid = path.join(sharedTempDir('dbbackup-hostile-walfetch-'), 'data');
      const r = await dbbackup(['restore', '--from', url, '--id', baseId, '--target-dir', laid]);
      assert.equal(r.code, 0, r.stderr);
      // Recovery by hand to the end of the archive (no recovery target), the storage unreachable
      // when PostgreSQL asks for one segment of the middle (the stores' outage, made by hand).
      const fetch = (from: string) =>
        `${process.execPath} ${DBBACKUP} wal-fetch "%f" "%p" --from ${from} --abort-recovery`;
      const env = Object.entries(UNREACHABLE)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      const command = `if [ "%f" = ${later} ]; then env ${env} ${fetch('s3://no-bucket/wal')}; else ${fetch(url)}; fi`;
      const conf = path.join(laid, 'postgresql.auto.conf');
      const kept = fs
        .readFileSync(conf, 'utf8')
        .split('\n')
        .filter((l) => !/^(recovery_target|restore_command)/.test(l));
      fs.writeFileSync(conf, [...kept, `restore_command = '${command.replace(/'/g, "''")}'`, ''].join('\n'));
      const serverLog = await expectStartFailure(laid);
      assert.match(
        serverLog,
        new RegExp(`could not restore file "${later}" from archive: child process exited with exit code 129`),
      );
      assert.match(serverLog, /ECONNREFUSED/);
    },
  );

  /** A bin directory with every PostgreSQL 15 program but `missing`. */
  const pgBinWithout = (missing: string) => {
    const bin = fs.mkdtempSync(path.join(dir, `bin-without-${missing}-`));
    for (const f of fs.readdirSync(PG_BIN)) if (f !== missing) fs.symlinkSync(path.join(PG_BIN, f), path.join(bin, f));
    return bin;
  };

  test('wal-receive without pg_receivewal: exit 2 naming it, at once (it used to restart for ever)', async () => {
    const r = await dbbackup(['wal-receive', '--source', pg.url('app'), '--to', `file://${dir}/stream`], {
      env: { ...pg.env, DBBACKUP_PG_BIN: pgBinWithout('pg_receivewal') },
      timeoutMs: 30000,
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /pg_receivewal is not installed or not executable .*Fix: install the PostgreSQL client tools/,
    );
    assert.equal(fs.existsSync(path.join(dir, 'stream')), false);
    assert.equal(await pg.sql(`SELECT count(*) FROM pg_replication_slots`), '0', 'no slot was made');
  });

  test(
    'restore --to-time latest without pg_waldump: exit 2 ' + 'naming it, nothing laid down (it used to plan blind)',
    async () => {
      const target = path.join(sharedTempDir('dbbackup-hostile-walfetch-'), 'data');
      const r = await dbbackup(['restore', '--from', url, '--to-time', 'latest', '--target-dir', target], {
        env: { DBBACKUP_PG_BIN: pgBinWithout('pg_waldump') },
      });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /pg_waldump cannot be run .*Fix: install the PostgreSQL server tools/);
      assert.equal(fs.existsSync(target), false, 'nothing was laid down');
    },
  );

  test(
    'a forged partial-segment pointer (current.json) is damage ' + '(exit 3) naming it, before anything is laid down',
    async () => {
      const segs = fs
        .readdirSync(path.join(store, 'wal', '00000001'))
        .filter((f) => /^[0-9A-F]{24}$/.test(f))
        .sort();
      const last = segs[segs.length - 1];
      const next =
        `${last.slice(0, 16)}` + `${(parseInt(last.slice(16), 16) + 1).toString(16).toUpperCase().padStart(8, '0')}`;
      const partialDir = path.join(store, 'wal', 'partial', '00000001');
      fs.mkdirSync(partialDir, { recursive: true });
      const data = Buffer.alloc(16 * 1024 * 1024);
      fs.writeFileSync(path.join(partialDir, 'current'), data);
      const good = {
        version: 1,
        file: next,
        key: 'wal/partial/00000001/current',
        sha256: crypto.createHash('sha256').update(data).digest('hex'),
        size: data.length,
        written: new Date().toISOString(),
        compression: 'none',
        encryption: 'none',
      };
      const forged: [string, Record<string, unknown>][] = [
        ['a written time that is not one', { written: 'the day before yesterday' }],
        ['a key outside its folder', { key: 'wal/partial/00000001/../../00000001/' + last }],
        ['a sha256 that is not one', { sha256: 'abc' }],
        ['a size that is not one', { size: -5 }],
        ['a segment of another timeline', { file: `00000002${next.slice(8)}` }],
        ['an unknown compression', { compression: 'rot13' }],
      ];
      try {
        for (const [what, change] of forged) {
          fs.writeFileSync(path.join(partialDir, 'current.json'), JSON.stringify({ ...good, ...change }));
          const target = path.join(sharedTempDir('dbbackup-hostile-walfetch-'), 'data');
          const r = await dbbackup(['restore', '--from', url, '--to-time', 'latest', '--target-dir', target]);
          assert.equal(r.code, 3, `${what}: ${r.stderr}`);
          assert.match(r.stderr, /current\.json .*does not describe a partial segment/, what);
          assert.equal(fs.existsSync(target), false, `${what}: nothing was laid down`);
        }
      } finally {
        fs.rmSync(path.join(store, 'wal', 'partial'), { recursive: true, force: true });
      }
    },
  );

  test(
    'list and verify count the streamed partial segment in the ' +
      "window's latest moment, only when it continues the archive",
    async () => {
      const window = async () => {
        const l = await dbbackup(['list', '--from', url, '--json']);
        assert.equal(l.code, 0, l.stderr);
        return JSON.parse(l.stdout).windows.find((w: { archive: string }) => w.archive === 'wal');
      };
      const before = await window();
      assert.ok(before?.latest !== undefined);
      const segs = fs
        .readdirSync(path.join(store, 'wal', '00000001'))
        .filter((f) => /^[0-9A-F]{24}$/.test(f))
        .sort();
      const last = segs[segs.length - 1];
      const segmentAfter = (n: number) =>
        `${last.slice(0, 16)}${(parseInt(last.slice(16), 16) + n).toString(16).toUpperCase().padStart(8, '0')}`;
      const partialDir = path.join(store, 'wal', 'partial', '00000001');
      fs.mkdirSync(partialDir, { recursive: true });
      const data = Buffer.alloc(1024);
      fs.writeFileSync(path.join(partialDir, 'current'), data);
      const written = new Date(Date.parse(before.latest) + 60000).toISOString();
      const pointer = (file: string) =>
        fs.writeFileSync(
          path.join(partialDir, 'current.json'),
          JSON.stringify({
            version: 1,
            file,
            key: 'wal/partial/00000001/current',
            sha256: crypto.createHash('sha256').update(data).digest('hex'),
            size: data.length,
            written,
            compression: 'none',
            encryption: 'none',
          }),
        );
      try {
        pointer(segmentAfter(1));
        assert.equal((await window()).latest, written, 'the partial right after the last segment counts');
        const v = await dbbackup(['verify', '--from', url, '--all', '--json']);
        assert.match(
          v.stderr,
          new RegExp(`the wal archive is continuous from .* to ${written.replace(/\./g, '\\.')}`),
          v.stderr,
        );
        pointer(segmentAfter(2));
        assert.equal((await window()).latest, before.latest, 'a partial that does not continue the archive does not');
      } finally {
        fs.rmSync(path.join(store, 'wal', 'partial'), { recursive: true, force: true });
      }
    },
  );
});
