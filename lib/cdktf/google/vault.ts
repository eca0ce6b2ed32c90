import { Annotations, Token } from 'cdktf';
import { Construct } from 'constructs';
// biome-ignore format: one specifier and a long module path; on one line it is over 120 characters
import {
  DataGoogleStorageProjectServiceAccount,
} from '@cdktf/provider-google/lib/data-google-storage-project-service-account';
import { KmsCryptoKey } from '@cdktf/provider-google/lib/kms-crypto-key';
import { KmsCryptoKeyIamMember } from '@cdktf/provider-google/lib/kms-crypto-key-iam-member';
import { KmsKeyRing } from '@cdktf/provider-google/lib/kms-key-ring';
import { StorageBucket, StorageBucketLifecycleRule } from '@cdktf/provider-google/lib/storage-bucket';
import {
  ConfigError,
  Retention,
  tierPrefix,
  validateLockRetention,
  validateLockDays,
  validateStoragePrefix,
} from '../../core';
import { Duration } from '../common/duration';
import { kmsLocation } from './private/names';
import { IBucketRef, ICryptoKeyRef } from './refs';

// GCS lifecycle conditions cannot match object metadata, so the tier is a folder:
// `<prefix>/<tier>/<backup id>/…` (lib/core/layout `tierPrefix`).

/** Where backups are kept on Google Cloud. */
export interface IBackupVault {
  readonly bucketName: string;
  /** The bucket's location (`EUROPE-WEST1`, `EU`, …). */
  readonly location: string;
  /**
   * Keep the backups of a database stored under `prefix` for `retention`: adds the lifecycle
   * rules that expire `<prefix>/<tier>/…` (a vault made elsewhere only warns which rules it needs).
   */
  addBackupPrefix(prefix: string, retention?: Retention): void;
  /**
   * Delete the objects under a log archive prefix (`<prefix>/wal/`, `<prefix>/binlog/`) once they
   * are `days` old (`logArchiveExpiry` in lib/core says how many). Returns false where the
   * bucket's lifecycle is not this app's (an existing bucket).
   */
  addLogArchiveExpiry(logPrefix: string, days: number): boolean;
}

/** A retention policy on the bucket (write-once for `period`). */
export interface RetentionLockOptions {
  /** No object can be deleted or replaced before it is this old. */
  readonly period: Duration;
  /**
   * Lock the policy: it can then never be removed or shortened, and the bucket cannot be
   * deleted while it holds objects. Irreversible.
   * @default false
   */
  readonly locked?: boolean;
}

/** A bucket made elsewhere, for `BackupVault.fromExisting`. */
export interface BackupVaultAttributes {
  readonly bucket: IBucketRef;
}

/** Properties of a `BackupVault`. */
export interface BackupVaultProps {
  /** The bucket's globally unique name. */
  readonly bucketName: string;
  /** A region (`europe-west1`) or multi-region (`EU`). */
  readonly location: string;
  /** @default - the provider's project */
  readonly project?: string;
  /**
   * Retention of the backups added with `addBackupPrefix` without one of their own.
   * @default Retention.gfs()
   */
  readonly retention?: Retention;
  /**
   * The Cloud KMS key that encrypts the bucket (CMEK); it must be in the bucket's location.
   * @default - a new key ring and key with rotation
   */
  readonly key?: ICryptoKeyRef;
  /**
   * How often a new key rotates.
   * @default Duration.days(90)
   */
  readonly keyRotation?: Duration;
  /**
   * A bucket retention policy. GCS does not allow it together with Object Versioning, so a
   * vault with a retention lock is not versioned: the policy protects the objects instead.
   * @default - none (versioning on)
   */
  readonly retentionLock?: RetentionLockOptions;
  /**
   * How long a noncurrent version is kept (versioned vaults).
   * @default Duration.days(7)
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * When unfinished multipart uploads are aborted.
   * @default Duration.days(2)
   */
  readonly abortIncompleteUploadsAfter?: Duration;
  /** @default false */
  readonly forceDestroy?: boolean;
  /** @default - none */
  readonly labels?: Record<string, string>;
}

/**
 * The Cloud Storage side of the backup system: a bucket with uniform bucket-level access,
 * public access prevention enforced, versioning (or a retention lock), CMEK with a rotating
 * Cloud KMS key the GCS service agent may use, and lifecycle rules per database and tier.
 */
export class BackupVault extends Construct implements IBackupVault {
  /** Use a bucket made elsewhere (its encryption and lifecycle are its owner's). */
  public static fromExisting(scope: Construct, id: string, attrs: BackupVaultAttributes): IBackupVault {
    return new ExistingVault(scope, id, attrs.bucket);
  }

  public readonly bucket: StorageBucket;
  public readonly keyRing?: KmsKeyRing;
  public readonly key?: KmsCryptoKey;
  /** The CMEK key's id. */
  public readonly keyId: string;
  public readonly bucketName: string;
  public readonly location: string;
  public readonly retention: Retention;
  private readonly prefixes = new Map<string, Retention>();
  private readonly logRules = new Map<string, number>();
  private readonly housekeeping: StorageBucketLifecycleRule[];

  constructor(scope: Construct, id: string, props: BackupVaultProps) {
    super(scope, id);
    this.retention = props.retention ?? Retention.gfs();
    this.location = props.location;
    if (!Token.isUnresolved(props.bucketName) && !/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(props.bucketName)) {
      throw new ConfigError(
        `bucketName '${props.bucketName}' is not a valid bucket name; use 3 to 63 lower-case ` +
          `letters, digits, '-', '_' and '.', starting and ending with a letter or digit.`,
      );
    }
    const lockDays = props.retentionLock?.period.toDays();
    if (lockDays !== undefined) {
      validateLockDays(lockDays, 'retentionLock.period');
      validateLockRetention(lockDays, this.retention, 'retentionLock.period');
    }

    if (props.key === undefined) {
      if (Token.isUnresolved(props.location)) {
        throw new ConfigError(
          'location is a token, so the key ring cannot be put in the same ' +
            'location; give a literal location or bring a key.',
        );
      }
      // Cloud KMS names take letters, digits, '_' and '-' (a bucket name may also have dots).
      const keyName = Token.isUnresolved(props.bucketName) ? props.bucketName : props.bucketName.replace(/\./g, '-');
      this.keyRing = new KmsKeyRing(this, 'KeyRing', {
        name: `${keyName}-keys`,
        location: kmsLocation(props.location),
        project: props.project,
      });
      this.key = new KmsCryptoKey(this, 'Key', {
        name: keyName,
        keyRing: this.keyRing.id,
        purpose: 'ENCRYPT_DECRYPT',
        rotationPeriod: `${(props.keyRotation ?? Duration.days(90)).toSeconds()}s`,
        versionTemplate: { algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION', protectionLevel: 'SOFTWARE' },
        labels: props.labels,
        // Destroying the key destroys every backup it encrypts.
        lifecycle: { preventDestroy: true },
      });
    }
    this.keyId = props.key?.id ?? this.key!.id;

    // The GCS service agent encrypts and decrypts with the key on the bucket's behalf.
    const agent = new DataGoogleStorageProjectServiceAccount(this, 'StorageAgent', { project: props.project });
    const keyGrant = new KmsCryptoKeyIamMember(this, 'StorageAgentUsesKey', {
      cryptoKeyId: this.keyId,
      role: 'roles/cloudkms.cryptoKeyEncrypterDecrypter',
      member: `serviceAccount:${agent.emailAddress}`,
    });

    const versioned = props.retentionLock === undefined;
    this.housekeeping = [
      {
        action: { type: 'AbortIncompleteMultipartUpload' },
        condition: { age: Math.max(1, (props.abortIncompleteUploadsAfter ?? Duration.days(2)).toDays()) },
      },
    ];
    if (versioned) {
      this.housekeeping.push({
        action: { type: 'Delete' },
        condition: {
          withState: 'ARCHIVED',
          daysSinceNoncurrentTime: Math.max(1, (props.noncurrentVersionExpiration ?? Duration.days(7)).toDays()),
        },
      });
    }

    this.bucket = new StorageBucket(this, 'Resource', {
      name: props.bucketName,
      location: props.location,
      project: props.project,
      storageClass: 'STANDARD',
      uniformBucketLevelAccess: true,
      publicAccessPrevention: 'enforced',
      versioning: { enabled: versioned },
      encryption: { defaultKmsKeyName: this.keyId },
      retentionPolicy:
        props.retentionLock === undefined
          ? undefined
          : { retentionPeriod: props.retentionLock.period.toSeconds(), isLocked: props.retentionLock.locked ?? false },
      lifecycleRule: this.housekeeping,
      forceDestroy: props.forceDestroy ?? false,
      labels: props.labels,
      dependsOn: [keyGrant],
    });
    this.bucketName = this.bucket.name;
  }

  public addBackupPrefix(prefix: string, retention?: Retention): void {
    if (Token.isUnresolved(prefix))
      throw new ConfigError('a backup prefix must be a literal string: the lifecycle rules are built from it.');
    validateStoragePrefix(prefix);
    const existing = this.prefixes.get(prefix);
    if (existing !== undefined && existing !== (retention ?? this.retention)) {
      throw new ConfigError(
        `prefix '${prefix}' is already in this vault with another retention; give each database its own prefix.`,
      );
    }
    for (const other of this.prefixes.keys()) {
      if (
        other !== prefix &&
        (other.startsWith(`${prefix}/`) || prefix.startsWith(`${other}/`) || other === '' || prefix === '')
      ) {
        throw new ConfigError(
          `prefix '${prefix}' overlaps prefix '${other}' in this vault, so one database's lifecycle rules ` +
            `would expire the other's backups; use side-by-side prefixes such as 'orders' and 'billing'.`,
        );
      }
    }
    this.prefixes.set(prefix, retention ?? this.retention);
    this.bucket.putLifecycleRule([...this.tierRules(), ...this.logArchiveRules(), ...this.housekeeping]);
  }

  public addLogArchiveExpiry(logPrefix: string, days: number): boolean {
    if (Token.isUnresolved(logPrefix))
      throw new ConfigError('a log archive prefix must be a literal string: the lifecycle rules are built from it.');
    const known = this.logRules.get(logPrefix);
    if (known !== undefined && known !== days) {
      throw new ConfigError(
        `the log archive ${logPrefix} already expires after ${known} ` +
          `days, not ${days}; give each database its own prefix.`,
      );
    }
    this.logRules.set(logPrefix, days);
    this.bucket.putLifecycleRule([...this.tierRules(), ...this.logArchiveRules(), ...this.housekeeping]);
    return true;
  }

  /** One Delete rule per log lifetime, matching every log archive prefix kept that long (logs carry no tier). */
  private logArchiveRules(): StorageBucketLifecycleRule[] {
    const byDays = new Map<number, string[]>();
    for (const [prefix, days] of this.logRules) byDays.set(days, [...(byDays.get(days) ?? []), prefix]);
    return [...byDays.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([days, prefixes]) => ({
        action: { type: 'Delete' },
        condition: { age: days, withState: 'LIVE', matchesPrefix: prefixes.sort() },
      }));
  }

  /** One Delete rule per (tier, lifetime), matching the tier folders of every prefix kept that long. */
  private tierRules(): StorageBucketLifecycleRule[] {
    const byRule = new Map<string, { days: number; prefixes: string[] }>();
    for (const [prefix, retention] of this.prefixes) {
      for (const t of retention.lifetimes) {
        const key = `${t.days}`;
        const entry = byRule.get(key) ?? { days: t.days, prefixes: [] };
        entry.prefixes.push(tierPrefix(prefix, t.tier));
        byRule.set(key, entry);
      }
    }
    return [...byRule.values()]
      .sort((a, b) => a.days - b.days)
      .map((r) => ({
        action: { type: 'Delete' },
        condition: { age: r.days, withState: 'LIVE', matchesPrefix: r.prefixes.sort() },
      }));
  }
}

class ExistingVault extends Construct implements IBackupVault {
  public readonly bucketName: string;
  public readonly location: string;

  constructor(scope: Construct, id: string, bucket: IBucketRef) {
    super(scope, id);
    this.bucketName = bucket.name;
    this.location = bucket.location;
  }

  public addBackupPrefix(prefix: string, retention: Retention = Retention.gfs()): void {
    validateStoragePrefix(prefix);
    const rules = retention.lifetimes.map(
      (t) => `Delete at age ${t.days} days matching prefix '${tierPrefix(prefix, t.tier)}'`,
    );
    Annotations.of(this).addWarning(
      `The bucket is managed elsewhere: its owner must add these lifecycle rules for the ` +
        `backups under '${prefix}': ${rules.join('; ')}. Without them nothing expires.`,
    );
  }

  public addLogArchiveExpiry(logPrefix: string, days: number): boolean {
    Annotations.of(this).addWarning(
      `The bucket is managed elsewhere: its owner must add a lifecycle rule Delete at age ${days}` +
        ` days matching prefix '${logPrefix}', or the log archive is kept for ever.`,
    );
    return false;
  }
}
