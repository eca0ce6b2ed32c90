// Internal: checks and policy statements shared by the CDKTF AWS task definitions.
import { ConfigError } from '../../../core';
import { Duration } from '../../common/duration';
import { Statement } from './policy';

/** Check a task timeout: whole minutes, 5 minutes to 7 days (as the AWS CDK flavour). */
export function checkTaskTimeout(name: string, timeout: Duration): void {
  const seconds = timeout.toSeconds();
  if (seconds % 60 !== 0 || seconds < 300 || seconds > 7 * 86400) {
    throw new ConfigError(`${name} is ${timeout}; use whole minutes from 5 minutes to 7 days, e.g. Duration.hours(4).`);
  }
}

/** What an execution role needs to start a runner container. */
export interface ExecutionNeeds {
  readonly imageRepositoryArn: string;
  readonly logGroupArn: string;
  /** The source's password secret (and its key), read into the container's environment. */
  readonly passwordSecret?: { readonly arn: string };
  readonly passwordSecretKey?: { readonly arn: string };
  /** The region, for the key's kms:ViaService condition. */
  readonly region: string;
}

/**
 * The execution role's statements, the same for every runner task (backup, drill, log shipper):
 * log in to ECR, pull the runner image, write the task's logs, and read the source's password.
 */
export function executionStatements(n: ExecutionNeeds): Statement[] {
  const statements: Statement[] = [
    // GetAuthorizationToken has no resource to scope to.
    { Sid: 'EcrLogin', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
    {
      Sid: 'PullRunnerImage',
      Effect: 'Allow',
      Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
      Resource: n.imageRepositoryArn,
    },
    {
      Sid: 'WriteLogs',
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: `${n.logGroupArn}:*`,
    },
  ];
  if (n.passwordSecret !== undefined) {
    statements.push({
      Sid: 'ReadSourcePassword',
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: n.passwordSecret.arn,
    });
  }
  if (n.passwordSecretKey !== undefined) {
    statements.push({
      Sid: 'DecryptSourcePassword',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: n.passwordSecretKey.arn,
      Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${n.region}.amazonaws.com` } },
    });
  }
  return statements;
}
