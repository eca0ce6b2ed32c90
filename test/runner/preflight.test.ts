// Check before work, against a real PostgreSQL 15 (and moto for kms:): missing, broken and
// too old tools, identity files that are not identities, and the kms: identity, which must
// never be a file on disk, not even after the runner is killed with SIGKILL mid-restore.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateKeyCommand, DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { ageKeyPair } from '../../runner/src/pipeline/encrypt';
import { Moto, startMoto } from '../harness/moto';
import { dbbackup } from '../harness/runner';

const PG_BIN = '/usr/lib/postgresql/15/bin';

/** A directory of symlinks to every program on PATH except `without`, plus `scripts` (name → sh body). */
function binDir(
  root: string,
  name: string,
  from: readonly string[],
  without: readonly string[],
  scripts: Record<string, string> = {},
): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  for (const d of from) {
    let entries: string[];
    try {
      entries = fs.readdirSync(d);
    } catch {
      continue;
    }
    for (const e of entries) {
      if (without.includes(e) || e in scripts || fs.existsSync(path.join(dir, e))) continue;
      try {
        if (fs.statSync(path.join(d, e)).isFile()) fs.symlinkSync(path.join(d, e), path.join(dir, e));
      } catch {
        // a dangling link on PATH
      }
    }
  }
  for (const [n, body] of Object.entries(scripts))
    fs.writeFileSync(path.join(dir, n), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return dir;
}

const PATH_DIRS = (process.env.PATH ?? '').split(':').filter((d) => d !== '');

/** Every process below `root` (and root), from /proc. */
function family(root: number): number[] {
  const parent = new Map<number, number>();
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const m = /^\d+ \(.*\) \S+ (\d+)/s.exec(fs.readFileSync(`/proc/${p}/stat`, 'utf8'));
      if (m !== null) parent.set(Number(p), Number(m[1]));
    } catch {
      // gone
    }
  }
  const out = [root];
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (out.includes(ppid) && !out.includes(pid)) {
        out.push(pid);
        grew = true;
      }
    }
  }
  return out;
}

/** Files under `dir` whose content holds an age identity (the runner's directories come and go meanwhile). */
function keyFilesUnder(dir: string): string[] {
  const found: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return found; // removed meanwhile
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      found.push(...keyFilesUnder(p));
      continue;
    }
    try {
      if (e.isFile() && fs.readFileSync(p, 'latin1').includes('AGE-SECRET-KEY-1')) found.push(p);
    } catch {
      // removed meanwhile
    }
  }
  return found;
}

describe('preflight: tools, versions and identities are checked before any session', () => {
  let pg: LocalPostgres;
  let tmp: string;
  let store: string;
  let recipient: string;
  let identityFile: string;

  beforeAll(async () => {
    pg = await startLocalPostgres();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-preflight-'));
    store = path.join(tmp, 'store');
    await pg.sql('CREATE DATABASE app');
    await pg.sql(
      'CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t ' +
        'SELECT i, md5(i::text) FROM generate_series(1, 1000) i;',
      'app',
    );
    const pair = ageKeyPair(Buffer.alloc(32, 3));
    recipient = pair.recipient;
    identityFile = path.join(tmp, 'identity.txt');
    fs.writeFileSync(identityFile, `# created by the test\n# public key: ${recipient}\n${pair.identity}\n`, {
      mode: 0o600,
    });
    const b = await dbbackup(
      [
        'backup',
        '--engine',
        'postgres',
        '--source',
        pg.url('app'),
        '--to',
        `file://${store}`,
        '--encrypt',
        `age:${recipient}`,
      ],
      { env: pg.env },
    );
    assert.equal(b.code, 0, b.stderr);
  });
  afterAll(async () => {
    await pg?.stop();
    if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const backupArgs = (to: string, extra: string[] = []) => [
    'backup',
    '--engine',
    'postgres',
    '--source',
    pg.url('app'),
    '--to',
    `file://${to}`,
    ...extra,
  ];

  async function refusedBackup(
    name: string,
    env: Record<string, string>,
    extra: string[],
    message: RegExp,
  ): Promise<void> {
    const to = path.join(tmp, `store-${name}`);
    const r = await dbbackup(backupArgs(to, extra), { env: { ...pg.env, ...env } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    // Refused before work: no backup folder, no manifest, no session that logged its start.
    assert.ok(
      !fs.existsSync(to) || fs.readdirSync(to).length === 0,
      `${to} holds ${fs.existsSync(to) ? fs.readdirSync(to) : ''}`,
    );
    assert.doesNotMatch(r.stderr, /"event":"backup-start"/);
  }

  test('zstd missing from PATH: exit 2 naming zstd and --compression', async () => {
    const bin = binDir(tmp, 'no-zstd', PATH_DIRS, ['zstd']);
    await refusedBackup(
      'no-zstd',
      { PATH: bin },
      [],
      /zstd is not installed or not on PATH.*compression zstd.*--compression/,
    );
  });

  test('lz4 missing, and a zstd that does not run: exit 2', async () => {
    const bin = binDir(tmp, 'no-lz4', PATH_DIRS, ['lz4']);
    await refusedBackup('no-lz4', { PATH: bin }, ['--compression', 'lz4'], /lz4 is not installed/);
    const broken = binDir(tmp, 'broken-zstd', PATH_DIRS, [], {
      zstd: 'echo "zstd: cannot load libzstd" >&2; exit 127',
    });
    await refusedBackup(
      'broken-zstd',
      { PATH: broken },
      [],
      /zstd \(zstd\) does not run: 'zstd --version' failed.*cannot load libzstd/,
    );
  });

  test('age missing from PATH with --encrypt age: exit 2 naming age', async () => {
    const bin = binDir(tmp, 'no-age', PATH_DIRS, ['age']);
    await refusedBackup(
      'no-age',
      { PATH: bin },
      ['--encrypt', `age:${recipient}`],
      /age is not installed or not on PATH.*encryption age/,
    );
  });

  test('pg_dump missing: exit 2 naming pg_dump', async () => {
    const bin = binDir(tmp, 'pg-no-dump', [PG_BIN], ['pg_dump']);
    await refusedBackup(
      'pg-no-dump',
      { DBBACKUP_PG_BIN: bin },
      [],
      /pg_dump is not installed or not on PATH.*PostgreSQL backup/,
    );
  });

  test('a pg_dump that ends 0 having written nothing fails the backup: exit 1, nothing stored', async () => {
    const bin = binDir(tmp, 'pg-silent-dump', [PG_BIN], [], {
      pg_dump: `for a; do [ "$a" = --version ] && exec ${PG_BIN}/pg_dump --version; done; exit 0`,
    });
    const cases: [string, string[], RegExp][] = [
      ['zstd', [], /pg_dump ended without an error but wrote nothing for database\.pgdump: that is not a backup/],
      ['lz4-age', ['--compression', 'lz4', '--encrypt', `age:${recipient}`], /wrote nothing for database\.pgdump/],
      ['none', ['--compression', 'none'], /wrote nothing for database\.pgdump/],
      ['jobs', ['--jobs', '2'], /pg_dump ended without an error but wrote no toc\.dat into its directory/],
    ];
    for (const [name, extra, message] of cases) {
      const to = path.join(tmp, `store-silent-${name}`);
      const r = await dbbackup(backupArgs(to, extra), { env: { ...pg.env, DBBACKUP_PG_BIN: bin } });
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.ok(!fs.existsSync(to) || fs.readdirSync(to).length === 0, `${name}: ${to} holds a backup`);
    }
  });

  test('pg_dump older than the server: exit 2 naming both versions', async () => {
    const bin = binDir(tmp, 'pg-old-dump', [PG_BIN], [], { pg_dump: 'echo "pg_dump (PostgreSQL) 14.0"' });
    await refusedBackup(
      'pg-old-dump',
      { DBBACKUP_PG_BIN: bin },
      [],
      /pg_dump 14 \(.*\) is older than the PostgreSQL 15 server at postgres:\/\/.*client tools/,
    );
  });

  test(
    'pg_restore older than the server (or than the pg_dump ' + 'that made the archive): exit 2, target not created',
    async () => {
      const bin = binDir(tmp, 'pg-old-restore', [PG_BIN], [], { pg_restore: 'echo "pg_restore (PostgreSQL) 14.0"' });
      const r = await dbbackup(
        [
          'restore',
          '--from',
          `file://${store}`,
          '--latest',
          '--target',
          pg.url('restored_old'),
          '--identity',
          identityFile,
        ],
        {
          env: { ...pg.env, DBBACKUP_PG_BIN: bin },
        },
      );
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /pg_restore 14 .*(cannot read an archive made by pg_dump 15|older than the PostgreSQL 15 server)/,
      );
      assert.equal(await pg.sql("SELECT count(*) FROM pg_database WHERE datname = 'restored_old'"), '0');
    },
  );

  test(
    '--identity that is a directory, garbage, a public key, empty ' + 'or missing: exit 2 before the target is touched',
    async () => {
      const garbage = path.join(tmp, 'garbage.txt');
      fs.writeFileSync(garbage, 'this is not a key\n');
      const broken = path.join(tmp, 'broken.txt');
      const real = fs.readFileSync(identityFile, 'utf8');
      fs.writeFileSync(
        broken,
        real.replace(/AGE-SECRET-KEY-1(.)/, (_m, c: string) => `AGE-SECRET-KEY-1${c === 'Q' ? 'P' : 'Q'}`),
      );
      const pub = path.join(tmp, 'public.txt');
      fs.writeFileSync(pub, `${recipient}\n`);
      const empty = path.join(tmp, 'empty.txt');
      fs.writeFileSync(empty, '# nothing here\n');
      const cases: [string, RegExp][] = [
        [tmp, /is a directory/],
        [garbage, /is not an age identity/],
        [broken, /is not an age identity \(line 1 .*checksum does not match\)/],
        [pub, /holds a recipient \(a public key\), not an identity/],
        [empty, /holds no identity/],
        [path.join(tmp, 'missing.txt'), /cannot be read \(ENOENT\)/],
      ];
      for (const [file, message] of cases) {
        const r = await dbbackup(
          ['restore', '--from', `file://${store}`, '--latest', '--target', pg.url('restored_id'), '--identity', file],
          { env: pg.env, timeoutMs: 30000 },
        );
        assert.equal(r.code, 2, `${file}: ${r.stderr}`);
        assert.match(
          r.stderr,
          new RegExp(`--identity '${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}' ${message.source}`),
        );
        assert.doesNotMatch(r.stdout + r.stderr, /AGE-SECRET-KEY-1[0-9A-Z]/);
        const v = await dbbackup(['verify', '--from', `file://${store}`, '--latest', '--deep', '--identity', file], {
          env: pg.env,
          timeoutMs: 30000,
        });
        assert.equal(v.code, 2, `verify ${file}: ${v.stderr}`);
      }
      assert.equal(await pg.sql("SELECT count(*) FROM pg_database WHERE datname = 'restored_id'"), '0');
    },
  );

  test(
    'restore without zstd on PATH: exit 2, the target ' + 'database is not created; with it the restore works',
    async () => {
      const bin = binDir(tmp, 'restore-no-zstd', PATH_DIRS, ['zstd']);
      const args = [
        'restore',
        '--from',
        `file://${store}`,
        '--latest',
        '--target',
        pg.url('restored_ok'),
        '--identity',
        identityFile,
      ];
      const r = await dbbackup(args, { env: { ...pg.env, PATH: bin } });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /zstd is not installed or not on PATH/);
      assert.equal(await pg.sql("SELECT count(*) FROM pg_database WHERE datname = 'restored_ok'"), '0');
      const ok = await dbbackup(args, { env: pg.env });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(await pg.sql('SELECT count(*) FROM t', 'restored_ok'), '1000');
    },
  );
});

describe('kms: the unwrapped identity never touches a disk', () => {
  let pg: LocalPostgres;
  let moto: Moto;
  let env: Record<string, string>;
  let tmp: string;
  let identity: string;
  const bucket = 'preflight-kms';

  beforeAll(async () => {
    [pg, moto] = await Promise.all([startLocalPostgres(), startMoto()]);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-kmsfd-'));
    // The runner's temporary directory: everything it would write for itself lands here.
    env = { ...pg.env, ...moto.env, TMPDIR: tmp };
    const clientConfig = {
      endpoint: moto.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    const kms = new KMSClient(clientConfig);
    const keyId = (await kms.send(new CreateKeyCommand({ Description: 'backups' }))).KeyMetadata!.KeyId!;
    await new S3Client(clientConfig).send(new CreateBucketCommand({ Bucket: bucket }));
    // Large enough that the restore runs for a while to be watched.
    await pg.sql('CREATE DATABASE big');
    await pg.sql(
      'CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, ' +
        'md5(i::text) || md5((i * 7)::text) FROM generate_series(1, 600000) i;',
      'big',
    );
    const b = await dbbackup(
      [
        'backup',
        '--engine',
        'postgres',
        '--source',
        pg.url('big'),
        '--to',
        `s3://${bucket}/p`,
        '--encrypt',
        `kms:${keyId}`,
        '--json',
      ],
      { env },
    );
    assert.equal(b.code, 0, b.stderr);
    const enc = JSON.parse(b.stdout).pipeline.encryption;
    const plain = await kms.send(
      new DecryptCommand({
        CiphertextBlob: Buffer.from(enc.wrappedKey, 'base64'),
        KeyId: enc.keyId,
        EncryptionContext: enc.encryptionContext,
      }),
    );
    identity = Buffer.from(plain.Plaintext!).toString('utf8').trim();
    assert.match(identity, /^AGE-SECRET-KEY-1/);
  });
  afterAll(async () => {
    await Promise.all([pg?.stop(), moto?.stop()]);
    if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Watch the runner's family while it runs: every fd target, whether age got its key on fd 3. */
  function watch(
    pid: number,
    seen: { targets: Set<string>; ageFd3: string[]; keyFiles: string[]; stop: boolean },
  ): Promise<void> {
    return (async () => {
      while (!seen.stop) {
        for (const p of family(pid)) {
          let comm = '';
          try {
            comm = fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
            for (const fd of fs.readdirSync(`/proc/${p}/fd`)) {
              const target = fs.readlinkSync(`/proc/${p}/fd/${fd}`);
              seen.targets.add(target);
              if (comm === 'age' && fd === '3') seen.ageFd3.push(target);
            }
          } catch {
            // exited meanwhile
          }
        }
        seen.keyFiles.push(...keyFilesUnder(tmp));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
  }

  /** Named files (not pipes, sockets, devices or unnamed in-memory files) among fd targets that hold the key. */
  function namedKeyFiles(targets: Set<string>): string[] {
    return [...targets].filter((t) => {
      if (!t.startsWith('/') || t.endsWith('(deleted)')) return false;
      try {
        return fs.statSync(t).isFile() && fs.readFileSync(t, 'latin1').includes(identity);
      } catch {
        return false;
      }
    });
  }

  test('restore hands age its key on fd 3 from an unnamed file; no named file ever holds it', async () => {
    const seen = { targets: new Set<string>(), ageFd3: [] as string[], keyFiles: [] as string[], stop: false };
    let watching: Promise<void> | undefined;
    const r = await dbbackup(['restore', '--from', `s3://${bucket}/p`, '--latest', '--target', pg.url('restored')], {
      env,
      onSpawn: (pid) => (watching = watch(pid, seen)),
    });
    seen.stop = true;
    await watching;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await pg.sql('SELECT count(*) FROM t', 'restored'), '600000');
    assert.ok(seen.ageFd3.length > 0, 'age was seen running with its key on fd 3');
    for (const t of seen.ageFd3)
      assert.match(t, /\/#\d+ \(deleted\)$/, `age's fd 3 is an unnamed in-memory file, not ${t}`);
    assert.deepEqual(namedKeyFiles(seen.targets), []);
    assert.deepEqual(seen.keyFiles, []);
    assert.ok(!(r.stdout + r.stderr).includes(identity));
  });

  test('SIGKILL mid-restore leaves no key behind', async () => {
    const seen = { targets: new Set<string>(), ageFd3: [] as string[], keyFiles: [] as string[], stop: false };
    let killed = false;
    const r = await dbbackup(['restore', '--from', `s3://${bucket}/p`, '--latest', '--target', pg.url('killed')], {
      env,
      onSpawn: (pid) => {
        void (async () => {
          const end = Date.now() + 60000;
          while (!killed && Date.now() < end) {
            const ages = family(pid).filter((p) => {
              try {
                return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'age';
              } catch {
                return false;
              }
            });
            if (ages.length > 0) {
              for (const t of fs
                .readdirSync(`/proc/${ages[0]}/fd`)
                .map((fd) => fs.readlinkSync(`/proc/${ages[0]}/fd/${fd}`)))
                seen.targets.add(t);
              process.kill(pid, 'SIGKILL');
              killed = true;
            }
            await new Promise((res) => setTimeout(res, 5));
          }
        })();
      },
    });
    assert.ok(killed, `the runner was killed mid-restore (exit ${r.code}): ${r.stderr.slice(-500)}`);
    assert.equal(r.code, null);
    // Its children end once their pipes close; nothing they or the runner left holds the key.
    await new Promise((res) => setTimeout(res, 1000));
    assert.deepEqual(keyFilesUnder(tmp), []);
    assert.deepEqual(namedKeyFiles(seen.targets), []);
    assert.deepEqual(
      fs.readdirSync(tmp).filter((n) => n.startsWith('dbbackup-key-')),
      [],
    );
  });
});
