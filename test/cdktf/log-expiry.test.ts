// CDKTF: the log archive expiry rules of both vaults, read back from the Terraform JSON and
// walked by the retention simulator, and the simulation at synth (GCS cannot raise a base).
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import * as aws from '../../lib/cdktf/aws';
import * as google from '../../lib/cdktf/google';
import { BackupSchedule, BackupType, Retention } from '../../lib/cdktf/aws';
import { BackupMethod, LifecycleTiming, logArchiveExpiry, RetentionTier, simulateRetention } from '../../lib/core';
import { synthAws, synthGoogle } from './helpers';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:dbbackup/orders-AbCdEf';
const REPO = {
  arn: 'arn:aws:ecr:eu-west-1:111122223333:repository/dbbackup',
  repositoryUrl: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/dbbackup',
};
const NETWORK = { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'] };

const weeklyFull = BackupSchedule.cron({ hour: '1', weekDay: 'SUN' });
const retention = Retention.gfs({ daily: 7, weekly: 4, monthly: 12 });

describe('log archive expiry (CDKTF)', () => {
  test('AWS: a prefix rule expires <prefix>/wal/ after the days lib/core computes, and the rules walk clean', () => {
    const expiry = logArchiveExpiry({ retention, fullSchedules: [weeklyFull.spec], pointInTimeDays: 7 })!;
    assert.equal(expiry.days, 15, '7 window + 7 longest gap + 1 slack');
    const s = synthAws((stack) =>
      new aws.BackupVault(stack, 'Vault', { retention }).addLogArchiveExpiry('orders/wal/', expiry.days),
    );
    const rules = s.one('aws_s3_bucket_lifecycle_configuration').rule as any[];
    const byTag: Partial<Record<RetentionTier, number>> = {};
    const byPrefix: Record<string, number> = {};
    for (const r of rules) {
      const days = r.expiration?.[0]?.days;
      if (days === undefined) continue;
      const tag = r.filter?.[0]?.tag?.[0];
      if (tag !== undefined) byTag[tag.value as RetentionTier] = days;
      else byPrefix[r.filter[0].prefix] = days;
    }
    assert.deepEqual(byPrefix, { 'orders/wal/': 15 });
    assert.equal(rules[rules.length - 1].id, 'housekeeping', 'the housekeeping rule stays last');
    const sim = simulateRetention({
      schedules: [{ type: BackupType.FULL, cron: weeklyFull.spec }],
      retention,
      rules: { tierDays: byTag, logPrefixDays: byPrefix },
      pointInTimeDays: 7,
    });
    assert.equal(sim.ok, true, sim.firstBreak?.reason);
  });

  test('Google: a Delete rule at that age matches the log prefixes, beside the tier folders', () => {
    const s = synthGoogle((stack) => {
      const vault = new google.BackupVault(stack, 'Vault', { bucketName: 'acme-backups', location: 'europe-west1' });
      vault.addBackupPrefix('orders', retention);
      vault.addLogArchiveExpiry('orders/wal/', 15);
      vault.addLogArchiveExpiry('billing/binlog/', 15);
    });
    const rules = s.one('google_storage_bucket').lifecycle_rule as any[];
    const logs = rules.filter(
      (r) =>
        r.action.type === 'Delete' &&
        (r.condition.matches_prefix ?? []).some((p: string) => /\/(wal|binlog)\/$/.test(p)),
    );
    assert.deepEqual(
      logs.map((r) => [r.condition.age, r.condition.matches_prefix]),
      [[15, ['billing/binlog/', 'orders/wal/']]],
    );
  });

  test('the simulation runs at synth: breaking incremental chains are refused on both clouds', () => {
    const schedules = [
      { type: BackupType.FULL, schedule: weeklyFull },
      { type: BackupType.INCREMENTAL, schedule: BackupSchedule.cron({ hour: '3' }) },
    ];
    assert.throws(
      () =>
        synthAws((stack) => {
          new aws.DatabaseBackup(stack, 'Orders', {
            databaseId: 'orders',
            source: aws.BackupSource.postgres({
              url: 'postgres://backup@orders.internal:5432/orders',
              passwordSecret: { arn: SECRET_ARN },
              // PostgreSQL incrementals are WAL over a physical base (checkBackupTypeSupported).
              method: BackupMethod.PHYSICAL,
            }),
            image: aws.RunnerImage.fromEcrRepository(REPO, '1.2.3'),
            network: NETWORK,
            schedules,
            retention,
            drill: { enabled: false },
          });
        }),
      /retention: First break: on \d{4}-\d\d-\d\d backup \S+-incremental would break/,
    );
    assert.throws(
      () =>
        synthGoogle((stack) => {
          new google.DatabaseBackup(stack, 'Orders', {
            databaseId: 'orders',
            project: 'acme-prod',
            region: 'europe-west1',
            source: google.BackupSource.postgres({
              url: 'postgres://backup@10.20.0.5:5432/orders',
              passwordSecret: { id: 'projects/acme-prod/secrets/pw' },
              method: BackupMethod.PHYSICAL,
            }),
            image: google.RunnerImage.fromArtifactRegistry(
              { location: 'europe-west1', project: 'acme-prod', repositoryId: 'dbbackup' },
              'dbbackup',
              '1.2.3',
            ),
            vpcEgress: google.VpcEgress.directVpc({
              network: 'prod-vpc',
              subnetwork: 'prod-europe-west1',
              networkTags: ['dbbackup'],
            }),
            schedules,
            retention,
            drill: { enabled: false },
          });
        }),
      /retention: First break: on \d{4}-\d\d-\d\d backup \S+-incremental would break/,
    );
  });

  test(
    'a daily full with same-night incrementals passes on S3 (the ' +
      'base is raised) but not on GCS (folders cannot be)',
    () => {
      const daily = BackupSchedule.cron({ hour: '1' });
      const hourly = BackupSchedule.cron({ minute: '30', hour: '*/4' });
      const props = {
        schedules: [
          { type: BackupType.FULL, cron: daily.spec },
          { type: BackupType.INCREMENTAL, cron: hourly.spec },
        ],
        retention,
        rules: { tierDays: { daily: 7, weekly: 28, monthly: 372 } },
      };
      assert.equal(simulateRetention({ ...props, rules: { ...props.rules, timing: LifecycleTiming.S3 } }).ok, true);
      assert.equal(simulateRetention({ ...props, rules: { ...props.rules, timing: LifecycleTiming.GCS } }).ok, false);
    },
  );
});
