import * as crypto from 'node:crypto';
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Duration, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import {
  BackupSchedule,
  BackupSource,
  BackupType,
  DatabaseBackup,
  type DatabaseBackupProps,
  PointInTimeRecovery,
  Retention,
} from '../../lib';
import { METRIC_NAMESPACE } from '../../lib/core';
import { parseInvocation, type BinlogStreamConfig } from '../../runner/src/config';
import { assertNagClean, endpointOptions, newStack, newVpc, resourcesOf } from './helpers';

/** What ECS would inject from a task's Secrets: made per run, never a literal. */
const INJECTED_SECRET = crypto.randomBytes(9).toString('hex');

function mysqlSource(stack: Stack): BackupSource {
  return BackupSource.mysql(endpointOptions(stack, { endpoint: 'orders.db.internal', databaseName: 'orders' }));
}

function pitrStack(props: Partial<DatabaseBackupProps> = {}) {
  const stack = newStack();
  const backup = new DatabaseBackup(stack, 'Orders', {
    source: mysqlSource(stack),
    vpc: newVpc(stack),
    pointInTimeRecovery: PointInTimeRecovery.enabled(),
    ...props,
  });
  const t = Template.fromStack(stack);
  return { stack, backup, t };
}

/** The shipper's task definition (the one whose runner runs binlog-stream). */
function shipperTask(t: Template): any {
  const found = resourcesOf(t, 'AWS::ECS::TaskDefinition').filter(([, td]) =>
    td.Properties.ContainerDefinitions.some((c: any) => c.Name === 'runner' && c.Command?.[0] === 'binlog-stream'),
  );
  assert.equal(found.length, 1, 'exactly one task definition runs binlog-stream');
  return found[0][1].Properties;
}

describe('DatabaseBackup pointInTimeRecovery (MySQL/MariaDB binlog shipper)', () => {
  test('off by default: no service, no lag alarm', () => {
    const { backup, t } = pitrStack({ pointInTimeRecovery: undefined });
    t.resourceCountIs('AWS::ECS::Service', 0);
    assert.equal(backup.binlogShipper, undefined);
    assert.equal(backup.logShippingLagAlarm, undefined);
    assert.equal(JSON.stringify(t.toJSON()).includes('LogShippingLagSeconds'), false);
  });

  test('a one-task service: desired count 1, never two shippers at once, circuit breaker with rollback', () => {
    const { backup, t } = pitrStack();
    t.resourceCountIs('AWS::ECS::Service', 1);
    t.hasResourceProperties('AWS::ECS::Service', {
      DesiredCount: 1,
      LaunchType: 'FARGATE',
      DeploymentConfiguration: {
        MinimumHealthyPercent: 0,
        MaximumPercent: 100,
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
      },
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
    });
    assert.ok(backup.binlogShipper !== undefined);
    assert.equal(backup.binlogShipper.node.path, 'Test/Orders/BinlogShipper');
  });

  test(
    'same network as the backup runner: its security group ' + 'and private subnets, so connections covers the shipper',
    () => {
      const { stack, t } = pitrStack();
      const service = resourcesOf(t, 'AWS::ECS::Service')[0][1].Properties;
      const net = service.NetworkConfiguration.AwsvpcConfiguration;
      const runnerGroup = resourcesOf(t, 'AWS::EC2::SecurityGroup').find(([id]) =>
        id.startsWith('OrdersSecurityGroup'),
      )![0];
      assert.deepEqual(net.SecurityGroups, [{ 'Fn::GetAtt': [runnerGroup, 'GroupId'] }]);
      const vpc = stack.node.findChild('Vpc') as ec2.Vpc;
      assert.deepEqual(
        net.Subnets,
        vpc.privateSubnets.map((s) => stack.resolve(s.subnetId)),
      );
      // The backup schedules use the same group.
      const schedule = resourcesOf(t, 'AWS::Scheduler::Schedule').find(([id]) =>
        id.startsWith('OrdersFullSchedule'),
      )![1].Properties;
      assert.deepEqual(
        schedule.Target.EcsParameters.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups,
        net.SecurityGroups,
      );
    },
  );

  test(
    'the container: binlog-stream, its environment parses with ' +
      "the runner's own parser, the password only as an ECS secret",
    () => {
      const { t } = pitrStack({
        pointInTimeRecovery: PointInTimeRecovery.enabled({
          uploadInterval: Duration.seconds(30),
          logShippingLagThreshold: Duration.minutes(2),
        }),
      });
      const resources = t.toJSON().Resources as Record<string, { Type: string }>;
      const td = shipperTask(t);
      const c = td.ContainerDefinitions.find((x: any) => x.Name === 'runner');
      assert.deepEqual(c.Command, ['binlog-stream']);
      assert.deepEqual(c.EntryPoint, ['node', '/opt/dbbackup/dbbackup.js']);
      assert.equal(c.StopTimeout, 120);
      const resolve = (v: unknown): string => {
        if (typeof v === 'string') return v;
        const o = v as Record<string, any>;
        if (o['Fn::Join']) return (o['Fn::Join'][1] as unknown[]).map(resolve).join(o['Fn::Join'][0]);
        if (o.Ref !== undefined && resources[o.Ref]?.Type === 'AWS::S3::Bucket') return 'orders-vault';
        if (o['Fn::GetAtt'] && resources[o['Fn::GetAtt'][0]]?.Type === 'AWS::KMS::Key')
          return 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
        throw new Error(`cannot resolve ${JSON.stringify(v)}`);
      };
      const env: Record<string, string> = {};
      for (const e of c.Environment) env[e.Name] = resolve(e.Value);
      assert.equal(env.DBBACKUP_DATABASE_ID, 'orders');
      assert.equal(env.DBBACKUP_BINLOG_UPLOAD_INTERVAL, '30');
      assert.equal(
        Object.keys(env).some((k) => /PASSWORD/.test(k)),
        false,
        'no password in the environment',
      );
      assert.deepEqual(
        c.Secrets.map((s: any) => s.Name),
        ['DBBACKUP_SOURCE_PASSWORD'],
      );
      assert.match(JSON.stringify(c.Secrets[0].ValueFrom), /:password::/);
      for (const s of c.Secrets) env[s.Name] = INJECTED_SECRET;

      const cfg = parseInvocation(c.Command, env) as BinlogStreamConfig;
      assert.equal(cfg.command, 'binlog-stream');
      assert.equal(cfg.engine, 'mysql');
      assert.equal(cfg.source.host, 'orders.db.internal');
      assert.equal(cfg.source.port, 3306);
      assert.equal(cfg.source.user, 'backup');
      assert.equal(cfg.to.kind, 's3');
      assert.equal(cfg.to.bucket, 'orders-vault');
      assert.equal(cfg.to.path, 'orders');
      assert.equal(cfg.compression, 'zstd');
      assert.equal(cfg.encryption.scheme, 'kms');
    },
  );

  test(
    'the task role writes under the database prefix and never ' +
      'deletes; the log group is encrypted with the operations key',
    () => {
      const { t } = pitrStack();
      const roleId = shipperTask(t).TaskRoleArn['Fn::GetAtt'][0];
      const policies = resourcesOf(t, 'AWS::IAM::Policy').filter(([, p]) =>
        p.Properties.Roles.some((r: any) => r.Ref === roleId),
      );
      assert.equal(policies.length, 1);
      const text = JSON.stringify(policies[0][1].Properties.PolicyDocument);
      assert.match(text, /s3:PutObject/);
      assert.match(text, /\/orders\/\*/);
      assert.equal(/s3:Delete|"s3:\*"|"kms:\*"/.test(text), false);
      const logConfig = shipperTask(t).ContainerDefinitions[0].LogConfiguration.Options;
      const group = resourcesOf(t, 'AWS::Logs::LogGroup').find(([id]) => id === logConfig['awslogs-group'].Ref)![1]
        .Properties;
      assert.ok(group.KmsKeyId !== undefined);
      assert.equal(logConfig['awslogs-stream-prefix'], 'binlog-stream');
    },
  );

  test(
    'lag alarm: LogShippingLagSeconds (Maximum) above the ' + 'threshold, missing data breaching, to the alarm topic',
    () => {
      const { backup, t } = pitrStack();
      const found = resourcesOf(t, 'AWS::CloudWatch::Alarm').filter(
        ([, a]) => a.Properties.MetricName === 'LogShippingLagSeconds',
      );
      assert.equal(found.length, 1);
      const a = found[0][1].Properties;
      assert.equal(a.Namespace, METRIC_NAMESPACE);
      assert.deepEqual(a.Dimensions, [{ Name: 'DatabaseId', Value: 'orders' }]);
      assert.equal(a.Statistic, 'Maximum');
      assert.equal(a.Threshold, 300);
      assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
      assert.equal(a.TreatMissingData, 'breaching');
      assert.equal(a.Period, 60);
      const topic = resourcesOf(t, 'AWS::SNS::Topic')[0][0];
      assert.deepEqual(a.AlarmActions, [{ Ref: topic }]);
      assert.deepEqual(a.OKActions, [{ Ref: topic }]);
      assert.ok(backup.logShippingLagAlarm !== undefined);
      assert.ok(backup.alarms.includes(backup.logShippingLagAlarm));
      // The task-failed rule also watches the shipper's task definition; the dashboard graphs the lag.
      const rule = resourcesOf(t, 'AWS::Events::Rule').find(([id]) => id.includes('TaskFailedRule'))![1].Properties;
      assert.equal(rule.EventPattern.detail.taskDefinitionArn.length, 3);
      assert.match(
        JSON.stringify(resourcesOf(t, 'AWS::CloudWatch::Dashboard')[0][1].Properties.DashboardBody),
        /LogShippingLagSeconds/,
      );
    },
  );

  test(
    'cdk-nag AwsSolutions and NIST 800-53 rev 5 report nothing ' +
      "unacknowledged in the construct's tree with the shipper on",
    () => {
      const { stack } = pitrStack();
      assertNagClean(stack, 'Test/Orders/');
    },
  );

  test('a custom threshold and a slower upload interval: the threshold and the period follow', () => {
    const { t } = pitrStack({
      pointInTimeRecovery: PointInTimeRecovery.enabled({
        logShippingLagThreshold: Duration.minutes(15),
        uploadInterval: Duration.seconds(150),
      }),
    });
    const a = resourcesOf(t, 'AWS::CloudWatch::Alarm').find(
      ([, x]) => x.Properties.MetricName === 'LogShippingLagSeconds',
    )![1].Properties;
    assert.equal(a.Threshold, 900);
    assert.equal(a.Period, 180);
  });

  test('a threshold the shipper cannot meet in normal work is refused, naming both values', () => {
    assert.throws(
      () =>
        PointInTimeRecovery.enabled({
          logShippingLagThreshold: Duration.minutes(1),
          uploadInterval: Duration.seconds(60),
        }),
      /logShippingLagThreshold is 1 minute.*uploads every 1 minute.*at least twice the upload interval/,
    );
    assert.throws(
      () => PointInTimeRecovery.enabled({ uploadInterval: Duration.seconds(5) }),
      /uploadInterval is 5 seconds; use whole seconds from 10 seconds/,
    );
  });

  test('an RDS PostgreSQL instance is refused: no replication connection; its own PITR instead', () => {
    const stack = newStack();
    const vpc = newVpc(stack);
    const instance = new rds.DatabaseInstance(stack, 'Db', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16 }),
      vpc,
    });
    assert.throws(
      () =>
        new DatabaseBackup(stack, 'Orders', {
          source: BackupSource.fromRdsInstance(instance, { databaseName: 'orders', username: 'backup' }),
          vpc,
          pointInTimeRecovery: PointInTimeRecovery.enabled(),
        }),
      new RegExp(
        /PostgreSQL source on RDS or Aurora.*needs a replication connection.*nor does it archive the log /.source +
          /anywhere else: use the service's own automated backups and point-in-time restore/.source,
      ),
    );
  });

  test('MongoDB is refused as not supported', () => {
    const stack = newStack();
    const source = BackupSource.mongodb(endpointOptions(stack, { endpoint: 'mongo.internal' }));
    assert.throws(
      () =>
        new DatabaseBackup(stack, 'Orders', {
          source,
          vpc: newVpc(stack),
          pointInTimeRecovery: PointInTimeRecovery.enabled(),
        }),
      /pointInTimeRecovery is set for a MongoDB source, which the runner does not support/,
    );
  });

  test('window: the chain retention check runs and names the setting to change', () => {
    // Weekly fulls with a 30-day window need the weekly tier kept 37 days; the default keeps 4 weeks.
    const weekly = [
      { type: BackupType.FULL, schedule: BackupSchedule.cron({ weekDay: 'SUN', hour: '2', minute: '0' }) },
    ];
    assert.throws(
      () =>
        pitrStack({
          schedules: weekly,
          pointInTimeRecovery: PointInTimeRecovery.enabled({ window: Duration.days(30) }),
        }),
      new RegExp(
        /pointInTimeRecovery window is 30 days.*weekly tier is kept 28 d/.source +
          /ays.*raise retention weekly to at least 6.*Or shorten the window/.source,
      ),
    );
    // The default nightly full with the default daily tier (7 days) holds a 6-day window, not 7.
    assert.throws(
      () => pitrStack({ pointInTimeRecovery: PointInTimeRecovery.enabled({ window: Duration.days(7) }) }),
      /daily tier is kept 7 days but must stay 8 days/,
    );
    assert.doesNotThrow(() =>
      pitrStack({ pointInTimeRecovery: PointInTimeRecovery.enabled({ window: Duration.days(6) }) }),
    );
    const { t } = pitrStack({
      schedules: weekly,
      retention: Retention.gfs({ weekly: 6 }),
      pointInTimeRecovery: PointInTimeRecovery.enabled({ window: Duration.days(30) }),
    });
    t.resourceCountIs('AWS::ECS::Service', 1);
  });
});
