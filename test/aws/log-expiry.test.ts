// The log archive's lifecycle rule and the retention simulation at synth (CDK): the bucket's
// rules are read back from the template and walked over two years of simulated backups and logs.
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Duration, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import {
  BackupSchedule,
  BackupSource,
  BackupType,
  BackupVault,
  DatabaseBackup,
  type DatabaseBackupProps,
  PointInTimeRecovery,
  Retention,
} from '../../lib';
import { LifecycleRuleSet, RetentionTier, simulateRetention, TIER_TAG_KEY } from '../../lib/core';
import { newSecret, newStack, newVpc, resourcesOf } from './helpers';

function mysqlSource(stack: Stack): BackupSource {
  return BackupSource.mysql({
    endpoint: 'orders.db.internal',
    databaseName: 'orders',
    username: 'backup',
    secret: newSecret(stack),
  });
}

function synth(props: Partial<DatabaseBackupProps> = {}) {
  const stack = newStack();
  const backup = new DatabaseBackup(stack, 'Orders', { source: mysqlSource(stack), vpc: newVpc(stack), ...props });
  return { stack, backup, t: Template.fromStack(stack) };
}

/** The backup bucket's lifecycle rules as the simulator takes them: days per tier tag, days per prefix. */
function ruleSetOf(t: Template): LifecycleRuleSet {
  const buckets = resourcesOf(t, 'AWS::S3::Bucket').filter(
    ([, b]) =>
      b.Properties.ObjectLockEnabled !== undefined ||
      b.Properties.BucketEncryption?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault
        ?.SSEAlgorithm === 'aws:kms',
  );
  assert.equal(buckets.length, 1, 'one backup bucket');
  const tierDays: Partial<Record<RetentionTier, number>> = {};
  const logPrefixDays: Record<string, number> = {};
  for (const r of buckets[0][1].Properties.LifecycleConfiguration.Rules as any[]) {
    if (r.ExpirationInDays === undefined) continue;
    const tag = (r.TagFilters ?? []).find((f: any) => f.Key === TIER_TAG_KEY);
    if (tag !== undefined) tierDays[tag.Value as RetentionTier] = r.ExpirationInDays;
    else if (r.Prefix !== undefined) logPrefixDays[r.Prefix] = r.ExpirationInDays;
  }
  return { tierDays, logPrefixDays };
}

const nightly = [{ type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: '2', minute: '30' }) }];

describe('log archive expiry and the retention simulation (CDK)', () => {
  test(
    'a 7-day window over nightly fulls expires orders/binlog/ ' +
      'after 9 days, and the template walks clean for two years',
    () => {
      const retention = Retention.gfs({ daily: 8, weekly: 4, monthly: 12 });
      const { t } = synth({
        schedules: nightly,
        retention,
        pointInTimeRecovery: PointInTimeRecovery.enabled({ window: Duration.days(7) }),
      });
      const rules = ruleSetOf(t);
      assert.deepEqual(rules.logPrefixDays, { 'orders/binlog/': 9 }, '7 window + 1 longest gap + 1 slack');
      assert.deepEqual(rules.tierDays, { daily: 8, weekly: 28, monthly: 372 });
      const fullCron = BackupSchedule.cron({ hour: '2', minute: '30' }).cronSpec!;
      const r = simulateRetention({
        schedules: [{ type: BackupType.FULL, cron: fullCron }],
        retention,
        rules,
        pointInTimeDays: 7,
      });
      assert.equal(r.ok, true, r.firstBreak?.reason);
      // And the rule is what it must be: a day less and the window breaks.
      const shorter = simulateRetention({
        schedules: [{ type: BackupType.FULL, cron: fullCron }],
        retention,
        rules: { ...rules, logPrefixDays: { 'orders/binlog/': 7 } },
        pointInTimeDays: 7,
      });
      assert.equal(shorter.ok, false);
    },
  );

  test(
    'without a window the logs live as long as the longest-kept ' +
      'full may replay them; without PITR there is no rule',
    () => {
      const on = ruleSetOf(synth({ schedules: nightly, pointInTimeRecovery: PointInTimeRecovery.enabled() }).t);
      assert.deepEqual(on.logPrefixDays, { 'orders/binlog/': 374 }, '372 (monthly) + 1 gap + 1 slack');
      const off = ruleSetOf(synth({ schedules: nightly }).t);
      assert.deepEqual(off.logPrefixDays, {});
    },
  );

  test('a window the daily tier cannot keep is refused at synth, naming the first day and backup', () => {
    assert.throws(
      () =>
        synth({
          schedules: nightly,
          retention: Retention.gfs({ daily: 7 }),
          pointInTimeRecovery: PointInTimeRecovery.enabled({ window: Duration.days(7) }),
        }),
      new RegExp(
        /pointInTimeRecovery window is 7 days, which the retention does not /.source +
          /keep: .*First break: on \d{4}-\d\d-\d\d backup \S+-full would break/.source,
      ),
    );
  });

  test('incremental chains that would break are refused at synth, not only warned', () => {
    assert.throws(
      () =>
        synth({
          schedules: [
            { type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: '1', weekDay: 'SUN' }) },
            { type: BackupType.INCREMENTAL, schedule: BackupSchedule.cron({ hour: '3' }) },
          ],
        }),
      /retention: First break: on \d{4}-\d\d-\d\d backup \S+-incremental would break/,
    );
  });

  test("dependant tasks get the tiers' days; full tasks do not need them", () => {
    const { t } = synth({
      schedules: [
        { type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: '1', weekDay: 'SUN' }) },
        { type: BackupType.DIFFERENTIAL, schedule: BackupSchedule.cron({ hour: '1', weekDay: 'MON-SAT' }) },
      ],
    });
    const envs = resourcesOf(t, 'AWS::ECS::TaskDefinition').map(([, td]) => {
      const env = Object.fromEntries(
        (td.Properties.ContainerDefinitions[0].Environment ?? []).map((e: any) => [e.Name, e.Value]),
      );
      return [env.DBBACKUP_TYPE, env.DBBACKUP_TIER_DAYS];
    });
    assert.deepEqual(envs.filter(([type]) => type !== undefined).sort(), [
      ['differential', 'daily=7,weekly=28,monthly=372'],
      ['full', undefined],
    ]);
  });

  test('an existing bucket gets no rule: a warning names the prefix and the days', () => {
    const stack = newStack();
    const vault = BackupVault.fromAttributes(stack, 'Existing', {
      bucket: s3.Bucket.fromBucketName(stack, 'B', 'their-bucket'),
      key: kms.Key.fromKeyArn(
        stack,
        'K',
        'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
      ),
    });
    new DatabaseBackup(stack, 'Orders', {
      source: mysqlSource(stack),
      vpc: newVpc(stack),
      vault,
      schedules: nightly,
      pointInTimeRecovery: PointInTimeRecovery.enabled({ window: Duration.days(3) }),
    });
    const found = Annotations.fromStack(stack).findWarning(
      '*',
      Match.stringLikeRegexp(
        'no lifecycle rule expires the binary log archive: add one expiring orders/binlog/ after 5 days',
      ),
    );
    assert.equal(found.length, 1);
  });
});
