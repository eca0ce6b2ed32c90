import type { KMSClient } from '@aws-sdk/client-kms';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { ConfigError } from '../../../lib/core/errors';
import { ManifestEncryption, manifestMacKey } from '../../../lib/core/manifest';
import { ENCRYPTION_EXT, EncryptionScheme, EncryptionSpec } from '../../../lib/core/urls';
import { BackupError } from '../errors';
import { CommandSpec } from './stages';
import { bech32Decode, bech32Encode } from './bech32';
import { gpgDecryption, gpgEncryption } from './gpg';
import { opensslDecryption, opensslEncryption } from './openssl';

/**
 * Encryption is done by the `age` tool (ChaCha20-Poly1305 in 64 KiB chunks, each
 * authenticated, the last one marked, so truncation, reordering and flipped bytes are all
 * detected, and over 1 GB/s on one core). `kms:` backups are encrypted with age to a
 * per-backup X25519 identity made from 32 random bytes that KMS generates; only that identity
 * wrapped by KMS (with the backup id as encryption context) is stored in the manifest.
 *
 * `gpg:` (gpg.ts) and `openssl:` (openssl.ts) are there for teams with a GnuPG key ring or an
 * OpenSSL key-file policy; age and kms: remain the better choice (see docs/runner.md).
 */

/** The KMS SDK, loaded on first use (it costs startup time that other backups need not pay). */
function sdk(): typeof import('@aws-sdk/client-kms') {
  return require('@aws-sdk/client-kms') as typeof import('@aws-sdk/client-kms');
}

let kms: KMSClient | undefined;
function kmsClient(): KMSClient {
  const { KMSClient } = sdk();
  kms ??= new KMSClient({
    endpoint: process.env.AWS_ENDPOINT_URL_KMS ?? process.env.AWS_ENDPOINT_URL,
    region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    maxAttempts: 4,
  });
  return kms;
}

/** The extension added to encrypted artifacts. */
export function encryptionExt(scheme: EncryptionScheme): string {
  return ENCRYPTION_EXT[scheme];
}

/** The age identity (`AGE-SECRET-KEY-1…`) and recipient (`age1…`) of a 32-byte X25519 secret. */
export function ageKeyPair(secret: Buffer): { identity: string; recipient: string } {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), secret]);
  const priv = crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const spki = crypto.createPublicKey(priv).export({ format: 'der', type: 'spki' }) as Buffer;
  return {
    identity: bech32Encode('age-secret-key-', secret).toUpperCase(),
    recipient: bech32Encode('age', spki.subarray(spki.length - 32)),
  };
}

/** Ready-to-use encryption for one backup: the stage to add and what the manifest records. */
export interface PreparedEncryption {
  readonly stage?: CommandSpec;
  readonly manifest: ManifestEncryption;
  /** kms: the key of the manifest's HMAC, derived from the per-backup secret (see manifestMacKey). */
  readonly macKey?: Buffer;
}

/** Set up encryption for a backup (for kms: generate and wrap its key). */
export async function prepareEncryption(spec: EncryptionSpec, backupId: string): Promise<PreparedEncryption> {
  switch (spec.scheme) {
    case EncryptionScheme.NONE:
      return { manifest: { scheme: EncryptionScheme.NONE } };
    case EncryptionScheme.AGE:
      return { stage: ageEncrypt(spec.key), manifest: { scheme: EncryptionScheme.AGE, recipient: spec.key } };
    case EncryptionScheme.KMS: {
      const context = { 'dbbackup-backup-id': backupId };
      let random: Uint8Array;
      let wrapped: Uint8Array;
      try {
        random = (await kmsClient().send(new (sdk().GenerateRandomCommand)({ NumberOfBytes: 32 }))).Plaintext!;
        const { identity, recipient } = ageKeyPair(Buffer.from(random));
        wrapped = (
          await kmsClient().send(
            new (sdk().EncryptCommand)({
              KeyId: spec.key,
              Plaintext: Buffer.from(identity + '\n'),
              EncryptionContext: context,
            }),
          )
        ).CiphertextBlob!;
        return {
          stage: ageEncrypt(recipient),
          macKey: manifestMacKey(Buffer.from(identity + '\n'), backupId),
          manifest: {
            scheme: EncryptionScheme.KMS,
            keyId: spec.key,
            recipient,
            wrappedKey: Buffer.from(wrapped).toString('base64'),
            encryptionContext: context,
          },
        };
      } catch (e) {
        throw new BackupError(
          `KMS could not make the backup's data key with key '${spec.key}': ${(e as Error).name}: ` +
            `${(e as Error).message}`,
        );
      }
    }
    case EncryptionScheme.GPG:
      return gpgEncryption(spec.key);
    case EncryptionScheme.OPENSSL:
      return opensslEncryption(spec.key);
    default:
      throw new ConfigError(`encryption scheme '${spec.scheme}' is not supported`);
  }
}

function ageEncrypt(recipient: string): CommandSpec {
  return { cmd: 'age', args: ['-e', '-r', recipient] };
}

/** Decryption for a stored backup: the stage, and a cleanup that lets go of the key. */
export interface PreparedDecryption {
  readonly stage?: CommandSpec;
  cleanup(): Promise<void>;
}

/** What an `--identity` file must hold: one line that age reads as an identity. */
const IDENTITY_LINE = /^(AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}|AGE-PLUGIN-[A-Z0-9-]+1[02-9AC-HJ-NP-Z]+)$/;

/**
 * Check that `file` is an age identity file: a readable regular file with at least one
 * identity (`AGE-SECRET-KEY-1…` with a valid checksum, or a plugin identity) and nothing
 * else than comments, or an OpenSSH private key, or a passphrase-protected identity file.
 * Throws ConfigError naming the file and what is wrong; never echoes the file's content.
 */
export async function checkIdentityFile(file: string, recipient?: string): Promise<void> {
  const forWhat = recipient !== undefined ? ` of recipient ${recipient}` : '';
  const fix = `give the age identity file (made by age-keygen; the lines AGE-SECRET-KEY-1…)${forWhat}`;
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch (e) {
    throw new ConfigError(`--identity '${file}' cannot be read (${(e as NodeJS.ErrnoException).code}); ${fix}.`);
  }
  if (!stat.isFile()) {
    const kind = stat.isDirectory() ? 'a directory' : 'not a regular file';
    throw new ConfigError(`--identity '${file}' is ${kind}; ${fix}.`);
  }
  if (stat.size > 1 << 20) {
    throw new ConfigError(`--identity '${file}' has ${stat.size} bytes, too many for an identity file; ${fix}.`);
  }
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`--identity '${file}' cannot be read (${(e as NodeJS.ErrnoException).code}); ${fix}.`);
  }
  const first = text.trimStart();
  if (/^-----BEGIN (OPENSSH|RSA) PRIVATE KEY-----/.test(first)) return;
  if (first.startsWith('age-encryption.org/v1\n') || first.startsWith('-----BEGIN AGE ENCRYPTED FILE-----')) return;
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) {
    throw new ConfigError(`--identity '${file}' holds no identity (it is empty or only comments); ${fix}.`);
  }
  for (const [i, line] of lines.entries()) {
    if (/^age1[0-9a-z]+$/.test(line) || /^ssh-(ed25519|rsa) /.test(line)) {
      throw new ConfigError(
        `--identity '${file}' holds a recipient (a public key), not an identity; ${fix}. ` +
          'The recipient goes in --encrypt age:… when backing up.',
      );
    }
    const decoded = IDENTITY_LINE.test(line) ? bech32Decode(line) : undefined;
    if (decoded === undefined || (line.startsWith('AGE-SECRET-KEY-1') && decoded.data.length !== 32)) {
      throw new ConfigError(
        `--identity '${file}' is not an age identity (line ${i + 1} of its keys is not an AGE-SECRET-KEY-1… line, ` +
          `or its checksum does not match); ${fix}.`,
      );
    }
  }
}

/** A file that lives only in memory: no name, freed when its last descriptor closes (or the process dies). */
async function memoryFile(content: Uint8Array): Promise<number> {
  // O_TMPFILE (Linux): an unnamed inode in a directory's file system; /dev/shm keeps it in RAM.
  const O_TMPFILE = 0o20000000 | fs.constants.O_DIRECTORY;
  for (const dir of ['/dev/shm', os.tmpdir()]) {
    let fd: number;
    try {
      fd = fs.openSync(dir, O_TMPFILE | fs.constants.O_RDWR, 0o600);
    } catch {
      continue;
    }
    try {
      fs.writeSync(fd, content);
      return fd;
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }
  throw new BackupError(
    'cannot hold the unwrapped kms: key in memory (this system has no O_TMPFILE in /dev/shm or the ' +
      'temporary directory); run the restore on Linux.',
  );
}

/**
 * Set up decryption. age: the identity file given with --identity, checked first. kms: KMS
 * unwraps the per-backup identity, which is handed to age as its descriptor 3 (an unnamed
 * in-memory file read as /dev/fd/3): it is never written to a named file, so nothing of it
 * outlives the process, even one killed with SIGKILL. cleanup() closes the descriptor.
 */
export async function prepareDecryption(
  enc: ManifestEncryption,
  identityFile: string | undefined,
  backupId: string,
): Promise<PreparedDecryption> {
  switch (enc.scheme) {
    case EncryptionScheme.NONE:
      return { cleanup: async () => undefined };
    case EncryptionScheme.AGE: {
      if (identityFile === undefined) {
        throw new ConfigError(
          `backup ${backupId} is encrypted to the age recipient ${enc.recipient}; give its identity file with ` +
            '--identity FILE.',
        );
      }
      await checkIdentityFile(identityFile, enc.recipient);
      return { stage: { cmd: 'age', args: ['-d', '-i', identityFile] }, cleanup: async () => undefined };
    }
    case EncryptionScheme.GPG:
      return gpgDecryption(enc, identityFile, backupId);
    case EncryptionScheme.OPENSSL:
      return { stage: await opensslDecryption(enc, identityFile, backupId), cleanup: async () => undefined };
    case EncryptionScheme.KMS: {
      let identity: Uint8Array;
      try {
        identity = (
          await kmsClient().send(
            new (sdk().DecryptCommand)({
              CiphertextBlob: Buffer.from(enc.wrappedKey ?? '', 'base64'),
              KeyId: enc.keyId,
              EncryptionContext: enc.encryptionContext as Record<string, string> | undefined,
            }),
          )
        ).Plaintext!;
      } catch (e) {
        throw new BackupError(
          `KMS could not unwrap the key of backup ${backupId} (key ${enc.keyId}): ${(e as Error).name}: ` +
            `${(e as Error).message}. The caller needs kms:Decrypt on that key.`,
        );
      }
      let fd: number;
      try {
        fd = await memoryFile(identity);
      } finally {
        identity.fill(0);
      }
      let open = true;
      return {
        stage: { cmd: 'age', args: ['-d', '-i', '/dev/fd/3'], fds: [fd] },
        cleanup: async () => {
          if (open) fs.closeSync(fd);
          open = false;
        },
      };
    }
    default:
      throw new ConfigError(`encryption scheme '${enc.scheme}' is not supported`);
  }
}

/**
 * The manifest MAC key of a kms: backup: KMS unwraps the per-backup secret the manifest
 * records, and HKDF derives the key from it. Throws BackupError (named) without kms:Decrypt.
 */
export async function kmsManifestMacKey(enc: ManifestEncryption, manifestId: string): Promise<Buffer> {
  let secret: Uint8Array;
  try {
    secret = (
      await kmsClient().send(
        new (sdk().DecryptCommand)({
          CiphertextBlob: Buffer.from(enc.wrappedKey ?? '', 'base64'),
          KeyId: enc.keyId,
          EncryptionContext: enc.encryptionContext as Record<string, string> | undefined,
        }),
      )
    ).Plaintext!;
  } catch (e) {
    const why = `${(e as Error).name}: ${(e as Error).message}`;
    throw new BackupError(`KMS could not unwrap the key of backup ${manifestId} (key ${enc.keyId}): ${why}`);
  }
  const key = manifestMacKey(secret, manifestId);
  Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength).fill(0);
  return key;
}
