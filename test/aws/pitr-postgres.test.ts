// pointInTimeRecovery for a self-managed PostgreSQL source: `dbbackup wal-receive` as a one-task
// ECS service (the same LogShipper as MySQL's binlog-stream), its lag alarm on
// WalStreamingLagSeconds, and the lifecycle rule that expires PREFIX/wal/.
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as rds from 'aws-cdk-lib/aws-rds';
import { BackupSource, DatabaseBackup, type DatabaseBackupProps, PointInTimeRecovery, Retention } from '../../lib';
import { METRICS } from '../../lib/core';
import { ENGINE_CAPABILITIES } from '../../lib/core/engines';
import { Engine } from '../../lib/core/model';
import { parseInvocation, type WalReceiveConfig } from '../../runner/src/config';
import { assertNagClean, newStack, newVpc, postgresSource, resourcesOf } from './helpers';

function pgStack(props: Partial<DatabaseBackupProps> = {}) {
  const stack = newStack();
  const backup = new DatabaseBackup(stack, 'Orders', {
    source: postgresSource(stack),
    vpc: newVpc(stack),
    prefix: 'orders',
    pointInTimeRecovery: PointInTimeRecovery.enabled(),
    ...props,
  });
  return { stack, backup, t: Template.fromStack(stack) };
}

function shipperContainer(t: Template): any {
  const found = resourcesOf(t, 'AWS::ECS::TaskDefinition')
    .flatMap(([, td]) => td.Properties.ContainerDefinitions as any[])
    .filter((c) => c.Name === 'runner' && c.Command?.[0] === 'wal-receive');
  assert.equal(found.length, 1, 'exactly one task definition runs wal-receive');
  return found[0];
}

describe('DatabaseBackup pointInTimeRecovery (self-managed PostgreSQL: wal-receive)', () => {
  test("the engine's record names streaming for PostgreSQL, self-managed servers only", () => {
    const s = ENGINE_CAPABILITIES[Engine.POSTGRES].logStreaming!;
    assert.equal(s.command, 'wal-receive');
    assert.equal(s.lagMetric, METRICS.WAL_STREAMING_LAG);
    assert.equal(s.selfManagedOnly, true);
    assert.equal(ENGINE_CAPABILITIES[Engine.MYSQL].logStreaming!.selfManagedOnly, false);
  });

  test(
    'a one-task service runs wal-receive; its environment ' + 'parses with the runner, the password only as a secret',
    () => {
      const { backup, t } = pgStack({
        pointInTimeRecovery: PointInTimeRecovery.enabled({
          partialSegmentInterval: Duration.seconds(3),
          replicationSlot: 'orders_backup',
        }),
      });
      t.resourceCountIs('AWS::ECS::Service', 1);
      t.hasResourceProperties('AWS::ECS::Service', {
        DesiredCount: 1,
        DeploymentConfiguration: { MinimumHealthyPercent: 0, MaximumPercent: 100 },
      });
      assert.equal(backup.logShipper?.node.path, 'Test/Orders/WalShipper');
      assert.equal(backup.binlogShipper, undefined);
      const c = shipperContainer(t);
      assert.equal(c.StopTimeout, 120);
      const env: Record<string, string> = {};
      for (const e of c.Environment as { Name: string; Value: unknown }[]) {
        // Bucket and key references stand in for what CloudFormation fills in.
        env[e.Name] =
          typeof e.Value === 'string'
            ? e.Value
            : e.Name === 'DBBACKUP_TO'
              ? 's3://bucket/orders'
              : 'kms:arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
      }
      assert.equal(
        Object.keys(env).some((k) => /PASSWORD/.test(k)),
        false,
      );
      assert.deepEqual(
        (c.Secrets as { Name: string }[]).map((x) => x.Name),
        ['DBBACKUP_SOURCE_PASSWORD'],
      );
      const inv = parseInvocation(['wal-receive'], env) as WalReceiveConfig;
      assert.equal(inv.command, 'wal-receive');
      assert.equal(inv.source.display, 'postgres://backup@db.internal:5432/app');
      assert.equal(inv.slot, 'orders_backup');
      assert.equal(inv.createSlot, true);
      assert.equal(inv.partialIntervalMs, 3000);
      assert.equal(inv.encryption.scheme, 'kms');
    },
  );

  test('the lag alarm watches WalStreamingLagSeconds, and metricLogShippingLag names it', () => {
    const { stack, backup, t } = pgStack({
      pointInTimeRecovery: PointInTimeRecovery.enabled({ logShippingLagThreshold: Duration.minutes(2) }),
    });
    const alarms = resourcesOf(t, 'AWS::CloudWatch::Alarm').filter(
      ([, a]) => a.Properties.MetricName === METRICS.WAL_STREAMING_LAG,
    );
    assert.equal(alarms.length, 1);
    assert.equal(alarms[0][1].Properties.Threshold, 120);
    assert.equal(alarms[0][1].Properties.Period, 60);
    assert.equal(alarms[0][1].Properties.TreatMissingData, 'breaching');
    assert.match(alarms[0][1].Properties.AlarmDescription, /The WAL shipper of/);
    assert.equal(JSON.stringify(t.toJSON()).includes(METRICS.LOG_LAG), false);
    assert.equal(stack.resolve(backup.metricLogShippingLag().metricName), METRICS.WAL_STREAMING_LAG);
  });

  test('the WAL archive expires by a lifecycle rule on PREFIX/wal/', () => {
    const { t } = pgStack({
      retention: Retention.gfs({ daily: 8, weekly: 4, monthly: 12 }),
      pointInTimeRecovery: PointInTimeRecovery.enabled({ window: Duration.days(7) }),
    });
    const rules = resourcesOf(t, 'AWS::S3::Bucket').flatMap(
      ([, b]) => (b.Properties.LifecycleConfiguration?.Rules ?? []) as any[],
    );
    const wal = rules.filter((r) => r.Prefix === 'orders/wal/');
    assert.equal(wal.length, 1, JSON.stringify(rules));
    assert.equal(wal[0].ExpirationInDays, 9, '7 window + 1 longest gap + 1 slack');
    assert.equal(
      rules.some((r) => r.Prefix === 'orders/binlog/'),
      false,
    );
  });

  test(
    'cdk-nag AwsSolutions and NIST 800-53 rev 5 report nothing ' +
      "unacknowledged in the construct's tree with the WAL shipper on",
    () => {
      const { stack } = pgStack();
      assertNagClean(stack, 'Test/Orders/');
    },
  );

  test('an RDS PostgreSQL source stays refused, saying what to do instead', () => {
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
        /PostgreSQL source on RDS or Aurora.*needs a replication connection.*/.source +
          /use the service's own automated backups and point-in-time restore/.source,
      ),
    );
  });

  test('partialSegmentInterval and replicationSlot are checked, naming the value and the fix', () => {
    assert.throws(
      () => PointInTimeRecovery.enabled({ partialSegmentInterval: Duration.millis(500) }),
      /partialSegmentInterval is 500 millis; use whole seconds from 1 second to 1 hour/,
    );
    assert.throws(
      () => PointInTimeRecovery.enabled({ replicationSlot: 'Orders-Slot' }),
      /replicationSlot is 'Orders-Slot'; use lower-case letters, digits and underscores/,
    );
  });
});
