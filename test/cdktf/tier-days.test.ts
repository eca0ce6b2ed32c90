// CDKTF AWS: an incremental or differential task gets `--tier-days` from the vault's retention,
// as in the AWS CDK flavour (test/aws/log-expiry.test.ts), and the runner takes what it renders.
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import * as aws from '../../lib/cdktf/aws';
import { BackupSchedule, BackupType, Retention } from '../../lib/cdktf/aws';
import { HelpRequest, parseInvocation } from '../../runner/src/config';
import { synthAws } from './helpers';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:dbbackup/orders-AbCdEf';
const KEY_ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const REPO = {
  arn: 'arn:aws:ecr:eu-west-1:111122223333:repository/dbbackup',
  repositoryUrl: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/dbbackup',
};
const NETWORK = { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'] };
const retention = Retention.gfs({ daily: 7, weekly: 4, monthly: 12 });

function synthTasks(vault?: (stack: ConstructorParameters<typeof aws.DatabaseBackup>[0]) => aws.IBackupVault) {
  const s = synthAws((stack) => {
    new aws.DatabaseBackup(stack, 'Orders', {
      databaseId: 'orders',
      source: aws.BackupSource.mysql({
        url: 'mysql://backup@orders.internal:3306/orders',
        passwordSecret: { arn: SECRET_ARN },
      }),
      image: aws.RunnerImage.fromEcrRepository(REPO, '1.2.3'),
      network: NETWORK,
      schedules: [
        { type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: '1', weekDay: 'SUN' }) },
        { type: BackupType.DIFFERENTIAL, schedule: BackupSchedule.cron({ hour: '1', weekDay: 'MON-SAT' }) },
      ],
      vault: vault?.(stack),
      retention: vault === undefined ? retention : undefined,
      drill: { enabled: false },
    });
  });
  return s.all('aws_ecs_task_definition').map((td) => {
    const [c] = JSON.parse(td.container_definitions);
    return Object.fromEntries((c.environment as { name: string; value: string }[]).map((e) => [e.name, e.value]));
  });
}

describe('--tier-days (CDKTF AWS)', () => {
  test("dependant tasks get the tiers' days of the new vault; full tasks do not need them", () => {
    const envs = synthTasks();
    const byType = envs.map((env) => [env.DBBACKUP_TYPE, env.DBBACKUP_TIER_DAYS]).sort();
    assert.deepEqual(byType, [
      ['differential', retention.tierDaysSetting],
      ['full', undefined],
    ]);
    assert.equal(retention.tierDaysSetting, 'daily=7,weekly=28,monthly=372');
    // What the task's environment says, the runner parses (the chain keeps whole by those days).
    const differential = envs.find((env) => env.DBBACKUP_TYPE === 'differential')!;
    // The bucket and key are Terraform references until apply; the runner sees names.
    const env = { ...differential, DBBACKUP_TO: 's3://acme-backups/orders', DBBACKUP_ENCRYPT: `kms:${KEY_ARN}` };
    const inv = parseInvocation(['backup'], env);
    assert.ok(!(inv instanceof HelpRequest) && inv.command === 'backup');
    assert.deepEqual((inv as { tierDays?: unknown }).tierDays, { daily: 7, weekly: 28, monthly: 372 });
  });

  test('an existing vault (its lifecycle is its owner’s) gives no days', () => {
    const envs = synthTasks((stack) =>
      aws.BackupVault.fromExisting(stack, 'Theirs', {
        bucket: { bucket: 'their-bucket', arn: 'arn:aws:s3:::their-bucket' },
        key: { arn: KEY_ARN },
      }),
    );
    assert.deepEqual(
      envs.map((env) => env.DBBACKUP_TIER_DAYS),
      [undefined, undefined],
    );
  });
});
