// The maxReplicaLag prop of the backup task reaches the runner as --max-replica-lag, and the
// runner's own parser reads it back to the same number of seconds.
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { BackupRunnerTask, BackupVault } from '../../lib';
import { BackupConfig, parseInvocation } from '../../runner/src/config';
import { newStack, postgresSource, resourcesOf } from './helpers';

function runnerEnv(stack: ReturnType<typeof newStack>): Record<string, string> {
  const [[, td]] = resourcesOf(Template.fromStack(stack), 'AWS::ECS::TaskDefinition');
  const c = td.Properties.ContainerDefinitions.find((x: { Name: string }) => x.Name === 'runner');
  return Object.fromEntries(c.Environment.map((e: { Name: string; Value: unknown }) => [e.Name, e.Value]));
}

describe('BackupRunnerTask maxReplicaLag', () => {
  test('renders DBBACKUP_MAX_REPLICA_LAG, which the runner parses back to the same seconds', () => {
    const stack = newStack();
    new BackupRunnerTask(stack, 'Task', {
      source: postgresSource(stack),
      vault: new BackupVault(stack, 'Vault'),
      databaseId: 'app-db',
      maxReplicaLag: Duration.minutes(5),
    });
    const env = runnerEnv(stack);
    assert.equal(env.DBBACKUP_MAX_REPLICA_LAG, '300s');
    const parsed = parseInvocation(['backup'], {
      ...env,
      DBBACKUP_TO: 'file:///tmp/x',
      // The task's key is a token here: a plain kms: value stands in for it (the task requires kms:).
      DBBACKUP_ENCRYPT: 'kms:arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000',
    }) as BackupConfig;
    assert.equal(parsed.maxReplicaLagSeconds, 300);
  });

  test('without the prop the task sets no limit', () => {
    const stack = newStack();
    new BackupRunnerTask(stack, 'Task', {
      source: postgresSource(stack),
      vault: new BackupVault(stack, 'Vault'),
      databaseId: 'app-db',
    });
    assert.equal(runnerEnv(stack).DBBACKUP_MAX_REPLICA_LAG, undefined);
  });
});
