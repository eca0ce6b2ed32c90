// --encrypt gpg:RECIPIENT and openssl:KEYFILE against a real PostgreSQL: backups restored by
// the runner and by hand with only gpg/openssl, zstd and pg_restore; a wrong key, a missing key
// and a damaged object each fail with their exit code and leave the target as it was; archived
// WAL segments go through the same schemes.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { Compression } from '../../lib/core/model';
import { EncryptionScheme, parseEncryption } from '../../lib/core/urls';
import { pgTool } from '../../runner/src/engines/postgres/tools';
import { objectName, parseObjectKey } from '../../runner/src/archive/log-archive';
import { fingerprint, loadFixture } from '../harness/pg-fixture';
import { dbbackup } from '../harness/runner';
import { flipByte } from '../harness/damage';

const EMAIL = 'backups@example.invalid';
const OTHER = 'someone-else@example.invalid';

/** A key ring in a new 0700 home with one key (no passphrase) for `email`; its exported keys. */
function makeKeyRing(home: string, email: string): { pub: string; sec: string } {
  fs.mkdirSync(home, { mode: 0o700 });
  const env = { ...process.env, GNUPGHOME: home };
  const uid = `Backups <${email}>`;
  const generate = ['--batch', '--quiet', '--passphrase', '', '--quick-generate-key', uid];
  generate.push('future-default', 'default', 'never');
  execFileSync('gpg', generate, { env, stdio: 'ignore' });
  const pub = `${home}.pub.asc`;
  const sec = `${home}.sec.asc`;
  fs.writeFileSync(pub, execFileSync('gpg', ['--batch', '--armor', '--export', email], { env }));
  const secret = execFileSync('gpg', ['--batch', '--armor', '--export-secret-keys', email], { env });
  fs.writeFileSync(sec, secret, { mode: 0o600 });
  return { pub, sec };
}

/** The temporary GnuPG homes the runner made and has not removed. */
function leftHomes(): string[] {
  const listed = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d) : []);
  return ['/dev/shm', os.tmpdir()].flatMap((d) => listed(d).filter((f) => f.startsWith('dbbackup-gnupg-')));
}

/** Run a shell pipeline a person would type; paths come in as variables, never pasted into the text. */
function byHand(script: string, vars: Record<string, string>): void {
  const env = { ...process.env, ...vars };
  execFileSync('bash', ['-o', 'pipefail', '-c', script], { env, stdio: ['ignore', 'ignore', 'pipe'] });
}

describe('gpg: and openssl: encryption', () => {
  let pg: LocalPostgres;
  let dir: string;
  let expected: Record<string, string>;
  let home: string;
  let keys: { pub: string; sec: string };
  let other: { pub: string; sec: string };
  let otherHome: string;
  let emptyHome: string;
  let keyFile: string;
  let otherKeyFile: string;
  const homesBefore = new Set<string>();

  beforeAll(async () => {
    for (const h of leftHomes()) homesBefore.add(h);
    pg = await startLocalPostgres();
    await loadFixture(pg, 'shop', 300);
    expected = await fingerprint(pg, 'shop');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-gpgssl-'));
    home = path.join(dir, 'gnupg');
    keys = makeKeyRing(home, EMAIL);
    otherHome = path.join(dir, 'other-gnupg');
    other = makeKeyRing(otherHome, OTHER);
    emptyHome = path.join(dir, 'empty-gnupg');
    fs.mkdirSync(emptyHome, { mode: 0o700 });
    keyFile = path.join(dir, 'backup.key');
    fs.writeFileSync(keyFile, crypto.randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    otherKeyFile = path.join(dir, 'other.key');
    fs.writeFileSync(otherKeyFile, crypto.randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  });
  afterAll(async () => {
    await pg?.stop();
    for (const h of [home, otherHome, emptyHome]) {
      if (h === undefined) continue;
      execFileSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: h }, stdio: 'ignore' });
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function backupArgs(store: string, encrypt: string): string[] {
    const to = `file://${dir}/${store}`;
    return ['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', to, '--encrypt', encrypt];
  }

  async function backup(store: string, encrypt: string, env: Record<string, string> = {}) {
    const b = await dbbackup([...backupArgs(store, encrypt), '--json'], {
      env: { ...pg.env, GNUPGHOME: home, ...env },
    });
    assert.equal(b.code, 0, b.stderr);
    const manifest = JSON.parse(b.stdout);
    const file = path.join(dir, store, manifest.id, manifest.artifacts[0].name);
    return { id: manifest.id as string, file, manifest };
  }

  async function restore(store: string, target: string, args: string[], env: Record<string, string | undefined> = {}) {
    return dbbackup(['restore', '--from', `file://${dir}/${store}`, '--latest', '--target', pg.url(target), ...args], {
      env: { ...pg.env, GNUPGHOME: home, ...env },
    });
  }

  /** A database with one row that a failed restore must leave as it is. */
  async function bystander(name: string): Promise<Record<string, string>> {
    await pg.sql(`CREATE DATABASE ${name}`);
    await pg.sql(`CREATE TABLE keep_me (v text); INSERT INTO keep_me VALUES ('still here')`, name);
    return fingerprint(pg, name);
  }

  test('gpg:EMAIL: the manifest records gpg; restored with GNUPGHOME, with --identity, and by hand', async () => {
    const { file, manifest } = await backup('gpg-email', `gpg:${EMAIL}`);
    assert.match(file, /database\.pgdump\.zst\.gpg$/);
    const enc = manifest.pipeline.encryption;
    assert.equal(enc.scheme, 'gpg');
    assert.equal(enc.gpgRecipient, EMAIL);
    const fprs: string[] = enc.gpgFingerprints;
    assert.ok(fprs.length >= 1 && fprs.every((f) => /^[0-9A-F]{40}$/.test(f)), JSON.stringify(enc));
    const manual: string[] = manifest.manualRestore;
    assert.ok(
      manual.some((l) => l.includes('| gpg --batch --decrypt | zstd -d -c |')),
      manual.join('\n'),
    );
    // An OpenPGP message: a public-key encrypted session key packet first.
    const head = fs.readFileSync(file).subarray(0, 1)[0];
    assert.ok(head === 0x85 || head === 0x84 || head === 0xc1, `packet tag byte ${head.toString(16)}`);

    const v = await dbbackup(['verify', '--from', `file://${dir}/gpg-email`, '--latest', '--deep'], {
      env: { ...pg.env, GNUPGHOME: home },
    });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /ok\s+\S+ \(deep\)/);
    const r = await restore('gpg-email', 'gpg_ring', []);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await fingerprint(pg, 'gpg_ring'), expected);

    // Only the secret key file, no key ring: imported into a temporary home that is gone afterwards.
    const withFile = await restore('gpg-email', 'gpg_identity', ['--identity', keys.sec], { GNUPGHOME: emptyHome });
    assert.equal(withFile.code, 0, withFile.stderr);
    assert.deepEqual(await fingerprint(pg, 'gpg_identity'), expected);
    assert.deepEqual(
      leftHomes().filter((h) => !homesBefore.has(h)),
      [],
    );
    assert.deepEqual(
      fs.readdirSync(emptyHome).filter((f) => f.endsWith('.key') || f === 'private-keys-v1.d'),
      [],
    );

    await pg.sql('CREATE DATABASE gpg_by_hand');
    const pgRestore = '"$PG_RESTORE" --single-transaction --exit-on-error -h 127.0.0.1 -p "$PORT" -U postgres';
    byHand(`gpg --batch --decrypt < "$F" | zstd -d | ${pgRestore} -d gpg_by_hand`, {
      F: file,
      GNUPGHOME: home,
      PG_RESTORE: pgTool('pg_restore'),
      PORT: String(pg.port),
      PGPASSWORD: pg.password,
    });
    assert.deepEqual(await fingerprint(pg, 'gpg_by_hand'), expected);
  });

  test('gpg:KEYFILE: encrypted to a public key file without a key ring', async () => {
    const { file, manifest } = await backup('gpg-file', `gpg:${keys.pub}`, { GNUPGHOME: emptyHome });
    assert.equal(manifest.pipeline.encryption.gpgRecipient, keys.pub);
    const rings = fs.readdirSync(emptyHome).filter((f) => f.startsWith('pubring'));
    assert.deepEqual(rings, [], 'the key file was not imported');
    const r = await restore('gpg-file', 'gpg_file_ring', []);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await fingerprint(pg, 'gpg_file_ring'), expected);
    await pg.sql('CREATE DATABASE gpg_file_by_hand');
    const pgRestore = '"$PG_RESTORE" --single-transaction -h 127.0.0.1 -p "$PORT" -U postgres';
    byHand(`gpg --batch --decrypt < "$F" | zstd -d | ${pgRestore} -d gpg_file_by_hand`, {
      F: file,
      GNUPGHOME: home,
      PG_RESTORE: pgTool('pg_restore'),
      PORT: String(pg.port),
      PGPASSWORD: pg.password,
    });
    assert.deepEqual(await fingerprint(pg, 'gpg_file_by_hand'), expected);
  });

  test('gpg: a wrong key, a missing key and a damaged packet fail and leave the target as it was', async () => {
    const { file, manifest } = await backup('gpg-faults', `gpg:${EMAIL}`);
    const before = await bystander('gpg_faults_target');
    const fpr = manifest.pipeline.encryption.gpgFingerprints[0];

    const wrongRing = await restore('gpg-faults', 'gpg_faults_target', ['--clean'], { GNUPGHOME: otherHome });
    assert.equal(wrongRing.code, 2, wrongRing.stderr);
    assert.match(wrongRing.stderr, new RegExp(`encrypted with gpg to ${fpr}.*GNUPGHOME=${otherHome} holds no secret`));
    const missing = await restore('gpg-faults', 'gpg_faults_target', ['--clean'], { GNUPGHOME: emptyHome });
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /holds no secret key for it.*--identity FILE/);
    const withKey = (file: string) =>
      restore('gpg-faults', 'gpg_faults_target', ['--clean', '--identity', file], {
        GNUPGHOME: emptyHome,
      });
    const wrongFile = await withKey(other.sec);
    assert.equal(wrongFile.code, 2, wrongFile.stderr);
    assert.match(
      wrongFile.stderr,
      new RegExp(`holds the secret key [0-9A-F]{40}, but the backup is encrypted with gpg to ${fpr}`),
    );
    const publicOnly = await withKey(keys.pub);
    assert.equal(publicOnly.code, 2, publicOnly.stderr);
    assert.match(publicOnly.stderr, /holds a public key only \(gpg --show-keys/);
    assert.deepEqual(await fingerprint(pg, 'gpg_faults_target'), before);

    // One byte flipped in the middle of the encrypted data packet.
    const bytes = fs.readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0x10;
    fs.writeFileSync(file, bytes);
    const damaged = await restore('gpg-faults', 'gpg_faults_target', ['--clean']);
    assert.equal(damaged.code, 3, damaged.stderr);
    assert.match(damaged.stderr, /database\.pgdump\.zst\.gpg: sha256 .* does not match/);
    assert.deepEqual(await fingerprint(pg, 'gpg_faults_target'), before);
    // gpg itself refuses the modified packet (MDC), whatever the manifest says.
    assert.throws(
      () => byHand('gpg --batch --decrypt < "$F" > /dev/null', { F: file, GNUPGHOME: home }),
      /WARNING: encrypted message has been manipulated|decryption failed/,
    );
    assert.deepEqual(
      leftHomes().filter((h) => !homesBefore.has(h)),
      [],
    );
  });

  test('gpg: a recipient the key ring does not have is refused before the backup starts', async () => {
    const b = await dbbackup(backupArgs('gpg-none', `gpg:${OTHER}`), { env: { ...pg.env, GNUPGHOME: home } });
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr, new RegExp(`key ring at GNUPGHOME=${home} has no key for ${OTHER}.*gpg --import`));
    const none = path.join(dir, 'gpg-none');
    assert.equal(fs.existsSync(none) && fs.readdirSync(none).length > 0, false);
    const bad = await dbbackup(backupArgs('gpg-none', 'gpg:not a key'), { env: pg.env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /'not a key' as the recipient, which is neither a key id/);
  });

  test('openssl:KEYFILE: salted AES-256-CTR; restored with --identity and by hand', async () => {
    const { file, manifest } = await backup('ssl', `openssl:${keyFile}`);
    assert.match(file, /database\.pgdump\.zst\.enc$/);
    const enc = manifest.pipeline.encryption;
    assert.deepEqual(
      { scheme: enc.scheme, cipher: enc.cipher, kdf: enc.kdf, iterations: enc.iterations },
      { scheme: 'openssl', cipher: 'aes-256-ctr', kdf: 'pbkdf2-sha256', iterations: 100000 },
    );
    assert.match(enc.keyCheck, /^[0-9a-f]{64}$/);
    const passphrase = fs.readFileSync(keyFile, 'utf8').trim();
    assert.ok(!JSON.stringify(manifest).includes(passphrase), 'the passphrase is not in the manifest');
    const stored = fs.readFileSync(file);
    assert.equal(stored.subarray(0, 8).toString('latin1'), 'Salted__');
    // A fresh salt per object: the globals artifact has its own.
    const globals = fs.readFileSync(path.join(path.dirname(file), manifest.artifacts[1].name));
    assert.notDeepEqual(globals.subarray(8, 16), stored.subarray(8, 16));

    const v = await dbbackup(['verify', '--from', `file://${dir}/ssl`, '--latest', '--deep', '--identity', keyFile], {
      env: pg.env,
    });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /ok\s+\S+ \(deep\)/);
    const r = await restore('ssl', 'ssl_restored', ['--identity', keyFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await fingerprint(pg, 'ssl_restored'), expected);

    const manual = manifest.manualRestore.find((l: string) => l.includes('openssl enc -d'));
    assert.match(manual, /\| openssl enc -d -aes-256-ctr -pbkdf2 -iter 100000 -md sha256 -pass file:KEYFILE \| zstd/);
    await pg.sql('CREATE DATABASE ssl_by_hand');
    byHand(
      'openssl enc -d -aes-256-ctr -pbkdf2 -iter 100000 -md sha256 -pass file:"$KEY" < "$F" | zstd -d | ' +
        '"$PG_RESTORE" --single-transaction --exit-on-error -h 127.0.0.1 -p "$PORT" -U postgres -d ssl_by_hand',
      { F: file, KEY: keyFile, PG_RESTORE: pgTool('pg_restore'), PORT: String(pg.port), PGPASSWORD: pg.password },
    );
    assert.deepEqual(await fingerprint(pg, 'ssl_by_hand'), expected);
  });

  test('openssl: a wrong key, a missing key, a damaged object and a readable key file fail cleanly', async () => {
    const { file } = await backup('ssl-faults', `openssl:${keyFile}`);
    const before = await bystander('ssl_faults_target');
    const wrong = await restore('ssl-faults', 'ssl_faults_target', ['--clean', '--identity', otherKeyFile]);
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /is not the key file backup .* was encrypted with \(openssl/);
    const missing = await restore('ssl-faults', 'ssl_faults_target', ['--clean']);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /encrypted with openssl enc \(aes-256-ctr\); give its key file with --identity FILE/);

    const readable = path.join(dir, 'readable.key');
    fs.copyFileSync(keyFile, readable);
    fs.chmodSync(readable, 0o644);
    const refusedRestore = await restore('ssl-faults', 'ssl_faults_target', ['--clean', '--identity', readable]);
    assert.equal(refusedRestore.code, 2, refusedRestore.stderr);
    assert.match(refusedRestore.stderr, /has mode 0644, so others than its owner can read it; make it private with/);
    const refusedBackup = await dbbackup(backupArgs('ssl-readable', `openssl:${readable}`), { env: pg.env });
    assert.equal(refusedBackup.code, 2, refusedBackup.stderr);
    const named = `--encrypt 'openssl:${readable}': the key file ${readable} has mode 0644`;
    assert.ok(refusedBackup.stderr.includes(named), refusedBackup.stderr);
    assert.equal(fs.existsSync(path.join(dir, 'ssl-readable')), false);
    assert.deepEqual(await fingerprint(pg, 'ssl_faults_target'), before);

    // CTR turns a flipped ciphertext bit into the same flipped plaintext bit: only the sha256 catches it.
    flipByte(file);
    const damaged = await restore('ssl-faults', 'ssl_faults_target', ['--clean', '--identity', keyFile]);
    assert.equal(damaged.code, 3, damaged.stderr);
    assert.match(damaged.stderr, /database\.pgdump\.zst\.enc: sha256 .* does not match/);
    assert.deepEqual(await fingerprint(pg, 'ssl_faults_target'), before);
  });

  test('gpg: the temporary home of an --identity key is removed when the restore is stopped by SIGTERM', async () => {
    await backup('gpg-term', `gpg:${EMAIL}`);
    let pid: number | undefined;
    let sawHome = false;
    let done = false;
    const watcher = (async () => {
      while (!done) {
        const mine = leftHomes().filter((h) => !homesBefore.has(h));
        // The decryption home: the key is imported (gpg-agent wrote it); the preflight's own home has no key.
        const imported = mine.some((h) => {
          const keysDir = path.join('/dev/shm', h, 'private-keys-v1.d');
          return fs.existsSync(keysDir) && fs.readdirSync(keysDir).length > 0;
        });
        if (imported && pid !== undefined) {
          sawHome = true;
          process.kill(pid, 'SIGTERM');
          return;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const from = `file://${dir}/gpg-term`;
    const args = ['--from', from, '--latest', '--target', pg.url('gpg_term'), '--identity', keys.sec];
    const r = await dbbackup(['restore', ...args], {
      env: { ...pg.env, GNUPGHOME: emptyHome },
      onSpawn: (p) => (pid = p),
    });
    done = true;
    await watcher;
    assert.ok(sawHome, 'the watcher saw the imported key in the temporary home');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /interrupted by SIGTERM/);
    assert.deepEqual(
      leftHomes().filter((h) => !homesBefore.has(h)),
      [],
    );
  });

  test('archived log objects name their scheme: .gpg and .enc round-trip through the object name', () => {
    for (const [encryption, ext] of [
      [EncryptionScheme.GPG, '.gpg'],
      [EncryptionScheme.OPENSSL, '.enc'],
    ] as const) {
      const written = new Date('2026-12-01T00:00:00Z');
      const name = objectName({ sha256: 'a'.repeat(64), size: 42, written, compression: Compression.ZSTD, encryption });
      assert.ok(name.endsWith(`.zst${ext}`), name);
      const o = parseObjectKey({ key: `wal/00000001/000000010000000000000001/${name}`, size: 10 }, 'wal');
      assert.equal(o?.encryption, encryption);
      assert.equal(o?.compression, Compression.ZSTD);
    }
  });

  test('--encrypt values: gpg key ids, fingerprints and e-mails pass; bad files and modes are refused', () => {
    assert.equal(parseEncryption('gpg:0x883CB8A4A8ADCCCB').key, '0x883CB8A4A8ADCCCB');
    assert.equal(parseEncryption('gpg:4C65B23C9A92B4E83BAF848F883CB8A4A8ADCCCB').scheme, EncryptionScheme.GPG);
    assert.equal(parseEncryption(`gpg:${EMAIL}`).key, EMAIL);
    assert.equal(parseEncryption(`gpg:${keys.pub}`).key, keys.pub);
    assert.throws(() => parseEncryption(`gpg:${dir}/missing.asc`), /key file .*missing\.asc cannot be read \(ENOENT\)/);
    assert.throws(() => parseEncryption('gpg:'), /names nothing as the recipient/);
    assert.equal(parseEncryption(`openssl:${keyFile}`).key, keyFile);
    assert.throws(() => parseEncryption(`openssl:${dir}`), /is not a regular file/);
    assert.throws(() => parseEncryption(`openssl:${dir}/nope.key`), /cannot be read \(ENOENT\)/);
    const empty = path.join(dir, 'empty.key');
    fs.writeFileSync(empty, '', { mode: 0o600 });
    assert.throws(() => parseEncryption(`openssl:${empty}`), /is empty/);
    const groupReadable = path.join(dir, 'group.key');
    fs.writeFileSync(groupReadable, 'x\n', { mode: 0o640 });
    fs.chmodSync(groupReadable, 0o640);
    assert.throws(() => parseEncryption(`openssl:${groupReadable}`), /has mode 0640.*chmod 600/);
    fs.chmodSync(groupReadable, 0o400);
    assert.equal(parseEncryption(`openssl:${groupReadable}`).scheme, EncryptionScheme.OPENSSL);
  });

  for (const scheme of ['gpg', 'openssl'] as const) {
    test(`wal-push and wal-fetch of a segment with ${scheme}:`, async () => {
      const segment = Buffer.alloc(16 * 1024 * 1024);
      crypto.randomFillSync(segment, 0, 1024 * 1024);
      const walDir = path.join(dir, `wal-${scheme}`, 'pg_wal');
      fs.mkdirSync(walDir, { recursive: true });
      const name = '000000010000000000000003';
      fs.writeFileSync(path.join(walDir, name), segment);
      const store = `file://${dir}/wal-${scheme}/archive`;
      const encrypt = scheme === 'gpg' ? `gpg:${EMAIL}` : `openssl:${keyFile}`;
      const p = await dbbackup(['wal-push', path.join(walDir, name), '--to', store, '--encrypt', encrypt], {
        env: { GNUPGHOME: home },
      });
      assert.equal(p.code, 0, p.stderr);
      const folder = path.join(dir, `wal-${scheme}`, 'archive', 'wal', '00000001', name);
      const [object] = fs.readdirSync(folder);
      assert.match(object, new RegExp(`\\.zst\\.${scheme === 'gpg' ? 'gpg' : 'enc'}$`));
      const zstdMagic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
      assert.notDeepEqual(fs.readFileSync(path.join(folder, object)).subarray(0, 4), zstdMagic, 'not plain zstd');

      const dest = path.join(dir, `wal-${scheme}`, 'fetched');
      const identity = scheme === 'gpg' ? ['--identity', keys.sec] : ['--identity', keyFile];
      const fetch = (to: string, args: string[], gnupgHome: string) =>
        dbbackup(['wal-fetch', name, to, '--from', store, ...args], { env: { GNUPGHOME: gnupgHome } });
      const f = await fetch(dest, identity, emptyHome);
      assert.equal(f.code, 0, f.stderr);
      assert.ok(fs.readFileSync(dest).equals(segment));
      if (scheme === 'gpg') {
        const ring = await fetch(`${dest}.ring`, [], home);
        assert.equal(ring.code, 0, ring.stderr);
        assert.ok(fs.readFileSync(`${dest}.ring`).equals(segment));
      }
      // The wrong key never produces the file PostgreSQL would replay.
      const wrong = scheme === 'gpg' ? ['--identity', other.sec] : ['--identity', otherKeyFile];
      const w = await fetch(`${dest}.wrong`, wrong, emptyHome);
      assert.notEqual(w.code, 0, w.stderr);
      assert.equal(fs.existsSync(`${dest}.wrong`), false);
      assert.deepEqual(
        leftHomes().filter((h) => !homesBefore.has(h)),
        [],
      );
    });
  }
});
