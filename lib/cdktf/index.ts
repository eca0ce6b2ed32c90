// The CDK for Terraform entry point (`db-backup-constructs/cdktf`): never loads aws-cdk-lib.
export * from '../core';
