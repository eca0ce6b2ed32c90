// `prune` removes the binary log files no kept full can replay (real MariaDB, `dbbackup
// binlog-stream` shipping into a file:// store): two fulls with log rotations between them, the
// older pruned, then `list` shows the smaller archive and the window left, and its oldest and
// newest moments restore exactly.
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { DBBACKUP, dbbackup } from '../harness/runner';

const STATE =
  `SELECT CONCAT(COUNT(*), ':', COALESCE(GROUP_CONCAT(CONCAT(id, ` +
  `'=', v) ORDER BY id SEPARATOR ','), '')) FROM accounts`;

async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 150));
}

describe('prune of the MariaDB binary log archive on file://', () => {
  let src: LocalMariaDB;
  let tgt: LocalMariaDB;
  let dir: string;
  let url: string;
  let shipper: ChildProcess | undefined;
  let shipperLog = '';
  let n = 0;

  const backup = async () => {
    const b = await dbbackup(['backup', '--engine', 'mysql', '--source', src.url('app'), '--to', url, '--json'], {
      env: src.env,
    });
    assert.equal(b.code, 0, b.stderr);
    return JSON.parse(b.stdout);
  };
  const shipped = async () => {
    const asked = Date.now();
    const file = path.join(dir, 'store', 'binlog', 'binlog', 'shipped.json');
    for (let i = 0; i < 200; i++) {
      if (fs.existsSync(file) && Date.parse(JSON.parse(fs.readFileSync(file, 'utf8')).at) > asked) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the shipper did not catch up:\n${shipperLog.slice(-3000)}`);
  };
  const list = async () => JSON.parse((await dbbackup(['list', '--from', url, '--json'])).stdout);

  beforeAll(async () => {
    [src, tgt] = await Promise.all([startLocalMariaDB(), startLocalMariaDB()]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-prune-binlog-'));
    url = `file://${dir}/store`;
    await src.sql(`CREATE DATABASE app; CREATE TABLE app.accounts (id INT PRIMARY KEY, v VARCHAR(100) NOT NULL)`);
    await src.sql(`INSERT INTO accounts VALUES (1, 'a'), (2, 'b')`, 'app');
    shipper = spawn(process.execPath, [DBBACKUP, 'binlog-stream', '--source', src.url('app'), '--to', url], {
      env: { ...process.env, ...src.env, DBBACKUP_LOG_FORMAT: 'json', DBBACKUP_BINLOG_UPLOAD_INTERVAL: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    shipper.stderr!.on('data', (d: Buffer) => (shipperLog += d.toString()));
    shipper.stdout!.resume();
  });
  afterAll(async () => {
    if (shipper !== undefined && shipper.exitCode === null) {
      const closed = new Promise((r) => shipper!.once('close', r));
      shipper.kill('SIGKILL');
      await closed;
    }
    await Promise.all([src?.stop(), tgt?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('binary logs before the oldest kept full go; the window left restores at both ends', async () => {
    const first = await backup();
    for (let i = 0; i < 3; i++) {
      await src.sql(`INSERT INTO accounts VALUES (${10 + i}, 'old')`, 'app');
      await src.sql('FLUSH BINARY LOGS');
    }
    await nextSecond();
    const second = await backup();
    const atSecond = await src.sql(STATE, 'app');
    await nextSecond();
    await src.sql(`UPDATE accounts SET v = 'new' WHERE id = 1; INSERT INTO accounts VALUES (99, 'late')`, 'app');
    await nextSecond();
    const newest = { t: new Date(), state: await src.sql(STATE, 'app') };
    await nextSecond();
    await src.sql(`DELETE FROM accounts WHERE id = 2`, 'app');
    await shipped();

    const was = (await list()).windows.find((w: { archive: string }) => w.archive === 'binlog');
    const p = await dbbackup([
      'prune',
      '--from',
      url,
      '--keep-daily',
      '1',
      '--keep-weekly',
      '0',
      '--keep-monthly',
      '0',
      '--json',
    ]);
    assert.equal(p.code, 0, p.stderr);
    const pruned = JSON.parse(p.stdout);
    assert.deepEqual(pruned.deleted, [first.id]);
    const logs = pruned.logs.find((l: { archive: string }) => l.archive === 'binlog');
    assert.ok(logs.files >= 3, `the files rotated away before ${second.id} are removed: ${JSON.stringify(logs)}`);
    const now = (await list()).windows.find((w: { archive: string }) => w.archive === 'binlog');
    assert.equal(now.bases, 1);
    assert.deepEqual(now.gaps, []);
    assert.ok(now.objects < was.objects && now.bytes < was.bytes, `${was.objects} → ${now.objects} objects`);

    for (const m of [{ t: new Date(now.earliest), state: atSecond }, newest]) {
      const db = `r${++n}`;
      const r = await dbbackup(
        ['restore', '--from', url, '--to-time', m.t.toISOString(), '--target', tgt.url(db), '--json'],
        {
          env: { DBBACKUP_TARGET_PASSWORD: tgt.password },
        },
      );
      assert.equal(r.code, 0, `restore to ${m.t.toISOString()}: ${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).id, second.id);
      assert.equal(await tgt.sql(STATE, db), m.state, `restored to ${m.t.toISOString()}`);
    }
  });
});
