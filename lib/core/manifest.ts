import * as crypto from 'node:crypto';
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
  /** The row count is the planner's estimate (`--row-counts estimate`): drills check the table is there. */
  readonly estimated?: boolean;
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
  /**
   * The replication lag of a replica source, measured before and after the dump (backup
   * --max-replica-lag); absent for a primary or when no limit was given.
   */
  readonly replicaLag?: {
    readonly beforeSeconds: number;
    readonly afterSeconds: number;
    readonly maxSeconds: number;
  };
  /** Things a person should know about this backup (e.g. globals that could not be read). */
  readonly warnings?: readonly string[];
  /** How to restore it with standard tools, for a person without this program. */
  readonly manualRestore?: readonly string[];
  /** The manifest's digest of itself (version 2 on); see `manifestDigest`. */
  readonly digest?: ManifestDigest;
}

/**
 * A manifest's digest of its own content: the canonical JSON of the manifest without this
 * field (keys sorted, no whitespace). `sha256` catches any changed field; `hmacSha256`
 * (kms: backups) is keyed by `manifestMacKey`, so only a holder of kms:Decrypt can make it.
 */
export interface ManifestDigest {
  readonly sha256: string;
  readonly hmacSha256?: string;
}

/** The first manifest version that carries a digest; older manifests read with a warning. */
export const FIRST_DIGEST_VERSION = 2;

/** JSON with object keys sorted at every level and no whitespace; `undefined` members are left out. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort();
    const members = keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The bytes a digest covers: the manifest without its `digest`. */
function digestInput(m: object): Buffer {
  const { digest: _, ...rest } = m as Record<string, unknown>;
  void _;
  return Buffer.from(canonicalJson(rest), 'utf8');
}

/**
 * The MAC key of a kms: backup's manifest: HKDF-SHA256 of the per-backup secret that KMS
 * wraps (the age identity), salted with the backup id, so no one without kms:Decrypt can forge it.
 */
export function manifestMacKey(secret: Uint8Array, backupId: string): Buffer {
  const info = Buffer.from('dbbackup manifest mac v1', 'utf8');
  return Buffer.from(crypto.hkdfSync('sha256', secret, Buffer.from(backupId, 'utf8'), info, 32));
}

/** The digest of a manifest (with an HMAC when `macKey` is given). */
export function manifestDigest(m: object, macKey?: Buffer): ManifestDigest {
  const input = digestInput(m);
  const sha256 = crypto.createHash('sha256').update(input).digest('hex');
  if (macKey === undefined) return { sha256 };
  return { sha256, hmacSha256: crypto.createHmac('sha256', macKey).update(input).digest('hex') };
}

/** Whether a manifest's HMAC is the one `macKey` makes (constant-time compare). */
export function manifestMacMatches(m: Manifest, macKey: Buffer): boolean {
  const want = manifestDigest(m, macKey).hmacSha256!;
  const got = m.digest?.hmacSha256 ?? '';
  return got.length === want.length && crypto.timingSafeEqual(Buffer.from(got), Buffer.from(want));
}

/**
 * The expected-encryption policy (`--require-encryption SCHEME`, the constructs' vault scheme):
 * a manifest that says it is not encrypted with SCHEME, or that is not a version with a digest
 * (1), or a kms: manifest without the HMAC of its digest, is refused. Without the policy, write
 * access to the bucket alone could replace a kms: backup by a plain forged one that verifies.
 * Whether the HMAC matches needs KMS; the runner and the verification function check that
 * next. Returns why the manifest is refused, or undefined.
 */
export function encryptionPolicyViolation(m: Manifest, required: EncryptionScheme): string | undefined {
  const found = m.pipeline.encryption.scheme;
  if (found !== required) {
    return (
      `is encrypted with '${found}', not '${required}' as required (--require-encryption ${required}): ` +
      'a manifest anyone with write access to the storage could have written'
    );
  }
  if (m.version < FIRST_DIGEST_VERSION) {
    return (
      `is manifest version ${m.version}, without the digest ${required === EncryptionScheme.KMS ? 'and HMAC ' : ''}` +
      `that --require-encryption ${required} needs (version ${FIRST_DIGEST_VERSION} or newer)`
    );
  }
  if (required === EncryptionScheme.KMS && !/^[0-9a-f]{64}$/.test(m.digest?.hmacSha256 ?? '')) {
    return 'is a kms: manifest without the HMAC of its digest';
  }
  return undefined;
}

/** An artifact or backup name that is safe as one path component: no `.`, `..`, separators or NUL. */
export function isSafeName(name: unknown): boolean {
  if (typeof name !== 'string' || name.length > 255 || name === '.' || name === '..') return false;
  return /^[A-Za-z0-9._-]+$/.test(name);
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
  need(
    (m.version as number) <= MANIFEST_VERSION,
    `has version ${m.version}, newer than this program reads (${MANIFEST_VERSION}); upgrade dbbackup`,
  );
  need(isSafeName(m.id), `has no valid id (${JSON.stringify(m.id)})`);
  need(Object.values(Engine).includes(m.engine as Engine), `has an unknown engine '${m.engine}'`);
  need(Object.values(BackupType).includes(m.type as BackupType), `has an unknown type '${m.type}'`);
  need(typeof m.startedAt === 'string' && !Number.isNaN(Date.parse(m.startedAt as string)), 'has no valid startedAt');
  need(typeof m.endedAt === 'string' && !Number.isNaN(Date.parse(m.endedAt as string)), 'has no valid endedAt');
  const p = m.pipeline as Manifest['pipeline'] | undefined;
  need(typeof p === 'object' && p !== null, 'has no pipeline');
  need(Object.values(Compression).includes(p!.compression), `has an unknown compression '${p!.compression}'`);
  need(
    typeof p!.encryption === 'object' && Object.values(EncryptionScheme).includes(p!.encryption.scheme),
    'has no valid encryption scheme',
  );
  need(Array.isArray(m.artifacts) && (m.artifacts as unknown[]).length > 0, 'lists no artifacts');
  const names = new Set<string>();
  for (const a of m.artifacts as ManifestArtifact[]) {
    need(typeof a === 'object' && a !== null, 'has an artifact that is not an object');
    need(
      isSafeName(a.name),
      `has an artifact with an invalid name ${JSON.stringify(a.name)} ` +
        "(a name is one path component: no '.', '..', separators or NUL)",
    );
    need(!names.has(a.name), `lists the artifact ${a.name} twice`);
    names.add(a.name);
    need(Number.isInteger(a.size) && a.size >= 0, `artifact ${a.name} has no valid size`);
    need(typeof a.sha256 === 'string' && /^[0-9a-f]{64}$/.test(a.sha256), `artifact ${a.name} has no valid sha256`);
  }
  need(
    m.warnings === undefined || (Array.isArray(m.warnings) && m.warnings.every((w) => typeof w === 'string')),
    'has warnings that are not a list of strings',
  );
  if ((m.version as number) >= FIRST_DIGEST_VERSION) {
    const d = m.digest as ManifestDigest | undefined;
    const hasDigest = typeof d === 'object' && d !== null && typeof d.sha256 === 'string';
    need(hasDigest, 'has no digest (every version 2 manifest carries one)');
    need(d!.sha256 === manifestDigest(m).sha256, 'does not match its digest: a field was changed after it was written');
    if (p!.encryption.scheme === EncryptionScheme.KMS) {
      const hasMac = typeof d!.hmacSha256 === 'string' && /^[0-9a-f]{64}$/.test(d!.hmacSha256);
      need(hasMac, 'is a kms: backup without the HMAC of its digest');
    }
  }
  return m as unknown as Manifest;
}
