import { TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition';
import { DataAwsRegion } from '@cdktf/provider-aws/lib/data-aws-region';

/** The account, partition and region of the stack, read once per stack at plan time. */
export interface AwsContext {
  readonly accountId: string;
  readonly partition: string;
  readonly region: string;
}

/** Data sources shared by every construct of a stack (no credentials are needed to synthesize). */
export function awsContext(scope: Construct): AwsContext {
  const stack = TerraformStack.of(scope);
  const find = <T>(id: string, make: () => T): T => (stack.node.tryFindChild(id) as T | undefined) ?? make();
  const identity = find('DbBackupCallerIdentity', () => new DataAwsCallerIdentity(stack, 'DbBackupCallerIdentity'));
  const partition = find('DbBackupPartition', () => new DataAwsPartition(stack, 'DbBackupPartition'));
  const region = find('DbBackupRegion', () => new DataAwsRegion(stack, 'DbBackupRegion'));
  return { accountId: identity.accountId, partition: partition.partition, region: region.region };
}
