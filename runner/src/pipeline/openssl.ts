/**
 * `openssl:` encryption: `openssl enc -aes-256-ctr`, its key and IV derived by PBKDF2
 * (HMAC-SHA256, OPENSSL_PBKDF2_ITERATIONS) from the passphrase on the first line of a key file
 * (read by openssl itself: `-pass file:KEYFILE`, never argv) and a fresh random salt that
 * openssl makes for every object and stores in its `Salted__` header.
 *
 * CTR rather than CBC: both are unauthenticated, so integrity rests on the manifest's sha256
 * of the stored bytes, checked before the end of an object reaches the database, either way.
 * CTR needs no padding (a stream of any length), is several times faster than CBC encryption
 * (which cannot be parallelised), and CBC's padding check at the end adds nothing the hash does
 * not already catch. CTR is safe only with a key and IV never used twice: every object gets its
 * own salt, hence its own key and IV (the runner never passes -S).
 *
 * openssl enc cannot tell a wrong passphrase (CTR decrypts anything to something), so the
 * manifest records a key check (see ManifestEncryption.keyCheck), compared before reading.
 */
import * as crypto from 'node:crypto';
import { ConfigError } from '../../../lib/core/errors';
import { ManifestEncryption } from '../../../lib/core/manifest';
import { EncryptionScheme, OPENSSL_PBKDF2_ITERATIONS, opensslKeyFile } from '../../../lib/core/urls';
import { BackupError } from '../errors';
import { capture, CommandSpec } from '../proc';

export const OPENSSL_CIPHER = 'aes-256-ctr';

function encArgs(keyFile: string, iterations: number): string[] {
  const kdf = ['-pbkdf2', '-iter', String(iterations), '-md', 'sha256'];
  return ['enc', `-${OPENSSL_CIPHER}`, ...kdf, '-pass', `file:${keyFile}`];
}

/** sha256 of the key and IV PBKDF2 derives from the key file's passphrase and `salt` (`openssl enc -P`). */
async function keyCheckOf(keyFile: string, salt: string, iterations: number): Promise<string> {
  let out: string;
  try {
    out = await capture({ cmd: 'openssl', args: [...encArgs(keyFile, iterations), '-S', salt, '-P'] });
  } catch (e) {
    throw new ConfigError(`openssl cannot derive a key from the key file ${keyFile}: ${(e as Error).message}`);
  }
  const key = /^key\s*=\s*([0-9A-F]+)$/m.exec(out)?.[1];
  const iv = /^iv\s*=\s*([0-9A-F]+)$/m.exec(out)?.[1];
  if (key === undefined || iv === undefined) throw new BackupError('openssl enc -P printed no key and IV');
  return crypto.createHash('sha256').update(`${key}:${iv}`).digest('hex');
}

/** Encryption with the key file: the stage and what the manifest records. */
export async function opensslEncryption(
  keyFile: string,
): Promise<{ stage: CommandSpec; manifest: ManifestEncryption }> {
  const iterations = OPENSSL_PBKDF2_ITERATIONS;
  const keyCheckSalt = crypto.randomBytes(8).toString('hex');
  return {
    stage: { cmd: 'openssl', args: [...encArgs(keyFile, iterations), '-salt'], label: 'openssl' },
    manifest: {
      scheme: EncryptionScheme.OPENSSL,
      cipher: OPENSSL_CIPHER,
      kdf: 'pbkdf2-sha256',
      iterations,
      keyCheck: await keyCheckOf(keyFile, keyCheckSalt, iterations),
      keyCheckSalt,
    },
  };
}

/**
 * Decryption with the key file given with --identity: checked (a private regular file) and,
 * when the manifest has a key check, matched against it before anything is read.
 */
export async function opensslDecryption(
  enc: ManifestEncryption,
  identityFile: string | undefined,
  backupId: string,
): Promise<CommandSpec> {
  if (identityFile === undefined) {
    throw new ConfigError(
      `backup ${backupId} is encrypted with openssl enc (${enc.cipher ?? OPENSSL_CIPHER}); ` +
        'give its key file with --identity FILE.',
    );
  }
  const file = opensslKeyFile(identityFile);
  if (enc.cipher !== undefined && enc.cipher !== OPENSSL_CIPHER) {
    throw new ConfigError(
      `backup ${backupId} is encrypted with openssl cipher ${enc.cipher}, which this version does not read.`,
    );
  }
  const iterations = enc.iterations ?? OPENSSL_PBKDF2_ITERATIONS;
  if (enc.keyCheck !== undefined && enc.keyCheckSalt !== undefined) {
    if ((await keyCheckOf(file, enc.keyCheckSalt, iterations)) !== enc.keyCheck) {
      throw new ConfigError(
        `--identity '${identityFile}' is not the key file backup ${backupId} was encrypted with ` +
          '(openssl: its passphrase ' +
          'does not give the key the manifest records); give the key file the backup was made with.',
      );
    }
  }
  return { cmd: 'openssl', args: [...encArgs(file, iterations), '-d'], label: 'openssl' };
}

/** The shell command a person decrypts with (from stdin to stdout); KEYFILE stands for the key file. */
export function manualOpensslDecrypt(iterations = OPENSSL_PBKDF2_ITERATIONS): string {
  return `openssl enc -d -${OPENSSL_CIPHER} -pbkdf2 -iter ${iterations} -md sha256 -pass file:KEYFILE`;
}
