/**
 * What each role of the backup system may do, once for every flavour: the AWS CDK grants and
 * the CDKTF IAM policies render these lists, the Google flavour grants these roles. A reviewer
 * reads every permission here. No role is ever granted a delete: retention is lifecycle rules.
 *
 * Roles: the writer (backup runner, binary log shipper), the reader (restore), the verifier,
 * the drill (restore into a scratch database).
 */

/** A role of the backup system. */
export enum BackupRole {
  WRITER = 'writer',
  READER = 'reader',
  VERIFIER = 'verifier',
  DRILL = 'drill',
}

/** What a role does in S3, under its database's prefix, on the bucket, and with the vault key. */
export interface S3Permissions {
  /** On `bucket/prefix/*`. */
  readonly objectActions: readonly string[];
  /** On `bucket/prefix/*\/manifest.json` only. */
  readonly manifestActions: readonly string[];
  /** On the bucket, `s3:ListBucket` limited to the prefix by `s3:prefix`. */
  readonly listActions: readonly string[];
  /** On the bucket itself. */
  readonly bucketActions: readonly string[];
  /** On the vault key (SSE-KMS). */
  readonly sseKeyActions: readonly string[];
}

/** Write backups under a prefix and read them back: new objects (single or multipart) with their tier tag. */
export const S3_BACKUP_WRITE_ACTIONS = [
  's3:PutObject',
  's3:PutObjectTagging',
  's3:AbortMultipartUpload',
  's3:ListMultipartUploadParts',
] as const;

/** Read backups back (the runner checks its own upload; restores and drills read). */
export const S3_OBJECT_READ_ACTIONS = ['s3:GetObject', 's3:GetObjectTagging'] as const;

/** What the verifier reads: objects, their versions, attributes (checksums) and tags. */
export const S3_VERIFY_READ_ACTIONS = [
  's3:GetObject',
  's3:GetObjectVersion',
  's3:GetObjectAttributes',
  's3:GetObjectVersionAttributes',
  's3:GetObjectTagging',
  's3:GetObjectVersionTagging',
] as const;

/** What the verifier writes: the verified tag, on manifests only. */
export const S3_VERIFY_TAG_ACTIONS = ['s3:PutObjectTagging', 's3:PutObjectVersionTagging'] as const;

/**
 * SSE-KMS writes, multipart included: S3 asks KMS for a data key (GenerateDataKey) and reads it
 * back for each part and the completion (Decrypt). S3 never calls kms:Encrypt for SSE-KMS.
 */
export const KMS_SSE_WRITE_ACTIONS = ['kms:Decrypt', 'kms:GenerateDataKey'] as const;

/** SSE-KMS reads. */
export const KMS_SSE_READ_ACTIONS = ['kms:Decrypt'] as const;

/** `kms:` backup encryption: wrap the per-backup age identity (on the wrapping key). */
export const KMS_WRAP_ACTIONS = ['kms:Encrypt'] as const;

/** `kms:` backup encryption: the per-backup identity's randomness; KMS takes no resource for it. */
export const KMS_RANDOM_ACTIONS = ['kms:GenerateRandom'] as const;

/** `kms:` backup encryption: unwrap the per-backup age identity (restore, drill, deep verify). */
export const KMS_UNWRAP_ACTIONS = ['kms:Decrypt'] as const;

/** Actions that remove or rewrite retention; no role made by this library is granted one. */
export const S3_DELETE_ACTIONS = [
  's3:DeleteObject',
  's3:DeleteObjectVersion',
  's3:DeleteObjectTagging',
  's3:PutLifecycleConfiguration',
  's3:PutBucketPolicy',
  's3:DeleteBucket',
] as const;

/** The S3 permissions of each role. */
export const S3_PERMISSIONS: Readonly<Record<BackupRole, S3Permissions>> = {
  [BackupRole.WRITER]: {
    objectActions: [...S3_BACKUP_WRITE_ACTIONS, ...S3_OBJECT_READ_ACTIONS],
    manifestActions: [],
    listActions: ['s3:ListBucket'],
    bucketActions: ['s3:GetEncryptionConfiguration'],
    sseKeyActions: [...KMS_SSE_WRITE_ACTIONS],
  },
  [BackupRole.READER]: {
    objectActions: [...S3_OBJECT_READ_ACTIONS],
    manifestActions: [],
    listActions: ['s3:ListBucket'],
    bucketActions: [],
    sseKeyActions: [...KMS_SSE_READ_ACTIONS],
  },
  [BackupRole.VERIFIER]: {
    objectActions: [...S3_VERIFY_READ_ACTIONS],
    manifestActions: [...S3_VERIFY_TAG_ACTIONS],
    listActions: ['s3:ListBucket'],
    bucketActions: [],
    sseKeyActions: [...KMS_SSE_READ_ACTIONS],
  },
  [BackupRole.DRILL]: {
    objectActions: [...S3_OBJECT_READ_ACTIONS],
    manifestActions: [],
    listActions: ['s3:ListBucket'],
    bucketActions: [],
    sseKeyActions: [...KMS_SSE_READ_ACTIONS],
  },
};

/**
 * The Cloud Storage roles of each role on the vault's bucket. `objectCreator` creates objects
 * but cannot overwrite or delete them (no `storage.objects.delete`); `objectViewer` reads and lists.
 */
export const GCS_BUCKET_ROLES: Readonly<Record<BackupRole, readonly string[]>> = {
  [BackupRole.WRITER]: ['roles/storage.objectCreator', 'roles/storage.objectViewer'],
  [BackupRole.READER]: ['roles/storage.objectViewer'],
  [BackupRole.VERIFIER]: ['roles/storage.objectViewer'],
  [BackupRole.DRILL]: ['roles/storage.objectViewer'],
};

/** Google roles that would let a principal delete backups; never granted. */
export const GCS_DELETE_ROLES = [
  'roles/storage.objectAdmin',
  'roles/storage.admin',
  'roles/storage.objectUser',
] as const;

/**
 * S3 replication of a vault to a second failure domain (another region and/or account): what
 * the replication role (assumed by S3) does. It reads object versions with their ACL, tags and
 * Object Lock settings on the vault, and replicates objects and tags to the destination. It
 * replicates no deletes unless delete-marker replication is asked for (`s3:ReplicateDelete`
 * copies a delete marker; it never removes a version).
 */
export const S3_REPLICATION_SOURCE_BUCKET_ACTIONS = ['s3:GetReplicationConfiguration', 's3:ListBucket'] as const;

/** On the vault's object versions. */
export const S3_REPLICATION_SOURCE_OBJECT_ACTIONS = [
  's3:GetObjectVersionForReplication',
  's3:GetObjectVersionAcl',
  's3:GetObjectVersionTagging',
  's3:GetObjectRetention',
  's3:GetObjectLegalHold',
] as const;

/** On the destination's objects: the replicas and their tags (the tier tag the lifecycle rules read). */
export const S3_REPLICATION_DESTINATION_ACTIONS = ['s3:ReplicateObject', 's3:ReplicateTags'] as const;

/** On the destination's objects, only with delete-marker replication. */
export const S3_REPLICATION_DELETE_MARKER_ACTIONS = ['s3:ReplicateDelete'] as const;

/** On the destination's objects, only across accounts: the replicas become the destination owner's. */
export const S3_REPLICATION_OWNER_OVERRIDE_ACTIONS = ['s3:ObjectOwnerOverrideToBucketOwner'] as const;

/** On the vault key: read the SSE-KMS objects it replicates. */
export const KMS_REPLICATION_SOURCE_ACTIONS = ['kms:Decrypt'] as const;

/** On the destination key: encrypt the replicas (SSE-KMS). */
export const KMS_REPLICATION_DESTINATION_ACTIONS = ['kms:Encrypt', 'kms:GenerateDataKey'] as const;

/** The id of the vault's replication rule (a dimension of S3's replication metrics). */
export const REPLICATION_RULE_ID = 'dbbackup-replica';
