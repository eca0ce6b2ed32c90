import {
  BackupRole,
  S3_DELETE_ACTIONS,
  S3_PERMISSIONS,
  listPrefixes,
  manifestPattern,
  prefixObjectsPattern,
} from '../../../core';

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

/**
 * The statements of `role` on a vault under `prefix`, from the one permission table
 * (lib/core/permissions) the AWS CDK grants use too.
 */
export function vaultStatements(
  role: BackupRole,
  vault: { readonly bucketArn: string; readonly keyArn: string },
  prefix: string,
): Statement[] {
  const p = S3_PERMISSIONS[role];
  const out: Statement[] = [
    {
      Sid: role === BackupRole.WRITER ? 'WriteAndReadBackups' : 'ReadBackups',
      Effect: 'Allow',
      Action: [...p.objectActions],
      Resource: `${vault.bucketArn}/${prefixObjectsPattern(prefix)}`,
    },
  ];
  if (p.manifestActions.length > 0) {
    out.push({
      Sid: 'TagManifests',
      Effect: 'Allow',
      Action: [...p.manifestActions],
      Resource: `${vault.bucketArn}/${manifestPattern(prefix)}`,
    });
  }
  out.push({
    Sid: 'ListBackups',
    Effect: 'Allow',
    Action: [...p.listActions],
    Resource: vault.bucketArn,
    Condition: { StringLike: { 's3:prefix': listPrefixes(prefix) } },
  });
  if (p.bucketActions.length > 0)
    out.push({ Sid: 'InspectBucket', Effect: 'Allow', Action: [...p.bucketActions], Resource: vault.bucketArn });
  out.push({ Sid: 'UseVaultKey', Effect: 'Allow', Action: [...p.sseKeyActions], Resource: vault.keyArn });
  return out;
}

/** Actions that remove data; no role made here is ever granted one. */
export const DELETE_ACTIONS = S3_DELETE_ACTIONS;
