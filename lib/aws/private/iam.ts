/**
 * IAM action lists: the one table of every role's permissions lives in lib/core/permissions
 * (the CDKTF flavours render the same lists); re-exported here for the CDK constructs.
 */
export {
  KMS_RANDOM_ACTIONS,
  KMS_SSE_READ_ACTIONS,
  KMS_SSE_WRITE_ACTIONS,
  KMS_UNWRAP_ACTIONS,
  KMS_WRAP_ACTIONS,
  S3_BACKUP_WRITE_ACTIONS,
  S3_OBJECT_READ_ACTIONS,
  S3_VERIFY_READ_ACTIONS,
  S3_VERIFY_TAG_ACTIONS,
} from '../../core';
