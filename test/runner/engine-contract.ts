// The contract every SQL engine keeps, written once and run against a real server of each
// (test/harness/engines.ts) by engine-contract-<engine>.test.ts: round trips through every codec and
// age, listing, --with-globals, --clean, progress lines; and under faults and bad input, nothing lost
// and nothing taken for a good backup. What only one engine does is tested beside it
// (mariadb-specific.test.ts). One file per engine so that jest runs the engines side by side.
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Fingerprint, Server, SqlEngine } from '../harness/engines';
import { Moto, startMoto } from '../harness/moto';
import { allCmdlines, findDescendant, poll } from '../harness/procs';
import { TcpProxy } from '../harness/proxy';
import { dbbackup, logLines } from '../harness/runner';
import { flipByte } from '../harness/damage';

/** Files under a directory, recursively, relative to it (an array of this realm, for deepEqual). */
function files(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const entries = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  return Array.from(entries, (e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name))).sort();
}

const EXT: Record<string, string> = { zstd: '.zst', gzip: '.gz', lz4: '.lz4', none: '' };
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Declare the contract's tests for one engine (call at the top level of a test file). */
export function sqlEngineContract(engine: SqlEngine): void {
  describe(`${engine.label}: the SQL engine contract`, () => {
    let db: Server;
    let moto: Moto;
    let s3: S3Client;
    let dir: string;
    let expected: Fingerprint;
    let expectedGlobals: unknown;
    let identity: string;
    let otherIdentity: string;
    let recipient: string;
    const bucket = `contract-${engine.name}`;
    const run = (args: string[], env: Record<string, string | undefined> = db.env) => dbbackup(args, { env });
    const backupArgs = (database: string, to: string) => [
      'backup',
      '--engine',
      engine.name,
      '--source',
      db.url(database),
      '--to',
      to,
    ];

    beforeAll(async () => {
      [db, moto] = await Promise.all([engine.start(), startMoto()]);
      s3 = new S3Client({
        endpoint: moto.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      await engine.load(db, 'shop');
      await engine.loadBig(db);
      expected = await engine.fingerprint(db, 'shop');
      expectedGlobals = await engine.globals.of(db, 'shop');
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `dbbackup-contract-${engine.name}-`));
      identity = path.join(dir, 'identity.txt');
      otherIdentity = path.join(dir, 'other.txt');
      execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
      execFileSync('age-keygen', ['-o', otherIdentity], { stdio: 'ignore' });
      recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
    });
    afterAll(async () => {
      s3?.destroy();
      await Promise.all([db?.stop(), moto?.stop()]);
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    async function openUploads(): Promise<number> {
      return (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads?.length ?? 0;
    }
    async function manifestsUnder(prefix: string): Promise<string[]> {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (r.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('manifest.json'));
    }

    describe('round trips to file:// storage', () => {
      test.each([
        ['zstd', 'none'],
        ['gzip', 'none'],
        ['lz4', 'none'],
        ['none', 'none'],
        ['zstd', 'age'],
      ])('%s + %s: backup, verify --deep, restore gives identical data and objects', async (compression, encrypt) => {
        const store = `file://${dir}/${compression}-${encrypt}`;
        const enc = encrypt === 'age' ? `age:${recipient}` : 'none';
        const b = await run([...backupArgs('shop', store), '--compression', compression, '--encrypt', enc, '--json']);
        assert.equal(b.code, 0, b.stderr);
        const manifest = JSON.parse(b.stdout);
        assert.equal(manifest.engine, engine.name);
        assert.equal(manifest.pipeline.compression, compression);
        engine.checkManifest(manifest);
        // The stored name says what each standard tool decodes, and it is there.
        const name = `${engine.artifact}${EXT[compression]}${encrypt === 'age' ? '.age' : ''}`;
        assert.equal(manifest.artifacts[0].name, name);
        assert.ok(fs.existsSync(path.join(dir, `${compression}-${encrypt}`, manifest.id, name)), name);

        const identityArgs = encrypt === 'age' ? ['--identity', identity] : [];
        const v = await run(['verify', '--from', store, '--latest', '--deep', ...identityArgs]);
        assert.equal(v.code, 0, v.stderr);
        assert.match(v.stdout, new RegExp(`ok\\s+${manifest.id} \\(deep\\)`));

        const target = `restored_${compression}_${encrypt}`;
        const r = await run([
          'restore',
          '--from',
          store,
          '--id',
          manifest.id,
          '--target',
          db.url(target),
          ...identityArgs,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(await engine.fingerprint(db, target), expected);
      });

      test('list shows committed backups and ignores a folder without a manifest', async () => {
        const store = `file://${dir}/zstd-none`;
        const dead = path.join(dir, 'zstd-none', '20260101T000000Z-shop-full-dead');
        fs.mkdirSync(dead);
        fs.writeFileSync(path.join(dead, `${engine.artifact}.zst`), 'partial');
        const l = await run(['list', '--from', store, '--json']);
        assert.equal(l.code, 0, l.stderr);
        const list = JSON.parse(l.stdout);
        assert.equal(list.backups.length, 1);
        assert.deepEqual(list.incomplete, ['20260101T000000Z-shop-full-dead']);
        const text = await run(['list', '--from', store]);
        assert.match(text.stdout, /shop\s+full\s+monthly/);
        assert.match(text.stdout, /1 incomplete folder/);
        fs.rmSync(dead, { recursive: true });
      });

      test(
        'restore --with-globals brings the globals to a ' + 'fresh server; what exists there is not an error',
        async () => {
          const store = `file://${dir}/zstd-none`;
          const other = await engine.start();
          try {
            const target = engine.globals.target;
            const r = await run(
              ['restore', '--from', store, '--latest', '--with-globals', '--target', other.url(target)],
              other.env,
            );
            assert.equal(r.code, 0, r.stderr);
            assert.deepEqual(await engine.globals.of(other, target), expectedGlobals);
            assert.deepEqual(await engine.fingerprint(other, target), expected);
            await engine.globals.check?.(other, r);
          } finally {
            await other.stop();
          }
        },
      );

      test('restore refuses a target with objects unless --clean, and --clean replaces them', async () => {
        const store = `file://${dir}/zstd-none`;
        await engine.busyTarget.create(db, 'busy');
        const refused = await run(['restore', '--from', store, '--latest', '--target', db.url('busy')]);
        assert.equal(refused.code, 2);
        assert.match(refused.stderr, engine.busyTarget.refusal);
        await engine.busyTarget.assertUntouched(db, 'busy');
        const cleaned = await run(['restore', '--from', store, '--latest', '--clean', '--target', db.url('busy')]);
        assert.equal(cleaned.code, 0, cleaned.stderr);
        await engine.busyTarget.assertCleaned(db, 'busy', expected, cleaned);
      });

      test('progress and events are JSON lines on stderr when it is not a terminal', async () => {
        const b = await run(backupArgs('shop', `file://${dir}/progress`), {
          ...db.env,
          DBBACKUP_PROGRESS_INTERVAL: '0.01',
        });
        assert.equal(b.code, 0, b.stderr);
        const lines = logLines(b.stderr);
        assert.ok(
          lines.some(
            (l) => l.event === 'progress' && typeof l.bytes === 'number' && typeof l.bytesPerSecond === 'number',
          ),
          b.stderr,
        );
        assert.ok(lines.some((l) => l.event === 'backup-done'));
        engine.checkProgress?.(lines, b.stderr);
      });
    });

    describe('faults and bad input: nothing is lost, nothing is taken for a good backup', () => {
      test('bad input exits 2 with a message naming the value and the fix', async () => {
        for (const [args, message] of engine.badInput(db, dir)) {
          const r = await run(args);
          assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
          assert.match(r.stderr, message);
          assert.doesNotMatch(r.stderr, /hunter2/);
        }
        assert.deepEqual(files(`${dir}/x`), []);
      });

      test('an unreachable server: exit 1, a clear message, no manifest', async () => {
        const r = await run([
          'backup',
          '--engine',
          engine.name,
          '--source',
          engine.unreachable.url,
          '--to',
          `file://${dir}/unreachable`,
        ]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, engine.unreachable.message);
        assert.deepEqual(files(`${dir}/unreachable`), []);
      });

      test('a wrong password: exit 1, a clear message, no manifest, and the password is not logged', async () => {
        const wrong = 'not-the-password-' + Date.now();
        const r = await run(backupArgs('shop', `file://${dir}/wrongpw`), {
          ...db.env,
          DBBACKUP_SOURCE_PASSWORD: wrong,
          [engine.toolPasswordEnv]: undefined,
        });
        assert.equal(r.code, 1);
        assert.match(r.stderr, engine.wrongPassword);
        assert.doesNotMatch(r.stdout + r.stderr, new RegExp(wrong));
        assert.deepEqual(files(`${dir}/wrongpw`), []);
      });

      test('the dump tool killed mid-stream: exit 1, no manifest, no multipart upload left open', async () => {
        const proxy = new TcpProxy(moto.port, 4 * 1024 * 1024);
        await proxy.start();
        try {
          let runner = 0;
          const running = dbbackup([...backupArgs('big', `s3://${bucket}/killed`), '--compression', 'none'], {
            env: { ...db.env, ...moto.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}` },
            onSpawn: (pid) => (runner = pid),
          });
          const dump = await poll(() =>
            proxy.bytesUp > 2 << 20 ? findDescendant(runner, engine.dumpTool) : undefined,
          );
          process.kill(dump, 'SIGKILL');
          const r = await running;
          assert.equal(r.code, 1, r.stderr);
          assert.match(r.stderr, new RegExp(`${escapeRe(engine.dumpTool)} was killed by SIGKILL`));
          assert.match(r.stderr, /nothing was committed/);
          assert.deepEqual(await manifestsUnder('killed/'), []);
          assert.equal(await openUploads(), 0);
        } finally {
          await proxy.stop();
        }
      });

      test(
        'the storage goes away mid-upload: exit 1, no ' + 'manifest, and the upload is aborted once it is back',
        async () => {
          const proxy = new TcpProxy(moto.port, 4 * 1024 * 1024);
          const port = await proxy.start();
          try {
            const running = run([...backupArgs('big', `s3://${bucket}/outage`), '--compression', 'none'], {
              ...db.env,
              ...moto.env,
              AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`,
            });
            await poll(() => (proxy.bytesUp > 10 << 20 ? true : undefined));
            await proxy.stop();
            assert.ok((await openUploads()) >= 1, 'an upload was open when the storage went away');
            await new Promise((r) => setTimeout(r, 2500));
            await proxy.start(port);
            const r = await running;
            assert.equal(r.code, 1, r.stderr);
            assert.match(r.stderr, /nothing was committed/);
            assert.match(r.stderr, /aborted the incomplete upload/);
            assert.deepEqual(await manifestsUnder('outage/'), []);
            assert.equal(await openUploads(), 0);
          } finally {
            await proxy.stop();
          }
        },
      );

      test('SIGTERM during a backup: exit 1, nothing committed, no partial file left, nothing held', async () => {
        let runner = 0;
        const running = dbbackup(
          [...backupArgs('big', `file://${dir}/sigterm`), '--compression', engine.sigtermCompression],
          {
            env: db.env,
            onSpawn: (pid) => (runner = pid),
          },
        );
        await poll(() => findDescendant(runner, engine.dumpTool));
        process.kill(runner, 'SIGTERM');
        const r = await running;
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /interrupted by SIGTERM/);
        assert.deepEqual(files(`${dir}/sigterm`), []);
        await engine.afterSigterm?.(db);
      });

      test('two overlapping backups of the same database to the same place never interleave', async () => {
        const proxy = new TcpProxy(moto.port, 6 * 1024 * 1024);
        await proxy.start();
        try {
          const env = { ...db.env, ...moto.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}` };
          const args = [...backupArgs('big', `s3://${bucket}/overlap`), '--compression', 'none'];
          const first = run(args, env);
          await poll(() => (proxy.bytesUp > 1 << 20 ? true : undefined));
          const refused = await run(args, env);
          assert.equal(refused.code, 1);
          assert.match(refused.stderr, engine.lockHeld);
          const waiter = run([...args, '--lock-wait', '120'], env);
          const [a, b] = await Promise.all([first, waiter]);
          assert.equal(a.code, 0, a.stderr);
          assert.equal(b.code, 0, b.stderr);
          assert.match(b.stderr, /waiting for an overlapping backup/);
          assert.equal((await manifestsUnder('overlap/')).length, 2);
        } finally {
          await proxy.stop();
        }
      });

      test(
        'one flipped byte: verify exits 3 naming the object; restore ' +
          'exits 3 and leaves every kind of target as it was',
        async () => {
          for (const compression of ['zstd', 'none']) {
            const store = `file://${dir}/flip-${compression}`;
            const b = await run([...backupArgs('shop', store), '--compression', compression, '--json']);
            assert.equal(b.code, 0, b.stderr);
            const m = JSON.parse(b.stdout);
            const name = m.artifacts[0].name;
            assert.equal(name, `${engine.artifact}${EXT[compression]}`);
            const object = path.join(dir, `flip-${compression}`, m.id, name);
            flipByte(object);

            const v = await run(['verify', '--from', store, '--latest']);
            assert.equal(v.code, 3, v.stderr);
            assert.match(v.stdout, new RegExp(`DAMAGED\\s+${m.id}: ${escapeRe(name)} sha256`));

            // A target with objects (--clean).
            const target = `flip_${compression}_target`;
            const before = await engine.occupied(db, target);
            const r = await run(['restore', '--from', store, '--latest', '--clean', '--target', db.url(target)]);
            assert.equal(r.code, 3, r.stderr);
            assert.match(r.stderr, new RegExp(`${escapeRe(name)}: sha256 .* does not match`));
            assert.deepEqual(await engine.fingerprint(db, target), before);

            await engine.checkDamagedRestore?.(db, store, compression);

            // A database that did not exist is not left behind, half made.
            const fresh = await run([
              'restore',
              '--from',
              store,
              '--latest',
              '--target',
              db.url(`flip_${compression}_new`),
            ]);
            assert.equal(fresh.code, 3);
            assert.equal(await engine.exists(db, `flip_${compression}_new`), false);
          }
          assert.deepEqual(await engine.leftovers(db), [], 'no scratch database is left');
        },
      );

      test('the wrong decryption key: restore fails clearly and the target is unchanged', async () => {
        const store = `file://${dir}/wrongkey`;
        const b = await run([...backupArgs('shop', store), '--encrypt', `age:${recipient}`]);
        assert.equal(b.code, 0, b.stderr);
        const before = await engine.occupied(db, 'wrongkey_target');
        const r = await run([
          'restore',
          '--from',
          store,
          '--latest',
          '--clean',
          '--with-globals',
          '--identity',
          otherIdentity,
          '--target',
          db.url('wrongkey_target'),
        ]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /age exited with code 1: .*no identity matched any of the recipients/);
        assert.deepEqual(await engine.fingerprint(db, 'wrongkey_target'), before);
        const fresh = await run([
          'restore',
          '--from',
          store,
          '--latest',
          '--identity',
          otherIdentity,
          '--target',
          db.url('wrongkey_new'),
        ]);
        assert.equal(fresh.code, 1);
        assert.equal(await engine.exists(db, 'wrongkey_new'), false);
        assert.deepEqual(await engine.leftovers(db), []);
        const missing = await run(['restore', '--from', store, '--latest', '--target', db.url('wrongkey_target2')]);
        assert.equal(missing.code, 2);
        assert.match(
          missing.stderr,
          /encrypted to the age recipient age1.*give its identity file with --identity FILE/,
        );
      });

      test('an unreadable manifest: verify --all exits 3 naming it', async () => {
        const store = `file://${dir}/badmanifest`;
        const b = await run([...backupArgs('shop', store), '--json']);
        assert.equal(b.code, 0, b.stderr);
        const m = JSON.parse(b.stdout);
        fs.writeFileSync(path.join(dir, 'badmanifest', m.id, 'manifest.json'), '{"version": 1, "id": ');
        const v = await run(['verify', '--from', store, '--all']);
        assert.equal(v.code, 3);
        assert.match(v.stdout, new RegExp(`DAMAGED\\s+${m.id}: .*manifest\\.json is not JSON`));
        const missing = await run(['verify', '--from', store, '--id', '20200101T000000Z-none-full-0000']);
        assert.equal(missing.code, 3);
        assert.match(missing.stderr, /there is no backup '20200101T000000Z-none-full-0000'/);
      });

      test('the password never appears in any process argv nor in any log line', async () => {
        const seen = new Set<string>();
        let done = false;
        const watcher = (async () => {
          while (!done) {
            for (const c of allCmdlines()) if (engine.secrets.watch.test(c)) seen.add(c);
            await new Promise((r) => setImmediate(r));
          }
        })();
        const store = `file://${dir}/argv`;
        const b = await run([...backupArgs('big', store), '--encrypt', `age:${recipient}`]);
        await engine.secrets.prepare?.(db, 'argv_restored');
        const r = await run([
          'restore',
          '--from',
          store,
          '--latest',
          ...engine.secrets.restoreArgs,
          '--identity',
          identity,
          '--target',
          db.url('argv_restored'),
        ]);
        done = true;
        await watcher;
        assert.equal(b.code, 0, b.stderr);
        assert.equal(r.code, 0, r.stderr);
        const cmdlines = [...seen];
        assert.ok(cmdlines.some(engine.secrets.sawDump), `the watcher saw ${engine.dumpTool} running`);
        assert.ok(cmdlines.some(engine.secrets.sawRestore), 'the watcher saw the restoring tool running');
        for (const c of cmdlines) assert.doesNotMatch(c, new RegExp(db.password), c);
        assert.doesNotMatch(b.stdout + b.stderr + r.stdout + r.stderr, new RegExp(db.password));
      });
    });
  });
}
