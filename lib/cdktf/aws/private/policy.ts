/**
 * IAM policy documents as plain JSON (rendered into the Terraform JSON, readable in tests and
 * in `terraform plan`), and the action lists the constructs grant.
 */

/** One statement of an IAM policy. */
export interface Statement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Principal?: unknown;
  readonly Action: string | readonly string[];
  readonly Resource?: string | readonly string[];
  readonly Condition?: Record<string, Record<string, unknown>>;
}

/** A policy document as a JSON string. */
export function policyDocument(statements: readonly Statement[]): string {
  return JSON.stringify({ Version: '2012-10-17', Statement: statements });
}

/** A trust policy for an AWS service, optionally restricted to one account (confused deputy). */
export function assumeRolePolicy(service: string, sourceAccount?: string): string {
  return policyDocument([
    {
      Effect: 'Allow',
      Principal: { Service: service },
      Action: 'sts:AssumeRole',
      ...(sourceAccount === undefined ? {} : { Condition: { StringEquals: { 'aws:SourceAccount': sourceAccount } } }),
    },
  ]);
}

/** What the runner may do in the vault: write and read back backups, never delete them. */
export const RUNNER_OBJECT_ACTIONS = [
  's3:PutObject',
  's3:PutObjectTagging',
  's3:GetObject',
  's3:GetObjectTagging',
  's3:AbortMultipartUpload',
  's3:ListMultipartUploadParts',
] as const;
export const RUNNER_BUCKET_ACTIONS = ['s3:ListBucket', 's3:ListBucketMultipartUploads', 's3:GetEncryptionConfiguration'] as const;

/** SSE-KMS writes and reads through the vault key. */
export const KEY_WRITE_ACTIONS = ['kms:GenerateDataKey', 'kms:Decrypt'] as const;

/** What the verifier may do: read backups and tag manifests with the verification result. */
export const VERIFIER_OBJECT_ACTIONS = ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectTagging', 's3:PutObjectTagging'] as const;
export const VERIFIER_BUCKET_ACTIONS = ['s3:ListBucket'] as const;

/** Actions that remove data; no role made here is ever granted one. */
export const DELETE_ACTIONS = ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:PutLifecycleConfiguration', 's3:DeleteBucket'] as const;
