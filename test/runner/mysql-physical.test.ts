// Physical MariaDB backups with mariadb-backup against a real MariaDB 10.11 server under a write
// load: a full and two true incrementals (by LSN, streamed through the pipeline), restored with
// --target-dir into fresh data directories on which a real mariadbd is started and compared with
// the source; a damaged incremental, a missing base and an out-of-order chain are refused with
// exit 3 and leave the target as it was; point-in-time recovery to a moment between the
// incrementals (the physical chain, then the archived binary logs replayed); verify --deep.
import * as assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { manifestDigest } from '../../lib/core/manifest';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { loadMariaFixture, mariaFingerprint } from '../harness/mariadb-fixture';
import { DBBACKUP, dbbackup, logLines } from '../harness/runner';

const TICKS =
  `SELECT CONCAT(COUNT(*), ':', COALESCE(MD5(GROUP_CONCAT(CONCAT(id, ` + `'=', v) ORDER BY id)), '')) FROM ticks`;

/**
 * The fixture's fingerprint without AUTO_INCREMENT counters: a server that starts on the files
 * sets them from the rows (the source's counter may have reserved a batch of values ahead).
 */
async function contentOf(db: LocalMariaDB): Promise<Record<string, string>> {
  const f = await mariaFingerprint(db, 'shop');
  return Object.fromEntries(Object.entries(f).map(([k, v]) => [k, v.replace(/ AUTO_INCREMENT=\d+/, '')]));
}

interface Stored {
  id: string;
  type: string;
  parent?: string;
  base?: string;
  position: { kind: string; file?: string; pos?: number; lsn?: string };
  startPosition?: { lsn?: string };
  tables?: { name: string; rows: number }[];
  artifacts: { name: string; format: string; size: number }[];
}

/** Binary logs record whole seconds: wait until a new second has begun (plus a margin). */
async function nextSecond(): Promise<void> {
  const now = Date.now();
  await new Promise((r) => setTimeout(r, 1000 - (now % 1000) + 150));
}

describe('MariaDB physical backups (mariadb-backup)', () => {
  let src: LocalMariaDB;
  let dir: string;
  let url: string;
  let shipper: ChildProcess | undefined;
  let shipperLog = '';
  const started: LocalMariaDB[] = [];
  let loading = false;
  let load: Promise<number> | undefined;
  const chain: Stored[] = [];
  let targets = 0;

  /** Inserts and updates in a loop until stopLoad(); resolves with the number of rounds. */
  const startLoad = () => {
    loading = true;
    load = (async () => {
      let n = 0;
      while (loading) {
        n++;
        await src.sql(
          `INSERT INTO ticks (v) VALUES ('tick ${n}'), ('tock ${n}'); UPDATE customers SET balance = ` +
            `balance + 1 WHERE id = ${1 + (n % 50)}; INSERT INTO app.events (what) VALUES ('e${n}')`,
          'shop',
        );
      }
      return n;
    })();
  };
  const stopLoad = async () => {
    loading = false;
    return load!;
  };
  const backup = async (type: string, extra: string[] = [], to = url): Promise<Stored> => {
    const r = await dbbackup(
      [
        ...['backup', '--engine', 'mysql', '--method', 'physical', '--type', type],
        ...['--source', src.url('shop'), '--to', to, '--json', ...extra],
      ],
      { env: src.env },
    );
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Stored;
  };
  const newTarget = () => path.join(dir, `target-${++targets}`);
  const restore = (args: string[]) => dbbackup(['restore', '--from', url, ...args, '--json'], { timeoutMs: 240000 });
  /** Start a real mariadbd on a restored data directory (root's password is the source's). */
  const startOn = async (dataDir: string) => {
    const db = await startLocalMariaDB({ dataDir, password: src.password });
    started.push(db);
    return db;
  };
  const shipped = async () => {
    const asked = Date.now();
    const file = path.join(dir, 'store', 'binlog', 'binlog', 'shipped.json');
    for (let i = 0; i < 300; i++) {
      if (fs.existsSync(file) && Date.parse(JSON.parse(fs.readFileSync(file, 'utf8')).at) > asked) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the shipper did not catch up:\n${shipperLog.slice(-3000)}`);
  };
  /** InnoDB's last checkpoint, so a test can wait until it moves past a backup's LSN. */
  const checkpointAfter = async (lsn: string) => {
    for (let i = 0; i < 300; i++) {
      const now = await src.sql(
        `SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS ` +
          `WHERE VARIABLE_NAME = 'INNODB_LSN_LAST_CHECKPOINT'`,
      );
      if (BigInt(now) > BigInt(lsn)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`InnoDB's checkpoint did not move past ${lsn}`);
  };

  beforeAll(async () => {
    // Dirty pages are written out at once, so each backup's checkpoint LSN moves on.
    src = await startLocalMariaDB({
      settings: { 'innodb-max-dirty-pages-pct': '0', 'innodb-max-dirty-pages-pct-lwm': '0' },
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-physical-my-'));
    // The restored servers run as the mysql user when the tests run as root: it must reach them.
    fs.chmodSync(dir, 0o755);
    url = `file://${dir}/store`;
    await loadMariaFixture(src, 'shop', 300);
    await src.sql(
      `CREATE TABLE shop.ticks (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40) NOT NULL);
       CREATE DATABASE app; CREATE TABLE app.events (id INT AUTO_INCREMENT PRIMARY KEY,
         what VARCHAR(40)) ENGINE=InnoDB;`,
    );
    shipper = spawn(process.execPath, [DBBACKUP, 'binlog-stream', '--source', src.url('shop'), '--to', url], {
      env: { ...process.env, ...src.env, DBBACKUP_LOG_FORMAT: 'json', DBBACKUP_BINLOG_UPLOAD_INTERVAL: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    shipper.stderr!.on('data', (d: Buffer) => (shipperLog += d.toString()));
    shipper.stdout!.resume();
  });
  afterAll(async () => {
    loading = false;
    await load?.catch(() => undefined);
    if (shipper !== undefined && shipper.exitCode === null) {
      const closed = new Promise((r) => shipper!.once('close', r));
      shipper.kill('SIGTERM');
      await closed;
    }
    await Promise.all(started.map((s) => s.stop()));
    await src?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a full and two incrementals under a write load restore into a data directory mariadbd starts on', async () => {
    startLoad();
    await new Promise((r) => setTimeout(r, 500));
    const full = await backup('full');
    await checkpointAfter(full.position.lsn!);
    const inc1 = await backup('incremental');
    const rounds = await stopLoad();
    assert.ok(rounds > 5, `the write load ran ${rounds} rounds`);
    await checkpointAfter(inc1.position.lsn!);
    await src.sql(`INSERT INTO ticks (v) VALUES ('after inc1'); DELETE FROM ticks WHERE id % 7 = 0`, 'shop');
    const inc2 = await backup('incremental');
    chain.push(full, inc1, inc2);

    // The chain, recorded as PostgreSQL's physical chains are: parent, base, the LSN each starts at.
    assert.equal(full.artifacts[0].format, 'mariadb-backup-mbstream');
    assert.equal(inc1.parent, full.id);
    assert.equal(inc2.parent, inc1.id);
    assert.equal(inc2.base, full.id);
    assert.equal(inc1.startPosition?.lsn, full.position.lsn);
    assert.equal(inc2.startPosition?.lsn, inc1.position.lsn);
    assert.notEqual(inc1.position.lsn, full.position.lsn);
    assert.equal(full.position.kind, 'binlog');
    assert.match(String(full.position.file), /^binlog\.\d+$/);

    // The whole chain, into a new directory: mariadbd starts on it and it holds what the source holds now.
    const target = newTarget();
    const r = await restore(['--id', inc2.id, '--target-dir', target]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.chain, [full.id, inc1.id, inc2.id]);
    assert.deepEqual(
      fs.readdirSync(target).filter((f) => f.startsWith('.dbbackup')),
      [],
    );
    const restored = await startOn(target);
    assert.deepEqual(await contentOf(restored), await contentOf(src));
    assert.equal(
      await restored.sql('SELECT COUNT(*) FROM app.events'),
      await src.sql('SELECT COUNT(*) FROM app.events'),
    );
    // Users and grants travel with the instance.
    assert.match(await restored.sql(`SHOW GRANTS FOR 'reporting'@'%'`), /GRANT SELECT ON `shop`\.\*/);
    // The row counts of the last incremental (taken without load) were recorded, and match.
    assert.ok(inc2.tables !== undefined && inc2.tables.length > 5, JSON.stringify(inc2.tables));
    for (const t of inc2.tables!) {
      assert.equal(await restored.sql(`SELECT COUNT(*) FROM \`${t.name}\``, 'shop'), String(t.rows), t.name);
    }

    // The first incremental, taken under load: what it recorded (if it could) is what it restores.
    const t1 = newTarget();
    const r1 = await restore(['--id', inc1.id, '--target-dir', t1]);
    assert.equal(r1.code, 0, r1.stderr);
    const s1 = await startOn(t1);
    const ticks1 = Number(await s1.sql('SELECT COUNT(*) FROM ticks', 'shop'));
    assert.ok(ticks1 > 0 && ticks1 < Number(await src.sql('SELECT MAX(id) FROM ticks', 'shop')));
    for (const t of inc1.tables ?? []) {
      assert.equal(await s1.sql(`SELECT COUNT(*) FROM \`${t.name}\``, 'shop'), String(t.rows), t.name);
    }
    await s1.stop();
  });

  test('verify --deep reads, unpacks and prepares the physical backups', async () => {
    const v = await dbbackup(['verify', '--from', url, '--all', '--deep', '--json'], { timeoutMs: 240000 });
    assert.equal(v.code, 0, v.stderr);
    assert.equal(chain.length, 3);
    const reports = JSON.parse(v.stdout) as { id: string; ok: boolean; deep: boolean }[];
    for (const m of chain)
      assert.ok(
        reports.some((x) => x.id === m.id && x.ok && x.deep),
        m.id,
      );
  });

  test('a damaged incremental is refused with exit 3 and leaves the target as it was', async () => {
    const inc2 = chain[2];
    const file = path.join(dir, 'store', inc2.id, inc2.artifacts[0].name);
    const original = fs.readFileSync(file);
    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)] ^= 0x40;
    fs.writeFileSync(file, flipped);
    try {
      // An existing empty directory stays, empty; a new one is not left behind.
      const existing = newTarget();
      fs.mkdirSync(existing, { mode: 0o750 });
      const before = fs.statSync(existing);
      const r = await restore(['--id', inc2.id, '--target-dir', existing]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /sha256|checksum|does not match/i);
      assert.deepEqual(fs.readdirSync(existing), []);
      const after = fs.statSync(existing);
      assert.equal(after.uid, before.uid);
      assert.equal(after.mode, before.mode);
      const fresh = newTarget();
      const r2 = await restore(['--id', inc2.id, '--target-dir', fresh]);
      assert.equal(r2.code, 3, r2.stderr);
      assert.equal(fs.existsSync(fresh), false);
      const v = await dbbackup(['verify', '--from', url, '--id', inc2.id, '--deep']);
      assert.equal(v.code, 3, v.stderr);
    } finally {
      fs.writeFileSync(file, original);
    }
    // A target that is not empty is refused before anything is read (exit 2).
    const busy = newTarget();
    fs.mkdirSync(busy);
    fs.writeFileSync(path.join(busy, 'ibdata1'), 'mine');
    const r3 = await restore(['--id', inc2.id, '--target-dir', busy]);
    assert.equal(r3.code, 2, r3.stderr);
    assert.match(r3.stderr, /is not empty/);
    assert.equal(fs.readFileSync(path.join(busy, 'ibdata1'), 'utf8'), 'mine');
  });

  test('a missing base and an out-of-order chain are refused with exit 3', async () => {
    const [full, inc1, inc2] = chain;
    const store = path.join(dir, 'store');
    // The full is gone: the chain is broken.
    fs.renameSync(path.join(store, full.id), path.join(dir, 'moved-away'));
    try {
      const target = newTarget();
      const r = await restore(['--id', inc2.id, '--target-dir', target]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`depends on ${full.id}.*not in the storage any more`));
      assert.equal(fs.existsSync(target), false);
    } finally {
      fs.renameSync(path.join(dir, 'moved-away'), path.join(store, full.id));
    }
    // inc2 rewritten to sit on the full directly (inc1 left out), its digest made to match: the
    // LSNs do not continue, so the restore refuses it before anything is laid down.
    const manifestFile = path.join(store, inc2.id, 'manifest.json');
    const original = fs.readFileSync(manifestFile, 'utf8');
    const m = JSON.parse(original);
    m.parent = full.id;
    const { digest: _, ...rest } = m;
    void _;
    fs.writeFileSync(manifestFile, JSON.stringify({ ...rest, digest: manifestDigest(rest) }, null, 2));
    try {
      const target = newTarget();
      const r = await restore(['--id', inc2.id, '--target-dir', target]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`starts at LSN ${inc1.position.lsn}.*${full.id}.*out of order`));
      assert.equal(fs.existsSync(target), false);
    } finally {
      fs.writeFileSync(manifestFile, original);
    }
  });

  test('restore --to-time replays the archived binary logs onto the physical chain', async () => {
    const inc2 = chain[2];
    await src.sql(`INSERT INTO ticks (v) VALUES ('before the moment')`, 'shop');
    await nextSecond();
    const t = new Date();
    const state = await src.sql(TICKS, 'shop');
    await nextSecond();
    await src.sql(`INSERT INTO ticks (v) VALUES ('after the moment'); UPDATE ticks SET v = 'changed'`, 'shop');
    const inc3 = await backup('incremental');
    assert.equal(inc3.parent, inc2.id);
    await shipped();

    const target = newTarget();
    const r = await restore(['--to-time', t.toISOString(), '--target-dir', target]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    // The newest physical backup that ended before the moment (inc2), then the binary logs.
    assert.equal(out.id, inc2.id);
    assert.ok(out.binlogs.length > 0, r.stdout);
    assert.ok(logLines(r.stderr).some((l) => l.event === 'pitr-plan'));
    const restored = await startOn(target);
    assert.equal(await restored.sql(TICKS, 'shop'), state);
    assert.notEqual(await src.sql(TICKS, 'shop'), state);
  });

  test(
    'a drill lays the newest physical chain down, starts ' + 'a temporary server on it and checks the row counts',
    async () => {
      // The drill's --target is not used for a physical backup: it is laid down under TMPDIR.
      const drill = (env: Record<string, string> = {}) =>
        dbbackup(['drill', '--from', url, '--target', 'mysql://root@127.0.0.1:1/unused', '--json'], {
          timeoutMs: 240000,
          env,
        });
      const tmp = fs.mkdtempSync(path.join(dir, 'drill-tmp-'));
      fs.chmodSync(tmp, 0o755);
      const d = await drill({ TMPDIR: tmp });
      assert.equal(d.code, 0, d.stderr);
      const out = JSON.parse(d.stdout);
      assert.equal(out.ok, true);
      assert.ok(out.tablesChecked > 5 && out.rowsChecked > 0, d.stdout);
      assert.deepEqual(fs.readdirSync(tmp), []);
      // It compares with what the manifest recorded: a manifest that says otherwise fails it (exit 3).
      const newest = fs
        .readdirSync(path.join(dir, 'store'))
        .filter((f) => f.includes('-shop-'))
        .sort()
        .pop()!;
      const file = path.join(dir, 'store', newest, 'manifest.json');
      const original = fs.readFileSync(file, 'utf8');
      const m = JSON.parse(original);
      const ticks = m.tables.find((t: { name: string }) => t.name === 'ticks');
      ticks.rows += 1;
      const { digest: _, ...rest } = m;
      void _;
      fs.writeFileSync(file, JSON.stringify({ ...rest, digest: manifestDigest(rest) }, null, 2));
      try {
        const bad = await drill();
        assert.equal(bad.code, 3, bad.stderr);
        assert.match(
          bad.stderr,
          new RegExp(`table \\.?ticks has ${ticks.rows - 1} rows after the restore; the backup recorded ${ticks.rows}`),
        );
      } finally {
        fs.writeFileSync(file, original);
      }
    },
  );

  test('an age-encrypted, gzip-compressed chain restores with --identity, and not without it', async () => {
    const key = path.join(dir, 'age.key');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const recipient = /public key: (age1[0-9a-z]+)/.exec(fs.readFileSync(key, 'utf8'))![1];
    const store = `file://${dir}/age-store`;
    const extra = ['--encrypt', `age:${recipient}`, '--compression', 'gzip'];
    const full = await backup('full', extra, store);
    await src.sql(`INSERT INTO ticks (v) VALUES ('encrypted increment')`, 'shop');
    await checkpointAfter(full.position.lsn!);
    const inc = await backup('incremental', extra, store);
    assert.equal(inc.parent, full.id);
    assert.match(inc.artifacts[0].name, /^instance\.mbstream\.gz\.age$/);
    const noKey = newTarget();
    const refused = await dbbackup(['restore', '--from', store, '--id', inc.id, '--target-dir', noKey]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /give its identity file with --identity FILE/);
    assert.equal(fs.existsSync(noKey), false);
    const target = newTarget();
    const r = await dbbackup(['restore', '--from', store, '--id', inc.id, '--target-dir', target, '--identity', key], {
      timeoutMs: 240000,
    });
    assert.equal(r.code, 0, r.stderr);
    const restored = await startOn(target);
    assert.equal(await restored.sql(TICKS, 'shop'), await src.sql(TICKS, 'shop'));
  });

  test('a differential sits on the full alone and restores to the source as it is now', async () => {
    const full = chain[0];
    await src.sql(`INSERT INTO ticks (v) VALUES ('differential')`, 'shop');
    const diff = await backup('differential');
    assert.equal(diff.parent, full.id);
    assert.equal(diff.base, full.id);
    assert.equal(diff.startPosition?.lsn, full.position.lsn);
    const target = newTarget();
    const r = await restore(['--id', diff.id, '--target-dir', target]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).chain, [full.id, diff.id]);
    const restored = await startOn(target);
    assert.deepEqual(await contentOf(restored), await contentOf(src));
  });
});
