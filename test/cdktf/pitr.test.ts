// CDKTF AWS point-in-time recovery, as the AWS CDK flavour's (test/aws/pitr.test.ts): a MySQL
// source gets a one-task binary log shipper service and a lifecycle rule expiring its log
// archive after the days lib/core computes; sources whose engine record ships no binary log are
// refused at synth.
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import * as aws from '../../lib/cdktf/aws';
import { BackupSchedule, BackupType, Duration, Retention } from '../../lib/cdktf/aws';
import { logArchiveExpiry, METRIC_DIMENSION, METRICS, RUNNER_ENV, RunnerCommand } from '../../lib/core';
import { HelpRequest, parseInvocation } from '../../runner/src/config';
import { allowedActions, envMap, policy, synthAws, warnings } from './helpers';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:dbbackup/orders-AbCdEf';
const KEY_ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const REPO = {
  arn: 'arn:aws:ecr:eu-west-1:111122223333:repository/dbbackup',
  repositoryUrl: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/dbbackup',
};
const NETWORK = { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'] };
const retention = Retention.gfs({ daily: 7, weekly: 4, monthly: 12 });
const weeklyFull = BackupSchedule.cron({ hour: '1', weekDay: 'SUN' });

const source = (engine: 'mysql' | 'postgres' | 'mongodb') => {
  const url = {
    mysql: 'mysql://backup@orders.internal:3306/orders',
    postgres: 'postgres://backup@orders.internal:5432/orders',
    mongodb: 'mongodb://backup@orders.internal:27017/orders',
  }[engine];
  return aws.BackupSource[engine]({ url, passwordSecret: { arn: SECRET_ARN } });
};

function props(extra: Partial<aws.DatabaseBackupProps> = {}): aws.DatabaseBackupProps {
  return {
    databaseId: 'orders',
    source: source('mysql'),
    image: aws.RunnerImage.fromEcrRepository(REPO, '1.2.3'),
    network: NETWORK,
    schedules: [{ type: BackupType.FULL, schedule: weeklyFull }],
    retention,
    drill: { enabled: false },
    pointInTimeRecovery: { window: Duration.days(7), uploadInterval: Duration.seconds(30) },
    ...extra,
  };
}

describe('point-in-time recovery (CDKTF AWS)', () => {
  test('a MySQL source gets one binlog-stream service: one task at a time, the runner takes its settings', () => {
    const s = synthAws((stack) => new aws.DatabaseBackup(stack, 'Orders', props()));
    const service = s.one('aws_ecs_service');
    assert.equal(service.desired_count, 1);
    assert.equal(service.deployment_minimum_healthy_percent, 0);
    assert.equal(service.deployment_maximum_percent, 100);
    assert.equal(service.launch_type, 'FARGATE');
    assert.deepEqual(service.network_configuration.subnets, NETWORK.subnetIds);
    const defs = s.all('aws_ecs_task_definition').map((td) => JSON.parse(td.container_definitions)[0]);
    const shipper = defs.find((c) => c.command[0] === RunnerCommand.BINLOG_STREAM);
    assert.ok(shipper !== undefined, 'no binlog-stream task definition');
    const env = envMap(shipper.environment);
    assert.equal(env[RUNNER_ENV.BINLOG_UPLOAD_INTERVAL], '30');
    assert.equal(env[RUNNER_ENV.DATABASE_ID], 'orders');
    assert.ok(!JSON.stringify(shipper).includes('timeout'), 'a long-running shipper has no timeout wrapper');
    // The bucket and key are Terraform references until apply; the runner sees names.
    const inv = parseInvocation([RunnerCommand.BINLOG_STREAM], {
      ...env,
      DBBACKUP_TO: 's3://acme-backups/orders',
      DBBACKUP_ENCRYPT: `kms:${KEY_ARN}`,
    });
    assert.ok(!(inv instanceof HelpRequest) && inv.command === RunnerCommand.BINLOG_STREAM);
    const role = policy(s.at('aws_iam_role_policy', 'BinlogShipper/TaskRolePolicy').policy);
    const actions = allowedActions(role);
    assert.ok(actions.includes('s3:PutObject'), `${actions}`);
    assert.ok(
      actions.every((a) => !/Delete|PutLifecycle|PutBucketPolicy|\*/.test(a)),
      `no delete: ${actions}`,
    );
  });

  test('a lag alarm: LogShippingLagSeconds (Maximum) above the threshold, missing data breaching, to the topic', () => {
    const s = synthAws(
      (stack) =>
        new aws.DatabaseBackup(
          stack,
          'Orders',
          props({ pointInTimeRecovery: { logShippingLagThreshold: Duration.minutes(10) } }),
        ),
    );
    const lag = s.all('aws_cloudwatch_metric_alarm').filter((a) => a.metric_name === METRICS.LOG_LAG);
    assert.equal(lag.length, 1);
    assert.equal(lag[0].statistic, 'Maximum');
    assert.equal(lag[0].threshold, 600);
    assert.equal(lag[0].period, 60);
    assert.equal(lag[0].evaluation_periods, 5);
    assert.equal(lag[0].treat_missing_data, 'breaching');
    assert.deepEqual(lag[0].dimensions, { [METRIC_DIMENSION]: 'orders' });
    assert.match(lag[0].alarm_actions[0], /aws_sns_topic\./);
    assert.throws(
      () =>
        synthAws(
          (stack) =>
            new aws.DatabaseBackup(
              stack,
              'Orders',
              props({
                pointInTimeRecovery: {
                  uploadInterval: Duration.minutes(5),
                  logShippingLagThreshold: Duration.minutes(6),
                },
              }),
            ),
        ),
      /logShippingLagThreshold is 360 seconds, but the shipper uploads every 300 seconds/,
    );
    const none = synthAws(
      (stack) => new aws.DatabaseBackup(stack, 'Orders', props({ pointInTimeRecovery: undefined })),
    );
    assert.ok(!none.all('aws_cloudwatch_metric_alarm').some((a) => a.metric_name === METRICS.LOG_LAG));
  });

  test('the new vault expires <prefix>/binlog/ after the days lib/core computes', () => {
    const s = synthAws((stack) => new aws.DatabaseBackup(stack, 'Orders', props()));
    const expected = logArchiveExpiry({ retention, fullSchedules: [weeklyFull.spec], pointInTimeDays: 7 })!;
    const rules = s.one('aws_s3_bucket_lifecycle_configuration').rule as any[];
    const logs = rules.filter((r) => r.filter?.[0]?.prefix === 'orders/binlog/');
    assert.deepEqual(
      logs.map((r) => r.expiration[0].days),
      [expected.days],
    );
  });

  test('an existing vault gets no rule: a warning names the prefix and the days', () => {
    let w: string[] = [];
    const s = synthAws((stack) => {
      const vault = aws.BackupVault.fromExisting(stack, 'Theirs', {
        bucket: { bucket: 'their-bucket', arn: 'arn:aws:s3:::their-bucket' },
        key: { arn: KEY_ARN },
      });
      const b = new aws.DatabaseBackup(stack, 'Orders', props({ vault, retention: undefined }));
      w = warnings(b);
    });
    assert.equal(s.count('aws_s3_bucket_lifecycle_configuration'), 0);
    assert.ok(
      w.some((m) =>
        /no lifecycle rule expires the binary log archive: add one expiring orders\/binlog\/ after \d+ days/.test(m),
      ),
      w.join('\n'),
    );
  });

  test('PostgreSQL and MongoDB sources are refused, saying what to do instead', () => {
    assert.throws(
      () => synthAws((stack) => new aws.DatabaseBackup(stack, 'Orders', props({ source: source('postgres') }))),
      /PostgreSQL's WAL is archived by the server itself.*archive_command = 'dbbackup wal-push %p/,
    );
    assert.throws(
      () => synthAws((stack) => new aws.DatabaseBackup(stack, 'Orders', props({ source: source('mongodb') }))),
      /pointInTimeRecovery is set for a MongoDB source, which ships no log/,
    );
    assert.throws(
      () =>
        synthAws(
          (stack) =>
            new aws.DatabaseBackup(
              stack,
              'Orders',
              props({ pointInTimeRecovery: { uploadInterval: Duration.seconds(5) } }),
            ),
        ),
      /uploadInterval is 5 seconds; use whole seconds from 10 seconds to 1 hour/,
    );
  });

  test('without pointInTimeRecovery there is no shipper and no log rule', () => {
    const s = synthAws((stack) => new aws.DatabaseBackup(stack, 'Orders', props({ pointInTimeRecovery: undefined })));
    assert.equal(s.count('aws_ecs_service'), 0);
    const rules = s.one('aws_s3_bucket_lifecycle_configuration').rule as any[];
    assert.ok(!rules.some((r) => /binlog/.test(JSON.stringify(r.filter ?? ''))));
  });
});
