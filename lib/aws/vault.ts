import { Annotations, Duration, Names, PhysicalName, RemovalPolicy, Resource, Token } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { IResource } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import {
  ConfigError,
  MANIFEST_NAME,
  Retention,
  TIER_TAG_KEY,
  validateLockDays,
  validateLockRetention,
  validateStoragePrefix,
  type TierLifetime,
} from '../core';
import {
  KMS_SSE_READ_ACTIONS,
  KMS_SSE_WRITE_ACTIONS,
  S3_BACKUP_WRITE_ACTIONS,
  S3_OBJECT_READ_ACTIONS,
  S3_VERIFY_READ_ACTIONS,
  S3_VERIFY_TAG_ACTIONS,
} from './private/iam';
import { acknowledge } from './private/nag';
import type { VaultReplicationOptions } from './replication';
import { vaultReplication } from './private/replication';

/** How Object Lock protects backups. */
export enum ObjectLockMode {
  /** Users with `s3:BypassGovernanceRetention` can still shorten or remove a lock. */
  GOVERNANCE = 'GOVERNANCE',
  /** Nobody, including the account's root user, can shorten or remove a lock. */
  COMPLIANCE = 'COMPLIANCE',
}

/** Object Lock settings of a new vault. */
export interface ObjectLockOptions {
  /** @default ObjectLockMode.GOVERNANCE */
  readonly mode?: ObjectLockMode;
  /**
   * How long every new object version is locked. Must not exceed the shortest retention tier:
   * a lock longer than a tier's lifetime would keep its expired backups (and their cost).
   */
  readonly defaultRetention: Duration;
}

/** Moving older backups of the longer tiers to a colder, cheaper storage class. */
export interface ColdStorageOptions {
  /** @default s3.StorageClass.GLACIER_INSTANT_RETRIEVAL */
  readonly storageClass?: s3.StorageClass;
  /** How old a backup is when it moves. */
  readonly after: Duration;
}

/** Properties of a `BackupVault`. */
export interface BackupVaultProps {
  /**
   * How long backups are kept: each retention tier becomes a lifecycle rule on the objects
   * tagged `dbbackup-tier=<tier>` (the runner tags every object of a backup with its tier).
   * @default Retention.gfs() - 7 daily, 4 weekly, 12 monthly
   */
  readonly retention?: Retention;
  /**
   * The key that encrypts the bucket (SSE-KMS with an S3 bucket key).
   * @default - a new customer-managed KMS key with rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Make backups immutable with S3 Object Lock (the bucket must be new for this).
   * @default - no Object Lock
   */
  readonly objectLock?: ObjectLockOptions;
  /**
   * Move weekly and monthly backups that live long enough to a colder storage class.
   * @default - all backups stay in S3 Standard
   */
  readonly coldStorage?: ColdStorageOptions;
  /**
   * How long a replaced or expired object version is kept before it is removed.
   * @default Duration.days(7)
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * How long an interrupted multipart upload may linger before S3 removes its parts.
   * @default Duration.days(3)
   */
  readonly abortIncompleteMultipartUploadAfter?: Duration;
  /**
   * Where S3 server access logs of the vault go.
   * @default - a new bucket (SSE-S3, versioned, logs kept for `accessLogsRetention`)
   */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * How long the server access logs of a new access-logs bucket are kept.
   * @default Duration.days(365)
   */
  readonly accessLogsRetention?: Duration;
  /**
   * What happens to the bucket, its key and its logs when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /** @default - a name CloudFormation generates */
  readonly bucketName?: string;
  /**
   * A second failure domain: replicate every backup object (SSE-KMS, with its tier tag) to a
   * bucket in another region and/or account, with replication metrics and alarms on failed
   * operations and latency. `replicaStack` makes a replica vault with the same retention tiers,
   * Object Lock and cold storage there; `destinationBucket` + `destinationKey` name one that exists.
   * @default - no replication
   */
  readonly replication?: VaultReplicationOptions;
}

/** A place backups are kept: a bucket and the key that encrypts it. */
export interface IBackupVault extends IResource {
  /** The bucket the backups are in. */
  readonly bucket: s3.IBucket;
  /** The key the bucket is encrypted with (SSE-KMS). */
  readonly key: kms.IKey;
  /** Whether the bucket sends its events to EventBridge (the verifier needs that). */
  readonly eventBridgeEnabled: boolean;
  /** The runner's storage URL of a prefix: `s3://bucket/prefix`. */
  storageUrl(prefix: string): string;
  /**
   * Write backups under `prefix` and read them back: put objects with their tier tag,
   * multipart uploads, list, read the bucket's default encryption (the runner sends the same
   * SSE-KMS headers); the key's SSE-KMS actions. Never delete.
   */
  grantBackup(grantee: iam.IGrantable, prefix: string): iam.Grant;
  /** Read backups under `prefix` (restore, drill): get, list, decrypt. */
  grantRestore(grantee: iam.IGrantable, prefix: string): iam.Grant;
  /** Check backups under `prefix`: read objects, versions, attributes and tags; tag manifests. */
  grantVerify(grantee: iam.IGrantable, prefix: string): iam.Grant;
  /**
   * Expire the objects under a log archive prefix (`<prefix>/binlog/`) after `days` days. Returns
   * false where the vault's lifecycle is not this app's to change (an existing bucket).
   */
  addLogArchiveExpiry(logPrefix: string, days: number): boolean;
}

/** Attributes of an existing vault. */
export interface BackupVaultAttributes {
  readonly bucket: s3.IBucket;
  /** The key the bucket is encrypted with. */
  readonly key: kms.IKey;
  /**
   * Whether the bucket sends its events to EventBridge (`EventBridgeConfiguration`). Without
   * it, backups are only checked by the scheduled freshness check.
   * @default false
   */
  readonly eventBridgeEnabled?: boolean;
}

function checkPrefix(prefix: string): void {
  if (Token.isUnresolved(prefix)) return;
  if (prefix === '') {
    throw new ConfigError(
      'the storage prefix is empty; give each database its own prefix in the vault (e.g. its database id), so grants ' +
        'and lifecycle stay per database.',
    );
  }
  validateStoragePrefix(prefix);
}

abstract class BackupVaultBase extends Resource implements IBackupVault {
  public abstract readonly bucket: s3.IBucket;
  public abstract readonly key: kms.IKey;
  public abstract readonly eventBridgeEnabled: boolean;

  public storageUrl(prefix: string): string {
    checkPrefix(prefix);
    return `s3://${this.bucket.bucketName}/${prefix}`;
  }

  public addLogArchiveExpiry(_logPrefix: string, _days: number): boolean {
    return false;
  }

  public grantBackup(grantee: iam.IGrantable, prefix: string): iam.Grant {
    checkPrefix(prefix);
    return iam.Grant.addToPrincipal({
      grantee,
      actions: [...S3_BACKUP_WRITE_ACTIONS, ...S3_OBJECT_READ_ACTIONS],
      resourceArns: [this.bucket.arnForObjects(`${prefix}/*`)],
    })
      .combine(this.grantList(grantee, prefix))
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: ['s3:GetEncryptionConfiguration'],
          resourceArns: [this.bucket.bucketArn],
        }),
      )
      .combine(
        iam.Grant.addToPrincipal({ grantee, actions: [...KMS_SSE_WRITE_ACTIONS], resourceArns: [this.key.keyArn] }),
      );
  }

  public grantRestore(grantee: iam.IGrantable, prefix: string): iam.Grant {
    checkPrefix(prefix);
    return iam.Grant.addToPrincipal({
      grantee,
      actions: [...S3_OBJECT_READ_ACTIONS],
      resourceArns: [this.bucket.arnForObjects(`${prefix}/*`)],
    })
      .combine(this.grantList(grantee, prefix))
      .combine(
        iam.Grant.addToPrincipal({ grantee, actions: [...KMS_SSE_READ_ACTIONS], resourceArns: [this.key.keyArn] }),
      );
  }

  public grantVerify(grantee: iam.IGrantable, prefix: string): iam.Grant {
    checkPrefix(prefix);
    return iam.Grant.addToPrincipal({
      grantee,
      actions: [...S3_VERIFY_READ_ACTIONS],
      resourceArns: [this.bucket.arnForObjects(`${prefix}/*`)],
    })
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: [...S3_VERIFY_TAG_ACTIONS],
          resourceArns: [this.bucket.arnForObjects(`${prefix}/*/${MANIFEST_NAME}`)],
        }),
      )
      .combine(this.grantList(grantee, prefix))
      .combine(
        iam.Grant.addToPrincipal({ grantee, actions: [...KMS_SSE_READ_ACTIONS], resourceArns: [this.key.keyArn] }),
      );
  }

  private grantList(grantee: iam.IGrantable, prefix: string): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [prefix, `${prefix}/*`] } },
    });
  }
}

/**
 * Where backups are kept: an S3 bucket encrypted with a customer-managed KMS key (rotation on,
 * S3 bucket key), versioned, with public access blocked, TLS required, writes that ask for any
 * encryption but this key refused, server access logs, optional Object Lock, and lifecycle
 * rules that expire each retention tier, so no process ever needs delete rights.
 */
export class BackupVault extends BackupVaultBase {
  /** Use an existing bucket and key as a vault (e.g. one vault shared by several databases). */
  public static fromAttributes(scope: Construct, id: string, attrs: BackupVaultAttributes): IBackupVault {
    class Import extends BackupVaultBase {
      public readonly bucket = attrs.bucket;
      public readonly key = attrs.key;
      public readonly eventBridgeEnabled = attrs.eventBridgeEnabled ?? false;
    }
    return new Import(scope, id);
  }

  public readonly bucket: s3.IBucket;
  public readonly key: kms.IKey;
  public readonly eventBridgeEnabled = true;
  /** The bucket that receives the vault's server access logs. */
  public readonly accessLogsBucket: s3.IBucket;
  /** The retention tiers the lifecycle rules implement. */
  public readonly retention: Retention;
  /** The role S3 replicates with, when `replication` is set. */
  public readonly replicationRole?: iam.IRole;
  /** The bucket replicas go to, when `replication` is set. */
  public readonly replicaBucket?: s3.IBucket;
  /** The replica vault made in `replication.replicaStack`. */
  public readonly replica?: BackupVault;
  /** Failed replication operations and replication latency, when `replication` is set. */
  public readonly replicationAlarms: cloudwatch.IAlarm[] = [];
  private readonly ownBucket: s3.Bucket;
  private readonly logRules = new Map<string, number>();

  constructor(scope: Construct, id: string, props: BackupVaultProps = {}) {
    super(scope, id);
    // Deliver access logs through a bucket policy, not ACLs (the target keeps ACLs disabled),
    // whatever the app's feature flags say.
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    this.retention = props.retention ?? Retention.gfs();
    const lifetimes = this.retention.lifetimes;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    validateObjectLock(props.objectLock, this.retention);
    const noncurrent = props.noncurrentVersionExpiration ?? Duration.days(7);
    const abortAfter = props.abortIncompleteMultipartUploadAfter ?? Duration.days(3);
    wholeDays('noncurrentVersionExpiration', noncurrent, 1);
    wholeDays('abortIncompleteMultipartUploadAfter', abortAfter, 1);
    const logRetention = props.accessLogsRetention ?? Duration.days(365);
    wholeDays('accessLogsRetention', logRetention, 1);

    this.key =
      props.encryptionKey ??
      new kms.Key(this, 'Key', {
        enableKeyRotation: true,
        description: 'Encrypts database backups (S3 SSE-KMS) and wraps per-backup keys',
        removalPolicy,
      });

    if (props.accessLogsBucket !== undefined) {
      this.accessLogsBucket = props.accessLogsBucket;
    } else {
      const logs = new s3.Bucket(this, 'AccessLogs', {
        encryption: s3.BucketEncryption.S3_MANAGED,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        versioned: true,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removalPolicy,
        lifecycleRules: [
          {
            id: 'expire-access-logs',
            expiration: logRetention,
            noncurrentVersionExpiration: Duration.days(1),
            abortIncompleteMultipartUploadAfter: Duration.days(1),
          },
        ],
      });
      acknowledge(
        logs,
        {
          id: 'AwsSolutions-S1',
          reason: "This bucket receives the backup bucket's server access logs; logging it to itself would loop.",
        },
        {
          id: 'NIST.800.53.R5-S3BucketLoggingEnabled',
          reason: "This bucket receives the backup bucket's server access logs; logging it to itself would loop.",
        },
        {
          id: 'NIST.800.53.R5-S3DefaultEncryptionKMS',
          reason: 'S3 server access log delivery supports only SSE-S3 on the target bucket.',
        },
        {
          id: 'NIST.800.53.R5-S3BucketReplicationEnabled',
          reason:
            'Access logs are an audit aid for one region; replicate them at the account level if policy requires.',
        },
      );
      this.accessLogsBucket = logs;
    }

    const rules: s3.LifecycleRule[] = lifetimes.map((t) => ({
      id: `expire-${t.tier}`,
      tagFilters: { [TIER_TAG_KEY]: t.tier },
      expiration: Duration.days(t.days),
      transitions: this.transitionsFor(t, props.coldStorage),
    }));
    rules.push({
      id: 'noncurrent-versions-and-incomplete-uploads',
      noncurrentVersionExpiration: noncurrent,
      abortIncompleteMultipartUploadAfter: abortAfter,
    });
    rules.push({ id: 'expired-delete-markers', expiredObjectDeleteMarker: true });

    this.bucket = this.ownBucket = new s3.Bucket(this, 'Resource', {
      bucketName: props.bucketName,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'backup-bucket/',
      removalPolicy,
      lifecycleRules: rules,
      objectLockEnabled: props.objectLock !== undefined ? true : undefined,
      objectLockDefaultRetention:
        props.objectLock === undefined
          ? undefined
          : (props.objectLock.mode ?? ObjectLockMode.GOVERNANCE) === ObjectLockMode.COMPLIANCE
            ? s3.ObjectLockRetention.compliance(props.objectLock.defaultRetention)
            : s3.ObjectLockRetention.governance(props.objectLock.defaultRetention),
    });

    // Send object events to EventBridge (the verifier's trigger) natively, without the
    // custom-resource Lambda that `eventBridgeEnabled` would add.
    (this.bucket.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
      eventBridgeConfiguration: { eventBridgeEnabled: true },
    };

    // Refuse writes that ask for any encryption other than SSE-KMS with this key. Writes that
    // ask for none get the bucket default (this key). The conditions are "…IfExists" on
    // purpose: UploadPart carries no encryption header, and a deny on a missing header would
    // break every multipart upload.
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyOtherEncryption',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects('*')],
        conditions: { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption': 'aws:kms' } },
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyOtherKmsKey',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects('*')],
        conditions: { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption-aws-kms-key-id': this.key.keyArn } },
      }),
    );
    const asReplicaOf = replicaOf;
    replicaOf = undefined;
    if (asReplicaOf !== undefined) {
      acknowledge(this.bucket, {
        id: 'NIST.800.53.R5-S3BucketReplicationEnabled',
        reason:
          `This bucket is the replica (second failure domain) of the vault ${asReplicaOf}; it replicates no ` +
          'further.',
      });
    } else if (props.replication === undefined) {
      acknowledge(this.bucket, {
        id: 'NIST.800.53.R5-S3BucketReplicationEnabled',
        reason:
          'Cross-region replication of backups is a deployment choice (cost, data residency); set replication ' +
          'on the vault where policy requires a second region or account.',
      });
    }

    if (props.replication !== undefined) {
      const parts = vaultReplication(
        this,
        { bucket: this.bucket, key: this.key, objectLock: props.objectLock !== undefined },
        props.replication,
        (stack) => {
          replicaOf = this.node.path;
          const replica = new BackupVault(stack, `${Names.uniqueId(this)}Replica`, {
            retention: this.retention,
            objectLock: props.objectLock,
            coldStorage: props.coldStorage,
            noncurrentVersionExpiration: props.noncurrentVersionExpiration,
            abortIncompleteMultipartUploadAfter: props.abortIncompleteMultipartUploadAfter,
            accessLogsRetention: props.accessLogsRetention,
            removalPolicy: props.removalPolicy,
            bucketName: PhysicalName.GENERATE_IF_NEEDED,
          });
          (this as { replica?: BackupVault }).replica = replica;
          return { scope: replica, bucket: replica.bucket, key: replica.key };
        },
      );
      (this.bucket.node.defaultChild as s3.CfnBucket).replicationConfiguration = parts.configuration;
      this.replicationRole = parts.role;
      this.replicaBucket = parts.destinationBucket;
      this.replicationAlarms.push(...parts.alarms);
    }
  }

  /**
   * Expire a log archive prefix after `days` days (lib/core/simulate.ts `logArchiveExpiry` says
   * how many): log objects carry no tier tag, so no tier rule reaches them. One rule per prefix.
   */
  public addLogArchiveExpiry(logPrefix: string, days: number): boolean {
    const known = this.logRules.get(logPrefix);
    if (known !== undefined && known !== days) {
      throw new ConfigError(
        `the log archive ${logPrefix} already expires after ${known} days, not ${days}; give each database its own ` +
          'prefix.',
      );
    }
    if (known !== undefined) return true;
    this.logRules.set(logPrefix, days);
    this.ownBucket.addLifecycleRule({
      id: `expire-logs-${logPrefix.replace(/\/$/, '').replace(/[^A-Za-z0-9-]/g, '-')}`,
      prefix: logPrefix,
      expiration: Duration.days(days),
    });
    return true;
  }

  private transitionsFor(t: TierLifetime, cold: ColdStorageOptions | undefined): s3.Transition[] | undefined {
    if (cold === undefined) return undefined;
    const after = wholeDays('coldStorage.after', cold.after, 1);
    // Only backups that outlive the move by a day are worth moving.
    if (after === undefined || t.days <= after + 1) return undefined;
    const storageClass = cold.storageClass ?? s3.StorageClass.GLACIER_INSTANT_RETRIEVAL;
    const minimumStay: Record<string, number> = {
      STANDARD_IA: 30,
      ONEZONE_IA: 30,
      GLACIER_IR: 90,
      GLACIER: 90,
      DEEP_ARCHIVE: 180,
    };
    const stay = minimumStay[storageClass.value];
    if (stay !== undefined && t.days - after < stay) {
      Annotations.of(this).addWarningV2(
        'db-backup-constructs:coldStorageMinimumDuration',
        `${t.tier} backups live ${t.days} days and move to ${storageClass.value} after ${after} days, less than its ` +
          `${stay}-day minimum storage charge; the move may cost more than it saves. Move them later or pick another ` +
          'storage class.',
      );
    }
    return [{ storageClass, transitionAfter: Duration.days(after) }];
  }
}

/** The path of the vault whose replica is being made (its constructor reads and clears it). */
let replicaOf: string | undefined;

function wholeDays(name: string, d: Duration, min: number): number | undefined {
  if (Token.isUnresolved(d.toString())) return undefined;
  const days = d.toDays({ integral: false });
  if (!Number.isInteger(days) || days < min) {
    throw new ConfigError(
      `${name} is ${d.toHumanString()}; S3 lifecycle rules count in whole days, at least ${min}. Use e.g. ` +
        `Duration.days(${Math.max(min, Math.ceil(days))}).`,
    );
  }
  return days;
}

function validateObjectLock(lock: ObjectLockOptions | undefined, retention: Retention): void {
  if (lock === undefined) return;
  const days = wholeDays('objectLock.defaultRetention', lock.defaultRetention, 1);
  if (days === undefined) return;
  // The same checks, with the same messages, as the CDKTF vaults (lib/core/checks).
  validateLockDays(days, 'objectLock.defaultRetention');
  validateLockRetention(days, retention, 'objectLock.defaultRetention');
}
