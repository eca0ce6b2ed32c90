import { Construct } from 'constructs';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { Statement, assumeRolePolicy, policyDocument } from './policy';

/** A role that one AWS service assumes, with one inline policy. */
export function serviceRole(
  scope: Construct,
  id: string,
  props: {
    name: string;
    service: string;
    sourceAccount: string;
    description: string;
    statements: readonly Statement[];
    tags?: Record<string, string>;
  },
): { role: IamRole; policy: IamRolePolicy } {
  const role = new IamRole(scope, id, {
    name: props.name,
    description: props.description,
    assumeRolePolicy: assumeRolePolicy(props.service, props.sourceAccount),
    tags: props.tags,
  });
  const policy = new IamRolePolicy(scope, `${id}Policy`, {
    name: 'dbbackup',
    role: role.id,
    policy: policyDocument(props.statements),
  });
  return { role, policy };
}

/** CloudWatch Logs retention periods the API accepts, in days. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;
