// binlog-stream archives with --encrypt gpg: and openssl: against real MariaDB servers: the
// shipped binary logs are stored encrypted (.gpg / .enc) and a restore to a noted moment reads
// them back with --identity (the GnuPG secret key file, the OpenSSL key file).
import * as assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { DBBACKUP, dbbackup } from '../harness/runner';

const STATE = `SELECT CONCAT(COUNT(*), ':', GROUP_CONCAT(CONCAT(id, '=', v) ORDER BY id SEPARATOR ','))
  FROM accounts`;
const EMAIL = 'binlogs@example.invalid';
/** JSON logs, and closed binary log parts uploaded every second. */
const SHIPPER_ENV = { DBBACKUP_LOG_FORMAT: 'json', DBBACKUP_BINLOG_UPLOAD_INTERVAL: '1' };

async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 150));
}

/** Every file under `dir`, relative to it. */
function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)).map((f) => `${e.name}/${f}`) : [e.name]));
}

describe('binlog-stream with gpg: and openssl:', () => {
  let src: LocalMariaDB;
  let tgt: LocalMariaDB;
  let dir: string;
  let home: string;
  let secretKey: string;
  let keyFile: string;

  beforeAll(async () => {
    [src, tgt] = await Promise.all([startLocalMariaDB(), startLocalMariaDB()]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-gpgssl-binlog-'));
    home = path.join(dir, 'gnupg');
    fs.mkdirSync(home, { mode: 0o700 });
    const env = { ...process.env, GNUPGHOME: home };
    const generate = ['--batch', '--quiet', '--passphrase', '', '--quick-generate-key', `Binlogs <${EMAIL}>`];
    execFileSync('gpg', [...generate, 'future-default', 'default', 'never'], { env, stdio: 'ignore' });
    secretKey = path.join(dir, 'secret.asc');
    fs.writeFileSync(secretKey, execFileSync('gpg', ['--batch', '--armor', '--export-secret-keys', EMAIL], { env }), {
      mode: 0o600,
    });
    keyFile = path.join(dir, 'binlog.key');
    fs.writeFileSync(keyFile, crypto.randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  });
  afterAll(async () => {
    await Promise.all([src?.stop(), tgt?.stop()]);
    if (home !== undefined) {
      execFileSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: home }, stdio: 'ignore' });
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const scheme of ['gpg', 'openssl'] as const) {
    test(`${scheme}: shipped binary logs are stored encrypted and replayed to a moment`, async () => {
      const database = `app_${scheme}`;
      const store = path.join(dir, `store-${scheme}`);
      const url = `file://${store}`;
      const encrypt = scheme === 'gpg' ? `gpg:${EMAIL}` : `openssl:${keyFile}`;
      const identity = scheme === 'gpg' ? secretKey : keyFile;
      await src.sql(`CREATE DATABASE ${database}`);
      await src.sql(`CREATE TABLE ${database}.accounts (id INT PRIMARY KEY, v VARCHAR(50))`);
      await src.sql(`INSERT INTO accounts VALUES (1, 'a'), (2, 'b')`, database);

      let log = '';
      const streamArgs = ['binlog-stream', '--source', src.url(database), '--to', url, '--encrypt', encrypt];
      const shipper: ChildProcess = spawn(process.execPath, [DBBACKUP, ...streamArgs], {
        env: { ...process.env, ...src.env, GNUPGHOME: home, ...SHIPPER_ENV },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      shipper.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      shipper.stdout!.resume();
      try {
        const backupArgs = ['backup', '--engine', 'mysql', '--source', src.url(database), '--to', url];
        backupArgs.push('--encrypt', encrypt);
        const b = await dbbackup([...backupArgs, '--json'], { env: { ...src.env, GNUPGHOME: home } });
        assert.equal(b.code, 0, b.stderr);
        await src.sql(`INSERT INTO accounts VALUES (3, 'c'); UPDATE accounts SET v = 'changed' WHERE id = 1`, database);
        await nextSecond();
        const moment = new Date();
        const expected = await src.sql(STATE, database);
        await nextSecond();
        await src.sql(`DELETE FROM accounts WHERE id = 2; INSERT INTO accounts VALUES (4, 'too late')`, database);
        const shippedFile = path.join(store, 'binlog', 'binlog', 'shipped.json');
        const asked = Date.now();
        for (let i = 0; i < 300; i++) {
          const at = fs.existsSync(shippedFile) ? Date.parse(JSON.parse(fs.readFileSync(shippedFile, 'utf8')).at) : 0;
          if (at > asked) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const objects = walk(path.join(store, 'binlog')).filter((f) => !f.endsWith('.json'));
        assert.ok(objects.length > 0, log.slice(-3000));
        const ext = scheme === 'gpg' ? '.gpg' : '.enc';
        assert.ok(
          objects.every((f) => f.endsWith(`.zst${ext}`)),
          objects.join('\n'),
        );

        const target = `restored_${scheme}`;
        const restoreArgs = ['--from', url, '--to-time', moment.toISOString(), '--identity', identity];
        const r = await dbbackup(['restore', ...restoreArgs, '--target', tgt.url(target)], {
          env: { DBBACKUP_TARGET_PASSWORD: tgt.password, GNUPGHOME: path.join(dir, 'no-such-home') },
        });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await tgt.sql(STATE, target), expected);
      } finally {
        shipper.kill('SIGTERM');
        await new Promise((r) => shipper.once('close', r));
      }
    });
  }
});
