/** IAM action lists, kept in one place so a reviewer can read every permission at once. */

/** Write a backup under a prefix: new objects (single or multipart) with their tier tag. Never delete. */
export const S3_BACKUP_WRITE_ACTIONS = [
  's3:PutObject',
  's3:PutObjectTagging',
  's3:AbortMultipartUpload',
  's3:ListMultipartUploadParts',
] as const;

/** Read backups under a prefix back (the runner checks its own upload; restores and drills read). */
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

/** What the verifier writes: the verified tag on manifests only. */
export const S3_VERIFY_TAG_ACTIONS = ['s3:PutObjectTagging', 's3:PutObjectVersionTagging'] as const;

/** SSE-KMS writes, including multipart uploads (UploadPart and CompleteMultipartUpload decrypt the data key). */
export const KMS_SSE_WRITE_ACTIONS = ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'] as const;

/** SSE-KMS reads. */
export const KMS_SSE_READ_ACTIONS = ['kms:Decrypt'] as const;

/** `kms:` backup encryption: wrap the per-backup age identity. */
export const KMS_WRAP_ACTIONS = ['kms:Encrypt'] as const;

/** `kms:` backup encryption: unwrap the per-backup age identity (restore, drill). */
export const KMS_UNWRAP_ACTIONS = ['kms:Decrypt'] as const;
