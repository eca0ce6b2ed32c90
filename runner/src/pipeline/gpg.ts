/**
 * `gpg:` encryption: GnuPG (2.2 on Debian 12) encrypts to a key of the key ring in GNUPGHOME,
 * or to a public key file; the key ring in GNUPGHOME, or a secret key file given with
 * --identity, decrypts. Messages are AES256 in an integrity-protected packet (MDC): gpg 2.2.8
 * and later refuse to decrypt one without it, and report a modified one with exit 2 — after
 * writing its plaintext, which is why the read-back holds the end of the stored bytes back
 * until their sha256 matched the manifest.
 *
 * GnuPG 2.2 cannot decrypt with a secret key that is not in a key ring (the secret keys live
 * with gpg-agent, `--secret-keyring` is gone), so an --identity file is imported into a
 * temporary home: a 0700 directory in /dev/shm (memory, not disk) when there is one, removed
 * with its gpg-agent when the command ends (cleanup(), and on process exit, SIGTERM and
 * SIGINT included); only SIGKILL can leave it behind until the next reboot.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError } from '../../../lib/core/errors';
import { ManifestEncryption } from '../../../lib/core/manifest';
import { EncryptionScheme } from '../../../lib/core/urls';
import { capture, CommandSpec, versionOutput } from './stages';

/** Options of every gpg run: no terminal, no network look-ups, no keys fetched. */
const BATCH = ['--batch', '--no-tty', '--quiet', '--auto-key-locate', 'local', '--no-auto-key-retrieve'];

/** The encryption options: AES256, integrity protection required, no compression (zstd did it). */
const ENCRYPT = ['--trust-model', 'always', '--compress-algo', 'none', '--cipher-algo', 'AES256', '--force-mdc'];

/** Temporary homes still on disk: removed at exit whatever the way out. */
const homes = new Set<string>();
let exitHook = false;

function removeHome(home: string): void {
  spawnSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: home }, stdio: 'ignore', timeout: 5000 });
  fs.rmSync(home, { recursive: true, force: true });
  homes.delete(home);
}

/** A new private (0700) GnuPG home, in memory when /dev/shm exists. */
function makeHome(): string {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const h of [...homes]) removeHome(h);
    });
  }
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const home = fs.mkdtempSync(path.join(base, 'dbbackup-gnupg-'));
  fs.chmodSync(home, 0o700);
  homes.add(home);
  return home;
}

/** One key of gpg's --with-colons listing. */
interface ListedKey {
  readonly type: string;
  readonly validity: string;
  readonly capabilities: string;
  /** Field 15: '#' for a secret key that is only a stub (not available), '>' for one on a card. */
  readonly token: string;
  readonly fingerprint: string;
}

function parseColons(text: string): ListedKey[] {
  const keys: ListedKey[] = [];
  let pending: string[] | undefined;
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (['pub', 'sub', 'sec', 'ssb'].includes(f[0])) pending = f;
    else if (f[0] === 'fpr' && pending !== undefined) {
      keys.push({
        type: pending[0],
        validity: pending[1],
        capabilities: pending[11] ?? '',
        token: pending[14] ?? '',
        fingerprint: f[9],
      });
      pending = undefined;
    }
  }
  return keys;
}

/** The usable encryption keys of a listing (not expired, revoked, disabled or invalid). */
function encryptionKeys(keys: readonly ListedKey[]): string[] {
  return keys.filter((k) => k.capabilities.includes('e') && !/[erdi]/.test(k.validity)).map((k) => k.fingerprint);
}

function gnupgHomeShown(): string {
  const home = process.env.GNUPGHOME;
  return home !== undefined ? `GNUPGHOME=${home}` : `${os.homedir()}/.gnupg (GNUPGHOME is not set)`;
}

async function gpgList(args: readonly string[], env?: Record<string, string>): Promise<ListedKey[] | undefined> {
  try {
    return parseColons(await capture({ cmd: 'gpg', args: [...BATCH, '--with-colons', ...args], env }));
  } catch {
    return undefined;
  }
}

/** The keys in a key file, read without importing it (in a throwaway home). */
export async function keysInFile(file: string): Promise<ListedKey[] | undefined> {
  const home = makeHome();
  try {
    return await gpgList(['--no-keyring', '--show-keys', '--', file], { GNUPGHOME: home });
  } finally {
    removeHome(home);
  }
}

/** Whether a `gpg:` recipient is a public key file (parseEncryption made file paths absolute). */
function isFile(recipient: string): boolean {
  return recipient.startsWith('/');
}

/** Encryption to `recipient`: the stage and what the manifest records. Fails (exit 2) when gpg has no usable key. */
export async function gpgEncryption(recipient: string): Promise<{ stage: CommandSpec; manifest: ManifestEncryption }> {
  let fingerprints: string[];
  let stage: CommandSpec;
  if (isFile(recipient)) {
    const keys = await keysInFile(recipient);
    fingerprints = encryptionKeys(keys ?? []);
    if (keys === undefined || fingerprints.length === 0 || keys.filter((k) => k.type === 'pub').length !== 1) {
      const what =
        keys === undefined
          ? 'gpg cannot read it as a key'
          : 'it does not hold exactly one usable public key that can encrypt';
      throw new ConfigError(
        `--encrypt 'gpg:${recipient}': ${what}. ` +
          'Give one public key, exported with: gpg --export --armor KEY_ID > key.asc',
      );
    }
    // --recipient-file trusts the key in the file; no key ring is read or written.
    const home = makeHome();
    stage = {
      cmd: 'gpg',
      args: [...BATCH, '--no-keyring', '--no-random-seed-file', ...ENCRYPT, '--recipient-file', recipient, '--encrypt'],
      env: { GNUPGHOME: home },
    };
  } else {
    const keys = await gpgList(['--list-keys', '--', recipient]);
    const primaries = (keys ?? []).filter((k) => k.type === 'pub');
    fingerprints = encryptionKeys(keys ?? []);
    if (primaries.length > 1) {
      throw new ConfigError(
        `--encrypt 'gpg:${recipient}' matches ${primaries.length} keys in the key ring at ${gnupgHomeShown()} ` +
          `(${primaries.map((k) => k.fingerprint).join(', ')}); give the fingerprint of the one to encrypt to.`,
      );
    }
    if (fingerprints.length === 0) {
      throw new ConfigError(
        `--encrypt 'gpg:${recipient}': the key ring at ${gnupgHomeShown()} has no ` +
          `${keys?.length ? 'usable (unexpired, unrevoked) encryption ' : ''}` +
          `key for ${recipient}. Import the public key with: gpg --import key.asc, set GNUPGHOME to the key ring ` +
          `that holds it, or give the public key file: --encrypt gpg:/path/key.asc`,
      );
    }
    stage = { cmd: 'gpg', args: [...BATCH, ...ENCRYPT, '--recipient', primaries[0].fingerprint, '--encrypt'] };
  }
  return { stage, manifest: { scheme: EncryptionScheme.GPG, gpgRecipient: recipient, gpgFingerprints: fingerprints } };
}

/**
 * Check a secret key file given with --identity for a gpg: backup: gpg reads it as a key file
 * holding a secret key (`gpg --show-keys`), and, when the manifest says, one that decrypts it.
 */
export async function checkGpgIdentityFile(file: string, enc?: ManifestEncryption): Promise<void> {
  const fix = 'give the secret key file, exported with: gpg --export-secret-keys --armor KEY_ID > secret.asc';
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (e) {
    throw new ConfigError(`--identity '${file}' cannot be read (${(e as NodeJS.ErrnoException).code}); ${fix}.`);
  }
  if (!stat.isFile()) throw new ConfigError(`--identity '${file}' is not a regular file; ${fix}.`);
  const keys = await keysInFile(file);
  if (keys === undefined || keys.length === 0) {
    throw new ConfigError(`--identity '${file}': gpg --show-keys cannot read a key in it; ${fix}.`);
  }
  // (--show-keys marks every secret key '#', not in a key ring: its presence is what counts here.)
  const secret = keys.filter((k) => k.type === 'sec' || k.type === 'ssb');
  if (secret.length === 0) {
    throw new ConfigError(
      `--identity '${file}' holds a public key only (gpg --show-keys lists no secret key); ${fix}.`,
    );
  }
  const wanted = enc?.gpgFingerprints ?? [];
  if (wanted.length > 0 && !secret.some((k) => wanted.includes(k.fingerprint))) {
    throw new ConfigError(
      `--identity '${file}' holds the secret key ${secret[0].fingerprint}, but the backup is encrypted with gpg to ` +
        `${wanted.join(', ')} (recipient ${enc?.gpgRecipient}); give that key's secret key file.`,
    );
  }
}

/**
 * GnuPG before 2.2.8 decrypts a message without integrity protection (MDC) with only a
 * warning; from 2.2.8 on it refuses. Refuse to decrypt with an older gpg.
 */
async function requireMdcRefusal(): Promise<void> {
  const first = (await versionOutput('gpg').catch(() => '')).split('\n')[0];
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(first);
  const v = m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3])];
  const old = v !== undefined && (v[0] < 2 || (v[0] === 2 && (v[1] < 2 || (v[1] === 2 && v[2] < 8))));
  if (old) {
    throw new ConfigError(
      `${first.trim()} decrypts messages without integrity protection (MDC) with only a warning; ` +
        'install GnuPG 2.2.8 or newer (Debian 12: gnupg 2.2.40).',
    );
  }
}

/**
 * Decryption of a gpg: backup. With --identity, its secret key is imported into a temporary
 * home first; without, the key ring in GNUPGHOME must hold the secret key. Either way the
 * secret key is looked for before anything is read, so a missing or wrong key fails (exit 2)
 * naming gpg and the key.
 */
export async function gpgDecryption(
  enc: ManifestEncryption,
  identityFile: string | undefined,
  backupId: string,
): Promise<{ stage: CommandSpec; cleanup(): Promise<void> }> {
  await requireMdcRefusal();
  const wanted = enc.gpgFingerprints ?? [];
  const keyShown = `${wanted.join(', ') || 'an unrecorded key'} (recipient ${enc.gpgRecipient ?? 'unknown'})`;
  let home: string | undefined;
  let ring = gnupgHomeShown();
  if (identityFile !== undefined) {
    await checkGpgIdentityFile(identityFile, enc);
    home = makeHome();
    ring = `the secret key file ${identityFile}`;
    try {
      await capture({ cmd: 'gpg', args: [...BATCH, '--import', '--', identityFile], env: { GNUPGHOME: home } });
    } catch (e) {
      removeHome(home);
      const why = (e as Error).message;
      throw new ConfigError(`gpg could not import the secret key of --identity '${identityFile}': ${why}`);
    }
  }
  const env = home !== undefined ? { GNUPGHOME: home } : undefined;
  const secret = await gpgList(['--list-secret-keys'], env);
  const usable = (secret ?? []).filter((k) => k.token !== '#' && wanted.includes(k.fingerprint));
  if (wanted.length > 0 && usable.length === 0) {
    if (home !== undefined) removeHome(home);
    throw new ConfigError(
      `backup ${backupId} is encrypted with gpg to ${keyShown}, and ${ring} holds no secret key for it. ` +
        'Set GNUPGHOME to the key ring that holds it, or give its secret key file with --identity FILE ' +
        '(exported with: gpg --export-secret-keys --armor KEY_ID > secret.asc).',
    );
  }
  const dir = home;
  return {
    stage: { cmd: 'gpg', args: [...BATCH, '--decrypt'], env },
    cleanup: async () => {
      if (dir !== undefined && homes.has(dir)) removeHome(dir);
    },
  };
}

/** The shell command a person decrypts with (from stdin to stdout). */
export function manualGpgDecrypt(): string {
  return 'gpg --batch --decrypt';
}
