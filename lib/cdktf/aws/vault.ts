import { Annotations, Token } from 'cdktf';
import { Construct } from 'constructs';
import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket';
import {
  S3BucketLifecycleConfiguration,
  S3BucketLifecycleConfigurationRule,
} from '@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration';
import { S3BucketLoggingA } from '@cdktf/provider-aws/lib/s3-bucket-logging';
import { S3BucketNotification } from '@cdktf/provider-aws/lib/s3-bucket-notification';
import { S3BucketObjectLockConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-object-lock-configuration';
import { S3BucketOwnershipControls } from '@cdktf/provider-aws/lib/s3-bucket-ownership-controls';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block';
// biome-ignore format: one specifier and a long module path; on one line it is over 120 characters
import {
  S3BucketServerSideEncryptionConfigurationA,
} from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration';
import { S3BucketVersioningA } from '@cdktf/provider-aws/lib/s3-bucket-versioning';
import { ConfigError, Retention, TIER_TAG_KEY, validateLockRetention, validateLockDays } from '../../core';
import { Duration } from '../common/duration';
import { awsContext } from './private/context';
import { policyDocument } from './private/policy';
import { IBucketRef, IKeyRef } from './refs';
import { VaultReplication, type VaultReplicationOptions } from './replication';

/** Where backups are kept: a bucket and the KMS key that encrypts it. */
export interface IBackupVault {
  readonly bucketName: string;
  readonly bucketArn: string;
  /** The ARN of the key that encrypts the bucket (SSE-KMS). */
  readonly keyArn: string;
}

/** How S3 Object Lock holds each new object version. */
export enum ObjectLockMode {
  /** Users with `s3:BypassGovernanceRetention` can still delete; everyone else cannot. */
  GOVERNANCE = 'GOVERNANCE',
  /** Nobody, including the root user, can delete a version before its retention ends. */
  COMPLIANCE = 'COMPLIANCE',
}

/** S3 Object Lock default retention. */
export interface ObjectLockOptions {
  readonly mode: ObjectLockMode;
  /** How long each new object version is locked (whole days). */
  readonly retention: Duration;
}

/** Where a vault's S3 server access logs go. */
export interface VaultAccessLogs {
  /** The bucket the logs are written to (it must allow the S3 logging service to write). */
  readonly bucket: IBucketRef;
  /** @default - no prefix */
  readonly prefix?: string;
}

/** A bucket and key made elsewhere, for `BackupVault.fromExisting`. */
export interface BackupVaultAttributes {
  readonly bucket: IBucketRef;
  readonly key: IKeyRef;
}

/** Properties of a `BackupVault`. */
export interface BackupVaultProps {
  /**
   * The bucket's name.
   * @default - a unique name that Terraform makes from `bucketPrefix`
   */
  readonly bucketName?: string;
  /**
   * The start of the generated bucket name (at most 37 characters), when `bucketName` is not given.
   * @default 'dbbackup-'
   */
  readonly bucketPrefix?: string;
  /**
   * How long each retention tier's backups live: one lifecycle rule per tier matches the
   * objects tagged `dbbackup-tier=<tier>` by the runner.
   * @default Retention.gfs()
   */
  readonly retention?: Retention;
  /**
   * The key that encrypts the bucket (SSE-KMS with an S3 bucket key).
   * @default - a new customer-managed KMS key with yearly rotation
   */
  readonly key?: IKeyRef;
  /**
   * Lock every new object version (S3 Object Lock). Enabling it later replaces the bucket.
   * @default - no Object Lock
   */
  readonly objectLock?: ObjectLockOptions;
  /**
   * How long a version stays after it became noncurrent (expired by its tier or overwritten),
   * a window to recover from a mistake.
   * @default Duration.days(7)
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * When an unfinished multipart upload (an interrupted backup) is removed.
   * @default Duration.days(2)
   */
  readonly abortIncompleteUploadsAfter?: Duration;
  /**
   * Let `terraform destroy` delete a bucket that still holds backups.
   * @default false
   */
  readonly forceDestroy?: boolean;
  /**
   * Write S3 server access logs of the vault into this bucket (which must allow the S3
   * logging service to write to it).
   * @default - no access logs
   */
  readonly serverAccessLogs?: VaultAccessLogs;
  /**
   * Send the bucket's object events to EventBridge (the verifier is triggered by them).
   * @default true
   */
  readonly eventBridge?: boolean;
  /** @default - none */
  readonly tags?: Record<string, string>;
  /**
   * A second failure domain: replicate every backup object (SSE-KMS, with its tier tag) to a
   * bucket in another region and/or account, with replication metrics and alarms.
   * @default - no replication
   */
  readonly replication?: VaultReplicationOptions;
}

/**
 * The S3 side of the backup system: a versioned bucket encrypted with a rotating KMS key, no
 * public access, TLS-only and KMS-only writes, one lifecycle rule per retention tier, optional
 * Object Lock. Nothing here deletes backups except the lifecycle rules.
 */
export class BackupVault extends Construct implements IBackupVault {
  /** Use a bucket and key made elsewhere (their lifecycle, policy and encryption are theirs). */
  public static fromExisting(scope: Construct, id: string, attrs: BackupVaultAttributes): IBackupVault {
    return new ExistingVault(scope, id, attrs);
  }

  public readonly bucket: S3Bucket;
  /** The new key, when none was given. */
  public readonly key?: KmsKey;
  public readonly bucketName: string;
  public readonly bucketArn: string;
  public readonly keyArn: string;
  public readonly retention: Retention;
  public readonly lifecycle: S3BucketLifecycleConfiguration;
  private readonly rules: S3BucketLifecycleConfigurationRule[];
  private readonly logRules = new Map<string, number>();
  public readonly policy: S3BucketPolicy;
  /** Whether new object versions are locked (S3 Object Lock). */
  public readonly objectLockEnabled: boolean;
  /** The replication to the second failure domain, when `replication` is set. */
  public readonly replication?: VaultReplication;

  constructor(scope: Construct, id: string, props: BackupVaultProps = {}) {
    super(scope, id);
    const ctx = awsContext(this);
    this.retention = props.retention ?? Retention.gfs();
    const prefix = props.bucketPrefix ?? 'dbbackup-';
    if (props.bucketName === undefined && !Token.isUnresolved(prefix) && prefix.length > 37) {
      throw new ConfigError(
        `bucketPrefix '${prefix}' is ${prefix.length} characters long; S3 ` +
          `allows at most 37. Shorten it or give bucketName.`,
      );
    }
    const lockDays = props.objectLock?.retention.toDays();
    if (lockDays !== undefined) {
      validateLockDays(lockDays, 'objectLock.retention');
      validateLockRetention(lockDays, this.retention, 'objectLock.retention');
    }

    if (props.key === undefined) {
      this.key = new KmsKey(this, 'Key', {
        description: 'db-backup-constructs: encrypts the backup bucket',
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        policy: policyDocument([
          {
            Sid: 'AccountAdministers',
            Effect: 'Allow',
            Principal: { AWS: `arn:${ctx.partition}:iam::${ctx.accountId}:root` },
            Action: 'kms:*',
            Resource: '*',
          },
        ]),
        tags: props.tags,
      });
      new KmsAlias(this, 'KeyAlias', { namePrefix: 'alias/dbbackup-vault-', targetKeyId: this.key.keyId });
    }
    this.keyArn = props.key?.arn ?? this.key!.arn;

    this.bucket = new S3Bucket(this, 'Resource', {
      bucket: props.bucketName,
      bucketPrefix: props.bucketName === undefined ? prefix : undefined,
      forceDestroy: props.forceDestroy ?? false,
      objectLockEnabled: props.objectLock !== undefined ? true : undefined,
      tags: props.tags,
    });
    this.bucketName = this.bucket.bucket;
    this.bucketArn = this.bucket.arn;

    new S3BucketOwnershipControls(this, 'Ownership', {
      bucket: this.bucket.id,
      rule: { objectOwnership: 'BucketOwnerEnforced' },
    });
    new S3BucketPublicAccessBlock(this, 'PublicAccessBlock', {
      bucket: this.bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    const versioning = new S3BucketVersioningA(this, 'Versioning', {
      bucket: this.bucket.id,
      versioningConfiguration: { status: 'Enabled' },
    });
    new S3BucketServerSideEncryptionConfigurationA(this, 'Encryption', {
      bucket: this.bucket.id,
      rule: [
        {
          applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: this.keyArn },
          bucketKeyEnabled: true,
          blockedEncryptionTypes: ['SSE-C'],
        },
      ],
    });

    // Deny what must never happen, for every principal. The encryption conditions use
    // ...IfExists / Null so that requests without the header pass: UploadPart never carries
    // it, and a PutObject without it gets the bucket's default SSE-KMS encryption.
    const objects = `${this.bucket.arn}/*`;
    this.policy = new S3BucketPolicy(this, 'Policy', {
      bucket: this.bucket.id,
      policy: policyDocument([
        {
          Sid: 'DenyInsecureTransport',
          Effect: 'Deny',
          Principal: '*',
          Action: 's3:*',
          Resource: [this.bucket.arn, objects],
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        },
        {
          Sid: 'DenyOldTls',
          Effect: 'Deny',
          Principal: '*',
          Action: 's3:*',
          Resource: [this.bucket.arn, objects],
          Condition: { NumericLessThan: { 's3:TlsVersion': '1.2' } },
        },
        {
          Sid: 'DenyWritesNotEncryptedWithKms',
          Effect: 'Deny',
          Principal: '*',
          Action: 's3:PutObject',
          Resource: objects,
          Condition: { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption': 'aws:kms' } },
        },
        {
          Sid: 'DenyWritesWithAnotherKey',
          Effect: 'Deny',
          Principal: '*',
          Action: 's3:PutObject',
          Resource: objects,
          Condition: { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption-aws-kms-key-id': this.keyArn } },
        },
        {
          Sid: 'DenyCustomerProvidedKeys',
          Effect: 'Deny',
          Principal: '*',
          Action: 's3:PutObject',
          Resource: objects,
          Condition: { Null: { 's3:x-amz-server-side-encryption-customer-algorithm': 'false' } },
        },
      ]),
    });

    const rules: S3BucketLifecycleConfigurationRule[] = this.retention.lifetimes.map((t) => ({
      id: `expire-${t.tier}`,
      status: 'Enabled',
      filter: [{ tag: [{ key: TIER_TAG_KEY, value: t.tier }] }],
      expiration: [{ days: t.days }],
    }));
    this.rules = rules;
    rules.push({
      id: 'housekeeping',
      status: 'Enabled',
      filter: [{ prefix: '' }],
      abortIncompleteMultipartUpload: [
        { daysAfterInitiation: Math.max(1, (props.abortIncompleteUploadsAfter ?? Duration.days(2)).toDays()) },
      ],
      noncurrentVersionExpiration: [
        { noncurrentDays: Math.max(1, (props.noncurrentVersionExpiration ?? Duration.days(7)).toDays()) },
      ],
      expiration: [{ expiredObjectDeleteMarker: true }],
    });
    this.lifecycle = new S3BucketLifecycleConfiguration(this, 'Lifecycle', {
      bucket: this.bucket.id,
      rule: rules,
      dependsOn: [versioning],
    });

    if (props.objectLock !== undefined) {
      new S3BucketObjectLockConfigurationA(this, 'ObjectLock', {
        bucket: this.bucket.id,
        rule: { defaultRetention: { mode: props.objectLock.mode, days: lockDays } },
        dependsOn: [versioning],
      });
    }
    this.objectLockEnabled = props.objectLock !== undefined;
    if (props.replication !== undefined) {
      this.replication = this.replicate(props.replication, versioning, props.tags);
    }
    if (props.serverAccessLogs !== undefined) {
      new S3BucketLoggingA(this, 'AccessLogs', {
        bucket: this.bucket.id,
        targetBucket: props.serverAccessLogs.bucket.bucket,
        targetPrefix: props.serverAccessLogs.prefix ?? 'dbbackup-vault/',
      });
    }
    if (props.eventBridge ?? true) {
      new S3BucketNotification(this, 'Notifications', { bucket: this.bucket.id, eventbridge: true });
    }
  }

  private replicate(
    options: VaultReplicationOptions,
    versioning: S3BucketVersioningA,
    tags: Record<string, string> | undefined,
  ): VaultReplication {
    const dest = options.destination;
    if (dest instanceof BackupVault) {
      // The replica keeps the backups as long as this vault does: the same tier rules, from the
      // same retention (lib/core), and the same Object Lock.
      if (dest.retention.tierDaysSetting !== this.retention.tierDaysSetting) {
        throw new ConfigError(
          `replication.destination keeps tiers ` +
            `${dest.retention.tierDaysSetting}, this vault ${this.retention.tierDaysSetting}; ` +
            'give the replica vault the same retention, so replicas expire with their originals.',
        );
      }
      if (this.objectLockEnabled && !dest.objectLockEnabled) {
        throw new ConfigError(
          'replication.destination has no Object Lock, but this vault has; S3 replicates an Object Lock bucket only ' +
            'to one with Object Lock enabled. Give the replica vault the same objectLock.',
        );
      }
    } else if (this.objectLockEnabled) {
      Annotations.of(this).addWarning(
        'The vault has Object Lock, so S3 replicates only to a destination bucket with Object Lock enabled; ' +
          "make sure the destination's owner enabled it (replicas keep each backup's retain-until date).",
      );
    }
    return new VaultReplication(this, 'Replication', {
      ...options,
      tags: options.tags ?? tags,
      sourceBucketName: this.bucketName,
      sourceBucketArn: this.bucketArn,
      sourceKeyArn: this.keyArn,
      dependsOn: [versioning],
    });
  }

  /**
   * Expire the objects under a log archive prefix (`<prefix>/wal/`, `<prefix>/binlog/`) after
   * `days` days (`logArchiveExpiry` in lib/core says how many): log objects carry no tier tag,
   * so no tier rule reaches them. One rule per prefix.
   */
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
    if (known !== undefined) return true;
    this.logRules.set(logPrefix, days);
    const rule: S3BucketLifecycleConfigurationRule = {
      id: `expire-logs-${logPrefix.replace(/\/$/, '').replace(/[^A-Za-z0-9-]/g, '-')}`,
      status: 'Enabled',
      filter: [{ prefix: logPrefix }],
      expiration: [{ days }],
    };
    // Before the housekeeping rule, which stays last.
    this.rules.splice(this.rules.length - 1, 0, rule);
    this.lifecycle.putRule(this.rules);
    return true;
  }
}

class ExistingVault extends Construct implements IBackupVault {
  public readonly bucketName: string;
  public readonly bucketArn: string;
  public readonly keyArn: string;

  constructor(scope: Construct, id: string, attrs: BackupVaultAttributes) {
    super(scope, id);
    this.bucketName = attrs.bucket.bucket;
    this.bucketArn = attrs.bucket.arn;
    this.keyArn = attrs.key.arn;
    Annotations.of(this).addInfo(
      `The vault uses an existing bucket: its owner keeps it versioned, SSE-KMS encrypted with the given ` +
        `key, sending its events to EventBridge, and expiring objects by their '${TIER_TAG_KEY}' tag.`,
    );
  }
}
