// Point-in-time recovery of MariaDB against real servers: `dbbackup binlog-stream` ships the
// source's binary logs while rows are written, updated and deleted around noted moments; each
// moment is restored into a fresh server (full backup + binary logs replayed up to it) and must
// hold exactly the rows committed before it. Incremental and differential chains restore to their
// own end; a SIGKILLed shipper loses no closed log; a missing log makes a later moment fail.
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { DBBACKUP, dbbackup, logLines } from '../harness/runner';

const STATE =
  `SELECT CONCAT(COUNT(*), ':', COALESCE(GROUP_CONCAT(CONCAT(id, ` +
  `'=', v) ORDER BY id SEPARATOR ','), '')) FROM accounts`;

/** Binary logs record whole seconds: wait until a new second has begun (plus a margin). */
async function nextSecond(): Promise<void> {
  const now = Date.now();
  await new Promise((r) => setTimeout(r, 1000 - (now % 1000) + 150));
}

/** A moment alone in its second: nothing is written in its second or the next. */
async function noteSecond(): Promise<Date> {
  await nextSecond();
  const t = new Date();
  await nextSecond();
  return t;
}

describe('MariaDB point-in-time recovery', () => {
  let src: LocalMariaDB;
  let tgt: LocalMariaDB;
  let dir: string;
  let url: string;
  let shipper: ChildProcess | undefined;
  let shipperLog = '';
  let dbCounter = 0;

  const startShipper = () => {
    shipperLog = '';
    shipper = spawn(process.execPath, [DBBACKUP, 'binlog-stream', '--source', src.url('app'), '--to', url], {
      env: { ...process.env, ...src.env, DBBACKUP_LOG_FORMAT: 'json', DBBACKUP_BINLOG_UPLOAD_INTERVAL: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    shipper.stderr!.on('data', (d: Buffer) => (shipperLog += d.toString()));
    shipper.stdout!.resume();
  };
  const stopShipper = async (signal: NodeJS.Signals) => {
    const s = shipper!;
    shipper = undefined;
    if (s.exitCode !== null || s.signalCode !== null) return s.exitCode;
    const code = new Promise<number | null>((r) => s.once('close', (c) => r(c)));
    s.kill(signal);
    return code;
  };
  /** Wait until shipped.json says the archive holds everything written so far. */
  const shipped = async () => {
    const asked = Date.now();
    const file = path.join(dir, 'store', 'binlog', 'binlog', 'shipped.json');
    for (let i = 0; i < 200; i++) {
      if (fs.existsSync(file) && Date.parse(JSON.parse(fs.readFileSync(file, 'utf8')).at) > asked) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the shipper did not catch up:\n${shipperLog.slice(-3000)}`);
  };
  const backup = async (type = 'full') => {
    const b = await dbbackup(
      ['backup', '--engine', 'mysql', '--source', src.url('app'), '--to', url, '--type', type, '--json'],
      { env: src.env },
    );
    assert.equal(b.code, 0, b.stderr);
    return JSON.parse(b.stdout);
  };
  const restore = async (args: string[]) => {
    const db = `r${++dbCounter}`;
    const r = await dbbackup(['restore', '--from', url, ...args, '--target', tgt.url(db), '--json'], {
      env: { DBBACKUP_TARGET_PASSWORD: tgt.password },
    });
    return { r, db };
  };

  beforeAll(async () => {
    [src, tgt] = await Promise.all([startLocalMariaDB(), startLocalMariaDB()]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-pitr-my-'));
    url = `file://${dir}/store`;
    await src.sql(
      `CREATE DATABASE app; CREATE TABLE app.accounts (id INT PRIMARY KEY, v VARCHAR(100) ` +
        `NOT NULL); CREATE DATABASE other; CREATE TABLE other.noise (i INT)`,
    );
    await src.sql(`INSERT INTO accounts VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e')`, 'app');
    startShipper();
  });
  afterAll(async () => {
    if (shipper !== undefined) await stopShipper('SIGKILL');
    await Promise.all([src?.stop(), tgt?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('restoring to noted moments gives exactly the rows committed before each', async () => {
    const full = await backup();
    assert.equal(full.position.kind, 'binlog');
    const moments: { t: Date; state: string }[] = [];
    await src.sql(`INSERT INTO accounts VALUES (6, 'f'), (7, 'g'); INSERT INTO other.noise VALUES (1)`, 'app');
    moments.push({ t: await noteSecond(), state: await src.sql(STATE, 'app') });
    await src.sql(`UPDATE accounts SET v = 'changed' WHERE id <= 2; DELETE FROM accounts WHERE id = 7`, 'app');
    await src.sql(`FLUSH BINARY LOGS`);
    await src.sql(
      `START TRANSACTION; INSERT INTO accounts VALUES (8, 'h'); COMMIT; START ` +
        `TRANSACTION; INSERT INTO accounts VALUES (9, 'rolled back'); ROLLBACK;`,
      'app',
    );
    moments.push({ t: await noteSecond(), state: await src.sql(STATE, 'app') });
    await src.sql(`DELETE FROM accounts WHERE id = 3; INSERT INTO accounts VALUES (10, 'after everything')`, 'app');
    await shipped();
    assert.equal(new Set(moments.map((m) => m.state)).size, 2);

    for (const m of moments) {
      const { r, db } = await restore(['--to-time', m.t.toISOString()]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.id, full.id);
      assert.equal(await tgt.sql(STATE, db), m.state, `restored to ${m.t.toISOString()}`);
    }
    // Only the backup's database is replayed, renamed to the target's.
    assert.equal(await tgt.sql(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'other'`), '0');

    const l = await dbbackup(['list', '--from', url, '--json']);
    const w = JSON.parse(l.stdout).windows.find((x: { archive: string }) => x.archive === 'binlog');
    assert.ok(w.earliest <= moments[0].t.toISOString() && w.latest >= moments[1].t.toISOString(), JSON.stringify(w));
    assert.deepEqual(w.gaps, []);
  });

  test('an incremental and a differential chain each restore to the moment they ended', async () => {
    const chain: {
      m: { id: string; type: string; parent: string; base: string; startPosition: { file: string } };
      state: string;
    }[] = [];
    await backup('full');
    await src.sql(`INSERT INTO accounts VALUES (20, 'inc1')`, 'app');
    chain.push({ m: await backup('incremental'), state: await src.sql(STATE, 'app') });
    await src.sql(
      `UPDATE accounts SET v = 'inc2' WHERE id = 4; FLUSH BINARY LOGS; DELETE FROM accounts WHERE id = 5`,
      'app',
    );
    chain.push({ m: await backup('incremental'), state: await src.sql(STATE, 'app') });
    await src.sql(`INSERT INTO accounts VALUES (21, 'diff')`, 'app');
    chain.push({ m: await backup('differential'), state: await src.sql(STATE, 'app') });
    await src.sql(`INSERT INTO accounts VALUES (22, 'after the chain')`, 'app');
    const [inc1, inc2, diff] = chain.map((c) => c.m);
    assert.equal(inc2.parent, inc1.id);
    assert.equal(diff.parent, diff.base);
    assert.equal(inc1.base, diff.base);
    for (const { m, state } of chain) {
      const { r, db } = await restore(['--id', m.id]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await tgt.sql(STATE, db), state, `restored ${m.type} ${m.id}`);
    }
    const v = await dbbackup(['verify', '--from', url, '--id', inc2.id, '--deep']);
    assert.equal(v.code, 0, v.stderr);
  });

  test('a SIGKILLed shipper loses no closed log; after a restart it resumes from the archive', async () => {
    await src.sql(`INSERT INTO accounts VALUES (30, 'before kill')`, 'app');
    await shipped();
    assert.equal(await stopShipper('SIGKILL'), null);
    // While it is down: logs close and rows are written.
    await src.sql(
      `INSERT INTO accounts VALUES (31, 'while down'); FLUSH BINARY LOGS; INSERT ` +
        `INTO accounts VALUES (32, 'while down 2'); FLUSH BINARY LOGS;`,
      'app',
    );
    const t = await noteSecond();
    const state = await src.sql(STATE, 'app');
    await src.sql(`INSERT INTO accounts VALUES (33, 'after the moment')`, 'app');
    startShipper();
    await shipped();
    assert.match(shipperLog, /resuming at binlog\.\d+: \d+ bytes of it are archived/);
    // Every closed log is archived whole.
    const datadir = (await src.sql('SELECT @@datadir')).trim();
    const logs = (await src.sql('SHOW BINARY LOGS')).split('\n').map((l) => l.split('\t'));
    for (const [name, size] of logs.slice(0, -1)) {
      const chunks = fs.readdirSync(path.join(dir, 'store', 'binlog', 'binlog', name));
      const archived = Math.max(...chunks.map((c) => Number(c.slice(0, 12)) + Number(c.split('.')[1])));
      assert.equal(archived, Number(size), `${name} archived whole`);
      assert.ok(fs.existsSync(path.join(datadir, name)));
    }
    const { r, db } = await restore(['--to-time', t.toISOString()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await tgt.sql(STATE, db), state);
  });

  test('SIGTERM stops the shipper cleanly: exit 0, the open log uploaded to its last event', async () => {
    await src.sql(`INSERT INTO accounts VALUES (40, 'just before stop')`, 'app');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await stopShipper('SIGTERM'), 0, shipperLog.slice(-2000));
    const [file, pos] = (await src.sql('SHOW MASTER STATUS')).split('\t');
    const chunks = fs.readdirSync(path.join(dir, 'store', 'binlog', 'binlog', file));
    assert.equal(Math.max(...chunks.map((c) => Number(c.slice(0, 12)) + Number(c.split('.')[1]))), Number(pos));
    assert.ok(logLines(shipperLog).some((l) => l.event === 'binlog-stream-stop'));
    startShipper();
  });

  test('a missing binary log in the middle: a later moment fails naming it; verify exits 3', async () => {
    await src.sql(
      `FLUSH BINARY LOGS; INSERT INTO accounts VALUES (50, 'in the lost log'); ` +
        `FLUSH BINARY LOGS; INSERT INTO accounts VALUES (51, 'after')`,
      'app',
    );
    const t = await noteSecond();
    await src.sql(`INSERT INTO accounts VALUES (52, 'later')`, 'app');
    await shipped();
    const logs = (await src.sql('SHOW BINARY LOGS')).split('\n').map((l) => l.split('\t')[0]);
    const lost = logs[logs.length - 2];
    await stopShipper('SIGTERM');
    fs.rmSync(path.join(dir, 'store', 'binlog', 'binlog', lost), { recursive: true });
    const { r, db } = await restore(['--to-time', t.toISOString()]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`gap: ${lost.replace('.', '\\.')} is missing`));
    assert.equal(
      await tgt.sql(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '${db}'`),
      '0',
      'the target was not touched',
    );
    const v = await dbbackup(['verify', '--from', url, '--all']);
    assert.equal(v.code, 3);
    assert.match(
      v.stdout,
      new RegExp(
        `DAMAGED\\s+binlog-archive: the binary log archive .* has a gap: ${lost.replace('.', '\\.')} is missing`,
      ),
    );
    const l = await dbbackup(['list', '--from', url]);
    assert.match(l.stdout, new RegExp(`GAP: .*${lost.replace('.', '\\.')}`));
  });
});
