import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import { BackupSchedule, BackupSource, BackupType, DatabaseBackup } from '../../lib';
import { newStack, newVpc, postgresSource } from './helpers';

const schedules = (type: BackupType) => [
  { type: BackupType.FULL, schedule: BackupSchedule.cron({ weekDay: 'SUN', hour: '1' }) },
  { type, schedule: BackupSchedule.cron({ hour: '3' }) },
];

describe('refused at synth rather than failing every night', () => {
  for (const type of [BackupType.INCREMENTAL, BackupType.DIFFERENTIAL]) {
    test(`a PostgreSQL ${type} schedule on an RDS instance`, () => {
      const stack = newStack();
      const vpc = newVpc(stack);
      const instance = new rds.DatabaseInstance(stack, 'Db', {
        engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16 }),
        vpc,
        instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
      });
      const source = BackupSource.fromRdsInstance(instance, { databaseName: 'app', username: 'backup' });
      assert.throws(
        () => new DatabaseBackup(stack, 'Backup', { databaseId: 'app', vpc, source, schedules: schedules(type) }),
        new RegExp(
          `PostgreSQL ${type} schedule is set on a source on RDS or Aurora, which cannot take physical backups`,
        ),
      );
    });

    test(`a PostgreSQL ${type} schedule with the logical method (the only one the CDK flavour runs)`, () => {
      const stack = newStack();
      assert.throws(
        () =>
          new DatabaseBackup(stack, 'Backup', {
            databaseId: 'app',
            vpc: newVpc(stack),
            source: postgresSource(stack),
            schedules: schedules(type),
          }),
        new RegExp(
          `PostgreSQL ${type} schedule needs physical backups .* the method is 'logical'.* \\(e\\.g\\. on EC2\\)`,
        ),
      );
    });
  }

  test('a full-only PostgreSQL schedule on RDS is accepted (the check above can pass)', () => {
    const stack = newStack();
    const backup = new DatabaseBackup(stack, 'Backup', {
      databaseId: 'app',
      vpc: newVpc(stack),
      source: postgresSource(stack),
    });
    assert.equal(backup.backupTasks.length, 1);
  });
});
