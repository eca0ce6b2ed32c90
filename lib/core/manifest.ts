import { BackupMethod, BackupType, Compression, Engine, MANIFEST_VERSION, RetentionTier } from './model';
import { EncryptionScheme } from './urls';

/** The position in the database's change log that a backup is consistent at. */
export interface LogPosition {
  /** `lsn` (PostgreSQL), `binlog` (MySQL/MariaDB) or `oplog` (MongoDB). */
  readonly kind: 'lsn' | 'binlog' | 'oplog';
  /** PostgreSQL: the WAL location, e.g. `0/3000028`. */
  readonly lsn?: string;
  /** PostgreSQL: the WAL timeline. */
  readonly timeline?: number;
  /** MySQL/MariaDB: the binary log file and position. */
  readonly file?: string;
  readonly pos?: number;
  /** MariaDB: the GTID position. */
  readonly gtid?: string;
  /** MongoDB: the oplog timestamp (`{t, i}` as `t.i`). */
  readonly ts?: string;
}

/** How the stored bytes were made from the tool's output. */
export interface ManifestEncryption {
  readonly scheme: EncryptionScheme;
  /** age: the recipient the backup was encrypted to. */
  readonly recipient?: string;
  /** kms: the KMS key that wrapped the per-backup age identity. */
  readonly keyId?: string;
  /** kms: the per-backup age identity, encrypted by KMS (base64 of the CiphertextBlob). */
  readonly wrappedKey?: string;
  /** kms: the encryption context the identity was wrapped with; decryption needs the same. */
  readonly encryptionContext?: Readonly<Record<string, string>>;
  /** gpg: the recipient as given (key id, fingerprint, e-mail address or public key file). */
  readonly gpgRecipient?: string;
  /** gpg: the fingerprints of the key and its subkeys the backup was encrypted to (one of them decrypts). */
  readonly gpgFingerprints?: readonly string[];
  /** openssl: the cipher (`aes-256-ctr`) of `openssl enc`. */
  readonly cipher?: string;
  /** openssl: the key derivation, `pbkdf2-sha256`, and its iteration count. */
  readonly kdf?: string;
  readonly iterations?: number;
  /**
   * openssl: a check of the passphrase, so a wrong key file is refused before anything is read:
   * sha256 (hex) of the key and IV that PBKDF2 derives from it with `keyCheckSalt` (hex, its
   * own salt, never one of an artifact's). Guessing the passphrase from it costs what
   * guessing it from the ciphertext costs.
   */
  readonly keyCheck?: string;
  readonly keyCheckSalt?: string;
}

/** One stored object of a backup. */
export interface ManifestArtifact {
  /** The object's name inside the backup's folder. */
  readonly name: string;
  /** `database` (the dump), `globals` (roles, grants), `wal`, `binlog`, `oplog`. */
  readonly role: string;
  /** What the tool wrote: `pg_dump-custom`, `sql`, `pg_basebackup-tar`, `mongodump-archive`, … */
  readonly format: string;
  /** Size of the stored bytes. */
  readonly size: number;
  /** sha256 (hex) of the stored bytes. */
  readonly sha256: string;
  /** Size of the tool's output before compression and encryption. */
  readonly rawSize?: number;
}

/** Row counts per table recorded at backup time, so a restore drill can check what it got. */
export interface TableStat {
  readonly schema: string;
  readonly name: string;
  readonly rows: number;
}

/** The manifest: written last, its presence commits the backup. */
export interface Manifest {
  readonly version: number;
  readonly id: string;
  readonly engine: Engine;
  readonly database: string;
  /** The identifier used in metrics and lock names. */
  readonly databaseId: string;
  readonly source: { readonly host?: string; readonly port: number; readonly user?: string };
  readonly serverVersion: string;
  readonly tools: Readonly<Record<string, string>>;
  readonly type: BackupType;
  readonly method: BackupMethod;
  /** The backup this one depends on (incremental: the previous; differential: the last full). */
  readonly parent?: string;
  /** The full backup at the start of this one's chain. */
  readonly base?: string;
  readonly tier: RetentionTier;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly position?: LogPosition;
  /** The log position this backup starts from (incremental/differential). */
  readonly startPosition?: LogPosition;
  readonly pipeline: {
    readonly compression: Compression;
    readonly encryption: ManifestEncryption;
  };
  readonly artifacts: readonly ManifestArtifact[];
  readonly tables?: readonly TableStat[];
  /** Things a person should know about this backup (e.g. globals that could not be read). */
  readonly warnings?: readonly string[];
  /** How to restore it with standard tools, for a person without this program. */
  readonly manualRestore?: readonly string[];
}

/** A manifest that cannot be read. */
export class ManifestError extends Error {
  public readonly name = 'ManifestError';
}

/** Parse and check a manifest; throws `ManifestError` naming what is wrong. */
export function parseManifest(text: string, where = 'manifest.json'): Manifest {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`${where} is not JSON: ${(e as Error).message}`);
  }
  const need = (cond: boolean, what: string) => {
    if (!cond) throw new ManifestError(`${where}: ${what}`);
  };
  need(typeof m === 'object' && m !== null, 'is not an object');
  need(typeof m.version === 'number', 'has no version');
  need((m.version as number) <= MANIFEST_VERSION, `has version ${m.version}, newer than this program reads (${MANIFEST_VERSION}); upgrade dbbackup`);
  need(typeof m.id === 'string' && /^[A-Za-z0-9._-]+$/.test(m.id as string), 'has no valid id');
  need(Object.values(Engine).includes(m.engine as Engine), `has an unknown engine '${m.engine}'`);
  need(Object.values(BackupType).includes(m.type as BackupType), `has an unknown type '${m.type}'`);
  need(typeof m.startedAt === 'string' && !isNaN(Date.parse(m.startedAt as string)), 'has no valid startedAt');
  need(typeof m.endedAt === 'string' && !isNaN(Date.parse(m.endedAt as string)), 'has no valid endedAt');
  const p = m.pipeline as Manifest['pipeline'] | undefined;
  need(typeof p === 'object' && p !== null, 'has no pipeline');
  need(Object.values(Compression).includes(p!.compression), `has an unknown compression '${p!.compression}'`);
  need(typeof p!.encryption === 'object' && Object.values(EncryptionScheme).includes(p!.encryption.scheme), 'has no valid encryption scheme');
  need(Array.isArray(m.artifacts) && (m.artifacts as unknown[]).length > 0, 'lists no artifacts');
  for (const a of m.artifacts as ManifestArtifact[]) {
    need(typeof a.name === 'string' && /^[A-Za-z0-9._-]+$/.test(a.name), `has an artifact with an invalid name '${a.name}'`);
    need(Number.isInteger(a.size) && a.size >= 0, `artifact ${a.name} has no valid size`);
    need(typeof a.sha256 === 'string' && /^[0-9a-f]{64}$/.test(a.sha256), `artifact ${a.name} has no valid sha256`);
  }
  return m as unknown as Manifest;
}
