// The constructs refuse at synth a source declared newer than the runner image's tools can dump
// (lib/core/versions.ts), naming both versions; sources in range pass.
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import { BackupSource, Engine, ServerFamily } from '../../lib';
import { newSecret, newStack, newVpc } from './helpers';

const endpoint = { endpoint: 'db.internal', databaseName: 'app', username: 'backup' };

describe('server versions at synth', () => {
  test('a PostgreSQL 19 source is refused: pg_dump 18 cannot dump it', () => {
    const stack = newStack();
    assert.throws(() => BackupSource.postgres({ ...endpoint, secret: newSecret(stack), engineVersion: '19' }), {
      name: 'ConfigError',
      message: /^engineVersion: the postgres server is version 19, newer than the runner image's tools \(pg_dump 18,/,
    });
    const pg18 = BackupSource.postgres({ ...endpoint, secret: newSecret(stack, 'S2'), engineVersion: '18.1' });
    assert.equal(pg18.engineVersion, '18.1');
  });

  test('an RDS instance brings its engine version: PostgreSQL 18 passes, 19 is refused', () => {
    const stack = newStack();
    const vpc = newVpc(stack);
    const make = (id: string, version: rds.PostgresEngineVersion) =>
      new rds.DatabaseInstance(stack, id, {
        engine: rds.DatabaseInstanceEngine.postgres({ version }),
        vpc,
        instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
      });
    const login = { databaseName: 'app', username: 'backup' };
    const ok = BackupSource.fromRdsInstance(make('Pg18', rds.PostgresEngineVersion.VER_18_1), login);
    assert.equal(ok.serverFamily, ServerFamily.POSTGRES);
    assert.equal(ok.engineVersion, '18.1');
    const pg19 = make('Pg19', rds.PostgresEngineVersion.of('19.0', '19'));
    assert.throws(() => BackupSource.fromRdsInstance(pg19, login), /version 19\.0, newer than .*pg_dump 18/);
  });

  test("MariaDB is checked against MariaDB's tools, MySQL against Oracle's", () => {
    const stack = newStack();
    const maria = BackupSource.mariadb({ ...endpoint, secret: newSecret(stack), engineVersion: '11.4' });
    assert.equal(maria.serverFamily, ServerFamily.MARIADB);
    assert.equal(maria.engine, Engine.MYSQL);
    assert.equal(maria.port, 3306);
    assert.throws(
      () => BackupSource.mariadb({ ...endpoint, secret: newSecret(stack, 'S2'), engineVersion: '12.1' }),
      /mariadb server is version 12\.1, newer .*mariadb-dump 11\.8/,
    );
    // A MariaDB version given as MySQL is not something Oracle's mysqldump 8.4 reads.
    assert.throws(
      () => BackupSource.mysql({ ...endpoint, secret: newSecret(stack, 'S3'), engineVersion: '11.4' }),
      /mysql server is version 11\.4, newer .*mysqldump 8\.4/,
    );
    const mysql = BackupSource.mysql({ ...endpoint, secret: newSecret(stack, 'S4'), engineVersion: '8.4.6' });
    assert.equal(mysql.serverFamily, ServerFamily.MYSQL);
  });

  test('RDS MariaDB and Aurora MySQL take their family from the engine', () => {
    const stack = newStack();
    const vpc = newVpc(stack);
    const instanceType = ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MEDIUM);
    const maria = new rds.DatabaseInstance(stack, 'Maria', {
      engine: rds.DatabaseInstanceEngine.mariaDb({ version: rds.MariaDbEngineVersion.of('11.4.5', '11.4') }),
      vpc,
      instanceType,
    });
    const fromMaria = BackupSource.fromRdsInstance(maria, { databaseName: 'app', username: 'backup' });
    assert.equal(fromMaria.serverFamily, ServerFamily.MARIADB);
    const aurora = new rds.DatabaseCluster(stack, 'Aurora', {
      engine: rds.DatabaseClusterEngine.auroraMysql({ version: rds.AuroraMysqlEngineVersion.VER_3_08_0 }),
      vpc,
      writer: rds.ClusterInstance.provisioned('Writer', { instanceType }),
    });
    const source = BackupSource.fromDatabaseCluster(aurora, { databaseName: 'app', username: 'backup' });
    assert.equal(source.serverFamily, ServerFamily.MYSQL);
    assert.match(source.engineVersion!, /^8\.0\.mysql_aurora\./);
  });
});
