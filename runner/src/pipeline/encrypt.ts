import type { KMSClient } from '@aws-sdk/client-kms';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../../lib/core/errors';
import { ManifestEncryption, manifestMacKey } from '../../../lib/core/manifest';
import { EncryptionScheme, EncryptionSpec } from '../../../lib/core/urls';
import { BackupError } from '../errors';
import { CommandSpec } from '../proc';
import { bech32Encode } from './bech32';

/**
 * Encryption is done by the `age` tool (ChaCha20-Poly1305 in 64 KiB chunks, each
 * authenticated, the last one marked, so truncation, reordering and flipped bytes are all
 * detected, and over 1 GB/s on one core). `kms:` backups are encrypted with age to a
 * per-backup X25519 identity made from 32 random bytes that KMS generates; only that identity
 * wrapped by KMS (with the backup id as encryption context) is stored in the manifest.
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
  return scheme === EncryptionScheme.NONE ? '' : '.age';
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
          await kmsClient().send(new (sdk().EncryptCommand)({ KeyId: spec.key, Plaintext: Buffer.from(identity + '\n'), EncryptionContext: context }))
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
        throw new BackupError(`KMS could not make the backup's data key with key '${spec.key}': ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
    default:
      throw new ConfigError(`encryption scheme '${spec.scheme}' is not supported`);
  }
}

function ageEncrypt(recipient: string): CommandSpec {
  return { cmd: 'age', args: ['-e', '-r', recipient] };
}

/** Decryption for a stored backup: the stage, and a cleanup that removes the key file. */
export interface PreparedDecryption {
  readonly stage?: CommandSpec;
  cleanup(): Promise<void>;
}

/**
 * Set up decryption. age: the identity file given with --identity. kms: KMS unwraps the
 * per-backup identity into a 0600 file in a private temporary directory, removed by cleanup().
 */
export async function prepareDecryption(enc: ManifestEncryption, identityFile: string | undefined, backupId: string): Promise<PreparedDecryption> {
  switch (enc.scheme) {
    case EncryptionScheme.NONE:
      return { cleanup: async () => undefined };
    case EncryptionScheme.AGE: {
      if (identityFile === undefined) {
        throw new ConfigError(`backup ${backupId} is encrypted to the age recipient ${enc.recipient}; give its identity file with --identity FILE.`);
      }
      try {
        await fs.promises.access(identityFile, fs.constants.R_OK);
      } catch {
        throw new ConfigError(`--identity '${identityFile}' cannot be read; give the age identity file (made by age-keygen) of recipient ${enc.recipient}.`);
      }
      return { stage: { cmd: 'age', args: ['-d', '-i', identityFile] }, cleanup: async () => undefined };
    }
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
          `KMS could not unwrap the key of backup ${backupId} (key ${enc.keyId}): ${(e as Error).name}: ${(e as Error).message}. The caller needs kms:Decrypt on that key.`,
        );
      }
      const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-key-'));
      const file = path.join(dir, 'identity.txt');
      await fs.promises.writeFile(file, identity, { mode: 0o600 });
      Buffer.from(identity).fill(0);
      return {
        stage: { cmd: 'age', args: ['-d', '-i', file] },
        cleanup: () => fs.promises.rm(dir, { recursive: true, force: true }),
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
