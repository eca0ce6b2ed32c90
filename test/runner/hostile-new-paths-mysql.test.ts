// Physical MariaDB backups (mariadb-backup) with their programs taken off PATH: each command that
// needs mariadb-backup or mbstream must exit 2 naming the program before any work (no folder in
// the store, nothing at the target). Against a real MariaDB 10.11 server. (mariadbd cannot be
// taken away this way: the runner also looks in /usr/sbin, where Debian puts it.)
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { manifestDigest } from '../../lib/core/manifest';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { loadMariaFixture } from '../harness/mariadb-fixture';
import { dbbackup } from '../harness/runner';

describe('physical MariaDB backups without their programs', () => {
  let src: LocalMariaDB;
  let dir: string;
  let url: string;
  let id: string;

  /** A PATH of every program of the system's bin directories but `missing` (and its other names). */
  const pathWithout = (missing: string): string => {
    const names = missing === 'mariadb-backup' ? ['mariadb-backup', 'mariabackup'] : [missing];
    const bin = fs.mkdtempSync(path.join(dir, `bin-without-${missing}-`));
    for (const d of ['/usr/local/bin', '/usr/bin', '/usr/local/sbin', '/usr/sbin']) {
      if (!fs.existsSync(d)) continue;
      for (const f of fs.readdirSync(d)) {
        if (names.includes(f) || fs.existsSync(path.join(bin, f))) continue;
        fs.symlinkSync(path.join(d, f), path.join(bin, f));
      }
    }
    return bin;
  };
  const folders = () => fs.readdirSync(path.join(dir, 'store')).filter((f) => /^\d{8}T/.test(f));

  beforeAll(async () => {
    src = await startLocalMariaDB();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-hostile-my-'));
    fs.chmodSync(dir, 0o755);
    url = `file://${dir}/store`;
    await loadMariaFixture(src, 'shop', 50);
    const r = await dbbackup(
      ['backup', '--engine', 'mysql', '--method', 'physical', '--source', src.url('shop'), '--to', url, '--json'],
      { env: src.env },
    );
    assert.equal(r.code, 0, r.stderr);
    id = JSON.parse(r.stdout).id;
  });
  afterAll(async () => {
    await src?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('backup --method physical without mariadb-backup: exit 2 naming it, no folder in the store', async () => {
    const before = folders();
    const r = await dbbackup(
      ['backup', '--engine', 'mysql', '--method', 'physical', '--source', src.url('shop'), '--to', url],
      { env: { ...src.env, PATH: pathWithout('mariadb-backup') }, timeoutMs: 60000 },
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /mariadb-backup/);
    assert.deepEqual(folders(), before);
  });

  test('restore --target-dir and verify --deep without mbstream: exit 2 naming it, nothing at the target', async () => {
    const env = { PATH: pathWithout('mbstream') };
    const target = path.join(dir, 'target');
    const r = await dbbackup(['restore', '--from', url, '--id', id, '--target-dir', target], { env, timeoutMs: 60000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /mbstream/);
    assert.equal(fs.existsSync(target), false);
    const v = await dbbackup(['verify', '--from', url, '--id', id, '--deep'], { env, timeoutMs: 60000 });
    assert.equal(v.code, 2, v.stdout + v.stderr);
    assert.match(v.stdout + v.stderr, /mbstream/);
  });

  test('restore --target-dir and verify --deep without mariadb-backup (the prepare): exit 2 naming it', async () => {
    const env = { PATH: pathWithout('mariadb-backup') };
    const target = path.join(dir, 'target-2');
    const r = await dbbackup(['restore', '--from', url, '--id', id, '--target-dir', target], { env, timeoutMs: 60000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /mariadb-backup/);
    assert.equal(fs.existsSync(target), false);
    const v = await dbbackup(['verify', '--from', url, '--id', id, '--deep'], { env, timeoutMs: 60000 });
    assert.equal(v.code, 2, v.stdout + v.stderr);
    assert.match(v.stdout + v.stderr, /mariadb-backup/);
  });

  test(
    'a manifest whose LSN is forged (its digest made to match) is ' +
      'refused with exit 3 before anything is laid down',
    async () => {
      const file = path.join(dir, 'store', id, 'manifest.json');
      const original = fs.readFileSync(file, 'utf8');
      const m = JSON.parse(original);
      const { digest: _, ...rest } = { ...m, position: { ...m.position, lsn: String(BigInt(m.position.lsn) + 4096n) } };
      fs.writeFileSync(file, JSON.stringify({ ...rest, digest: manifestDigest(rest) }, null, 2));
      try {
        const target = path.join(dir, 'target-forged');
        const r = await dbbackup(['restore', '--from', url, '--id', id, '--target-dir', target], { timeoutMs: 120000 });
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, new RegExp(`covers LSN .* to ${m.position.lsn}, but its manifest says`));
        assert.equal(fs.existsSync(target), false, 'nothing was laid down');
        assert.deepEqual(
          fs.readdirSync(dir).filter((f) => f.startsWith('target-forged')),
          [],
        );
      } finally {
        fs.writeFileSync(file, original);
      }
    },
  );
});
