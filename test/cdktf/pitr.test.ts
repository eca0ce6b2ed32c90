// CDKTF point-in-time recovery: the log shipper as a one-task ECS service (AWS) or one Cloud Run
// worker pool instance (Google), its lag alarm from the engine's record, and the log archive's
// lifecycle rule at the days lib/core logArchiveExpiry gives, for MySQL/MariaDB and PostgreSQL.
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import * as aws from '../../lib/cdktf/aws';
import * as google from '../../lib/cdktf/google';
import { BackupSchedule, BackupType, Duration, PointInTimeRecovery, Retention } from '../../lib/cdktf/aws';
import { Engine, METRICS, RunnerCommand, logArchiveExpiry } from '../../lib/core';
import { parseInvocation } from '../../runner/src/config';
import { synthAws, synthGoogle } from './helpers';

const SECRET = { arn: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:dbbackup/orders-AbCdEf' };
const IMAGE = () => aws.RunnerImage.fromImageUri('111122223333.dkr.ecr.eu-west-1.amazonaws.com/dbbackup:1.2.3');
const NETWORK = { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'] };
const nightly = BackupSchedule.cron({ hour: '2', minute: '30' });
const retention = Retention.gfs({ daily: 8, weekly: 4, monthly: 12 });
const window = Duration.days(7);

const SOURCES: Record<'mysql' | 'postgres', () => aws.BackupSource> = {
  mysql: () =>
    aws.BackupSource.mariadb({ url: 'mariadb://backup@orders.internal:3306/orders', passwordSecret: SECRET }),
  postgres: () =>
    aws.BackupSource.postgres({ url: 'postgres://backup@orders.internal:5432/orders', passwordSecret: SECRET }),
};

function awsBackup(engine: 'mysql' | 'postgres', pitr = PointInTimeRecovery.enabled({ window })) {
  let backup: aws.DatabaseBackup | undefined;
  const s = synthAws((stack) => {
    backup = new aws.DatabaseBackup(stack, 'Orders', {
      source: SOURCES[engine](),
      image: IMAGE(),
      network: NETWORK,
      schedules: [{ type: BackupType.FULL, schedule: nightly }],
      retention,
      pointInTimeRecovery: pitr,
      drill: { enabled: false },
    });
  });
  return { s, backup: backup! };
}

const expected = logArchiveExpiry({ retention, fullSchedules: [nightly.spec], pointInTimeDays: 7 })!.days;

describe('CDKTF point-in-time recovery on AWS', () => {
  for (const [engine, command, folder, metric] of [
    ['mysql', RunnerCommand.BINLOG_STREAM, 'binlog', METRICS.LOG_LAG],
    ['postgres', RunnerCommand.WAL_RECEIVE, 'wal', METRICS.WAL_STREAMING_LAG],
  ] as const) {
    test(`${engine}: ${command} runs as a one-task ECS service, never two at once`, () => {
      const { s, backup } = awsBackup(engine);
      const service = s.one('aws_ecs_service');
      assert.equal(service.desired_count, 1);
      assert.equal(service.launch_type, 'FARGATE');
      assert.equal(service.deployment_minimum_healthy_percent, 0);
      assert.equal(service.deployment_maximum_percent, 100);
      assert.deepEqual(service.network_configuration.subnets, NETWORK.subnetIds);
      const shipper = backup.logShipper!;
      assert.equal(shipper.node.id, engine === 'mysql' ? 'BinlogShipper' : 'WalShipper');
      assert.equal(shipper.command, command);
      const def = s.at('aws_ecs_task_definition', 'TaskDefinition');
      const container = JSON.parse(def.container_definitions)[0];
      assert.deepEqual(container.command, [command]);
      assert.equal(container.entryPoint.includes('timeout'), false, 'a long-running process has no timeout');
      assert.equal(container.secrets[0].name, 'DBBACKUP_SOURCE_PASSWORD');
      // The runner's own parser takes the rendered environment.
      const env = Object.fromEntries(container.environment.map((e: any) => [e.name, e.value]));
      assert.match(env.DBBACKUP_TO, /^s3:\/\/\$\{.+\}\/orders$/);
      const parsed = parseInvocation([command], {
        ...env,
        DBBACKUP_TO: 's3://acme-backups/orders',
        DBBACKUP_ENCRYPT: 'kms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      }) as any;
      assert.equal(parsed.command, command);
      // The task role writes the prefix and can never delete.
      const policies = s.all('aws_iam_role_policy').map((p) => JSON.parse(p.policy));
      const actions = policies.flatMap((p) => p.Statement.flatMap((st: any) => [st.Action].flat()));
      assert.equal(
        actions.some((a: string) => /^s3:Delete/.test(a)),
        false,
      );
    });

    test(`${engine}: the lag alarm watches ${metric}, missing data breaching`, () => {
      const { s, backup } = awsBackup(engine);
      const alarm = s.at('aws_cloudwatch_metric_alarm', 'LogShippingLag');
      assert.equal(alarm.metric_name, metric);
      assert.equal(alarm.threshold, 300);
      assert.equal(alarm.treat_missing_data, 'breaching');
      assert.equal(alarm.evaluation_periods, 5);
      assert.equal(alarm.period, 60);
      assert.deepEqual(alarm.dimensions, { DatabaseId: 'orders' });
      assert.ok(backup.alarms.includes(backup.logShippingLagAlarm!));
    });

    test(`${engine}: the ${folder}/ archive expires after the days lib/core logArchiveExpiry gives`, () => {
      const { s, backup } = awsBackup(engine);
      const rules = s.one('aws_s3_bucket_lifecycle_configuration').rule as any[];
      const rule = rules.find((r) => r.filter?.[0]?.prefix === `orders/${folder}/`);
      assert.ok(rule, `a rule on orders/${folder}/`);
      assert.equal(rule.expiration[0].days, expected);
      assert.equal(backup.logArchiveDays, expected);
      assert.equal(expected, 9, '7 days of window + 1 day between fulls + 1 of slack');
    });
  }

  test('without a window, the archive is kept as long as the longest-kept full that may replay it', () => {
    const { backup } = awsBackup('mysql', PointInTimeRecovery.enabled());
    assert.equal(
      backup.logArchiveDays,
      logArchiveExpiry({ retention, fullSchedules: [nightly.spec], pointInTimeDays: 0 })!.days,
    );
  });

  test('the upload interval and threshold reach the runner and the alarm', () => {
    const { s } = awsBackup(
      'mysql',
      PointInTimeRecovery.enabled({
        uploadInterval: Duration.seconds(120),
        logShippingLagThreshold: Duration.minutes(10),
      }),
    );
    const container = JSON.parse(s.at('aws_ecs_task_definition', 'TaskDefinition').container_definitions)[0];
    const env = Object.fromEntries(container.environment.map((e: any) => [e.name, e.value]));
    assert.equal(env.DBBACKUP_BINLOG_UPLOAD_INTERVAL, '120');
    const alarm = s.at('aws_cloudwatch_metric_alarm', 'LogShippingLag');
    assert.equal(alarm.threshold, 600);
    assert.equal(alarm.period, 120);
  });

  test('refusals: RDS PostgreSQL, MongoDB, and a threshold below twice the upload interval', () => {
    assert.throws(
      () =>
        synthAws((stack) => {
          new aws.DatabaseBackup(stack, 'Orders', {
            source: aws.BackupSource.postgres({
              url: 'postgres://backup@orders.abc123.eu-west-1.rds.amazonaws.com:5432/orders',
              passwordSecret: SECRET,
            }),
            image: IMAGE(),
            network: NETWORK,
            pointInTimeRecovery: PointInTimeRecovery.enabled(),
          });
        }),
      /PostgreSQL source on RDS or Aurora.*replication connection.*automated backups/,
    );
    assert.throws(
      () =>
        synthAws((stack) => {
          new aws.DatabaseBackup(stack, 'Orders', {
            source: aws.BackupSource.mongodb({
              url: 'mongodb://backup@orders.internal:27017/orders',
              passwordSecret: SECRET,
            }),
            image: IMAGE(),
            network: NETWORK,
            pointInTimeRecovery: PointInTimeRecovery.enabled(),
          });
        }),
      /MongoDB source, which the runner does not support/,
    );
    assert.throws(
      () => PointInTimeRecovery.enabled({ logShippingLagThreshold: Duration.seconds(90) }),
      /logShippingLagThreshold is 1 minute 30 seconds.*at least twice the upload interval/,
    );
  });

  test('RDS MySQL streams its binary log (a managed MySQL allows a binlog client)', () => {
    const s = synthAws((stack) => {
      new aws.DatabaseBackup(stack, 'Orders', {
        source: aws.BackupSource.mysql({
          url: 'mysql://backup@orders.abc123.eu-west-1.rds.amazonaws.com:3306/orders',
          passwordSecret: SECRET,
        }),
        image: IMAGE(),
        network: NETWORK,
        pointInTimeRecovery: PointInTimeRecovery.enabled(),
        drill: { enabled: false },
      });
    });
    assert.equal(s.count('aws_ecs_service'), 1);
  });
});

const GSOURCES: Record<'mysql' | 'postgres', () => google.BackupSource> = {
  mysql: () =>
    google.BackupSource.mariadb({
      url: 'mariadb://backup@10.20.0.5:3306/orders',
      passwordSecret: { id: 'projects/acme-prod/secrets/pw' },
    }),
  postgres: () =>
    google.BackupSource.postgres({
      url: 'postgres://backup@10.20.0.5:5432/orders',
      passwordSecret: { id: 'projects/acme-prod/secrets/pw' },
    }),
};

function googleBackup(source: google.BackupSource) {
  let backup: google.DatabaseBackup | undefined;
  const s = synthGoogle((stack) => {
    backup = new google.DatabaseBackup(stack, 'Orders', {
      project: 'acme-prod',
      region: 'europe-west1',
      source,
      image: google.RunnerImage.fromImageUri('europe-west1-docker.pkg.dev/acme-prod/dbbackup/dbbackup:1.2.3'),
      schedules: [{ type: BackupType.FULL, schedule: nightly }],
      retention,
      pointInTimeRecovery: google.PointInTimeRecovery.enabled({ window }),
      alarmEmails: ['oncall@example.com'],
      drill: { enabled: false },
    });
  });
  return { s, backup: backup! };
}

describe('CDKTF point-in-time recovery on Google Cloud', () => {
  for (const [engine, command, folder, metric] of [
    ['mysql', RunnerCommand.BINLOG_STREAM, 'binlog', METRICS.LOG_LAG],
    ['postgres', RunnerCommand.WAL_RECEIVE, 'wal', METRICS.WAL_STREAMING_LAG],
  ] as const) {
    test(`${engine}: ${command} on one always-on Cloud Run worker pool instance, alerted on lag and silence`, () => {
      const { s, backup } = googleBackup(GSOURCES[engine]());
      const pool = s.one('google_cloud_run_v2_worker_pool');
      assert.deepEqual(pool.scaling, { scaling_mode: 'MANUAL', manual_instance_count: 1 });
      const container = pool.template.containers[0];
      assert.deepEqual(container.args, [command]);
      const env = Object.fromEntries(container.env.filter((e: any) => e.value).map((e: any) => [e.name, e.value]));
      assert.equal(env.DBBACKUP_DATABASE_ID, 'orders');
      assert.equal(
        container.env.some((e: any) => e.name === 'DBBACKUP_SOURCE_PASSWORD' && e.value_source),
        true,
      );
      const lag = s.one('google_logging_metric');
      assert.equal(lag.value_extractor, `EXTRACT(jsonPayload.${metric})`);
      const alert = s.at('google_monitoring_alert_policy', 'LagAlert');
      assert.equal(alert.conditions[0].condition_threshold.threshold_value, 300);
      assert.ok(alert.conditions[1].condition_absent, 'a silent shipper alerts too');
      assert.ok(backup.alarms.includes(backup.logShipper!.lagAlert));
      assert.equal(backup.logShipper!.node.id, engine === 'mysql' ? 'BinlogShipper' : 'WalShipper');
    });

    test(`${engine}: a Delete rule expires orders/${folder}/ after the lib/core days`, () => {
      const { s, backup } = googleBackup(GSOURCES[engine]());
      const rules = s.one('google_storage_bucket').lifecycle_rule as any[];
      const rule = rules.find((r) => (r.condition.matches_prefix ?? []).includes(`orders/${folder}/`));
      assert.ok(rule, `a rule on orders/${folder}/`);
      assert.equal(rule.action.type, 'Delete');
      assert.equal(rule.condition.age, expected);
      assert.equal(backup.logArchiveDays, expected);
    });
  }

  test('a Cloud SQL PostgreSQL source is refused, naming the service and what to use', () => {
    assert.throws(
      () =>
        googleBackup(
          google.BackupSource.postgres({
            url: 'postgres://backup@localhost/orders?host=/cloudsql/acme-prod:europe-west1:orders',
            passwordSecret: { id: 'projects/acme-prod/secrets/pw' },
          }),
        ),
      /PostgreSQL source on Cloud SQL.*replication connection.*automated backups and point-in-time restore/,
    );
  });

  test('the engine record decides both flavours: the same command per engine', () => {
    assert.equal(
      googleBackup(GSOURCES.mysql()).backup.logShipper!.command,
      awsBackup('mysql').backup.logShipper!.command,
    );
    assert.equal(Engine.MYSQL, 'mysql');
  });
});
