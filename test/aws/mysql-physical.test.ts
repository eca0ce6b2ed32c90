// The physical method on the constructs: a self-managed MariaDB/MySQL source takes it (its backup
// tasks run the runner with --method physical, full and incremental), RDS and Aurora refuse it at
// synth saying what to do instead, and an engine without a physical method refuses it.
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Stack, Token } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import { BackupMethod, BackupSchedule, BackupSource, BackupType, DatabaseBackup } from '../../lib';
import { parseInvocation, type BackupConfig } from '../../runner/src/config';
import { endpointOptions, newSecret, newStack, newVpc } from './helpers';

const schedules = [
  { type: BackupType.FULL, schedule: BackupSchedule.cron({ weekDay: 'SUN', hour: '1' }) },
  { type: BackupType.DIFFERENTIAL, schedule: BackupSchedule.cron({ hour: '3' }) },
];

function rdsMysql(stack: Stack, vpc: ec2.IVpc): rds.DatabaseInstance {
  return new rds.DatabaseInstance(stack, 'Db', {
    engine: rds.DatabaseInstanceEngine.mariaDb({ version: rds.MariaDbEngineVersion.VER_10_11 }),
    vpc,
    instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
  });
}

describe('method physical for MySQL/MariaDB sources', () => {
  test('a self-managed MariaDB runs full and differential backups with --method physical', () => {
    const stack = newStack();
    const source = BackupSource.mariadb(
      endpointOptions(stack, { databaseName: 'shop', method: BackupMethod.PHYSICAL }),
    );
    const backup = new DatabaseBackup(stack, 'Backup', { databaseId: 'shop', vpc: newVpc(stack), source, schedules });
    assert.equal(backup.backupTasks.length, 2);
    const types = new Set<string>();
    for (const task of backup.backupTasks) {
      const env = { ...task.environment } as Record<string, string>;
      // Tokens (the port, the bucket) stand in for what the deployed task receives.
      env.DBBACKUP_SOURCE = 'mysql://backup@db.internal:3306/shop';
      env.DBBACKUP_TO = 's3://bucket/shop';
      env.DBBACKUP_ENCRYPT = 'kms:alias/backups';
      assert.match(task.environment.DBBACKUP_SOURCE, /^mysql:\/\/backup@db\.internal:/);
      const cfg = parseInvocation(['backup'], env) as BackupConfig;
      assert.equal(cfg.method, BackupMethod.PHYSICAL);
      types.add(cfg.type);
    }
    assert.deepEqual([...types].sort(), ['differential', 'full']);
    Annotations.fromStack(stack).hasWarning(
      '/Test/Backup',
      Match.stringLikeRegexp("mariadb-backup .* copies the server's data files"),
    );
  });

  test('a logical source renders no method (its environment is as it was)', () => {
    const stack = newStack();
    const source = BackupSource.mariadb(endpointOptions(stack, { databaseName: 'shop' }));
    const backup = new DatabaseBackup(stack, 'Backup', { databaseId: 'shop', vpc: newVpc(stack), source });
    assert.equal(backup.backupTasks[0].environment.DBBACKUP_METHOD, undefined);
  });

  test('RDS and Aurora refuse it at synth, saying what to use instead', () => {
    const stack = newStack();
    const vpc = newVpc(stack);
    assert.throws(
      () =>
        BackupSource.fromRdsInstance(rdsMysql(stack, vpc), {
          databaseName: 'shop',
          username: 'backup',
          method: BackupMethod.PHYSICAL,
        }),
      new RegExp(
        /method 'physical' is set on a mysql source on RDS or Aurora: mariadb-backup and Percona XtraBackup /.source +
          /copy the server's data files, which RDS or Aurora gives no access to\. Leave method out /.source +
          /\(logical backups, with incrementals as binary log ranges\).*self-managed server \(e\.g\. on EC2\)/.source,
      ),
    );
    const cluster = new rds.DatabaseCluster(stack, 'Aurora', {
      engine: rds.DatabaseClusterEngine.auroraMysql({ version: rds.AuroraMysqlEngineVersion.VER_3_07_1 }),
      vpc,
      writer: rds.ClusterInstance.serverlessV2('Writer'),
    });
    assert.throws(
      () =>
        BackupSource.fromDatabaseCluster(cluster, {
          databaseName: 'shop',
          username: 'backup',
          method: BackupMethod.PHYSICAL,
        }),
      /mysql source on RDS or Aurora.*self-managed server/,
    );
    // The logical method on the same instance is fine.
    assert.doesNotThrow(() =>
      BackupSource.fromRdsInstance(rdsMysql(newStack('Other'), newVpc(newStack('V'))), {
        databaseName: 'shop',
        username: 'backup',
      }),
    );
  });

  test('a literal RDS endpoint given to BackupSource.mysql is RDS too (lib/core isRdsEndpoint, as in CDKTF)', () => {
    const secret = newSecret(newStack());
    const endpoint = (host: string) => ({
      endpoint: host,
      databaseName: 'shop',
      username: 'backup',
      secret,
      method: BackupMethod.PHYSICAL,
    });
    assert.throws(
      () => BackupSource.mysql(endpoint('shop.abcdefghijkl.eu-west-1.rds.amazonaws.com')),
      /method 'physical' is set on a mysql source on RDS or Aurora/,
    );
    assert.equal(BackupSource.mysql(endpoint('db1.internal')).managed, false);
    // A token endpoint cannot be read at synth: fromRdsInstance/fromDatabaseCluster say RDS.
    assert.equal(BackupSource.mysql(endpoint(Token.asString({ Ref: 'DbHost' }))).managed, false);
  });

  test('an engine without a physical method refuses it', () => {
    const stack = newStack();
    assert.throws(
      () => BackupSource.mongodb(endpointOptions(stack, { method: BackupMethod.PHYSICAL })),
      /method 'physical' is not available for a mongodb source; it takes logical/,
    );
  });
});
