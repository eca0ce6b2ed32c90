// Refused at synth in the CDKTF flavours, with the same lib/core rule as the AWS CDK flavour
// (checkBackupTypeSupported) and a message in the flavour's own terms: RDS or Aurora and EC2 on
// AWS, Cloud SQL and Compute Engine on Google.
import * as assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
import { type TerraformStack, TerraformVariable, Token } from 'cdktf';
import * as aws from '../../lib/cdktf/aws';
import * as google from '../../lib/cdktf/google';
import { BackupMethod, BackupType } from '../../lib/core';
import { synthAws, synthGoogle } from './helpers';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:dbbackup/orders-AbCdEf';
const REPO = {
  arn: 'arn:aws:ecr:eu-west-1:111122223333:repository/dbbackup',
  repositoryUrl: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/dbbackup',
};
const schedules = (type: BackupType) => [
  { type: BackupType.FULL, schedule: aws.BackupSchedule.cron({ weekDay: 'SUN', hour: '1' }) },
  { type, schedule: aws.BackupSchedule.cron({ hour: '3' }) },
];

function awsBackup(source: aws.BackupSource, type: BackupType): void {
  synthAws((stack) => {
    new aws.DatabaseBackup(stack, 'Orders', {
      databaseId: 'orders',
      source,
      image: aws.RunnerImage.fromEcrRepository(REPO, '1.2.3'),
      network: { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0aaa1111'] },
      schedules: schedules(type),
      drill: { enabled: false },
    });
  });
}

function googleBackup(source: google.BackupSource, type: BackupType): void {
  synthGoogle((stack) => {
    new google.DatabaseBackup(stack, 'Orders', {
      databaseId: 'orders',
      project: 'acme-prod',
      region: 'europe-west1',
      source,
      image: google.RunnerImage.fromArtifactRegistry(
        { location: 'europe-west1', project: 'acme-prod', repositoryId: 'dbbackup' },
        'dbbackup',
        '1.2.3',
      ),
      vpcEgress: google.VpcEgress.directVpc({ network: 'prod-vpc', subnetwork: 'prod-europe-west1' }),
      schedules: schedules(type),
      drill: { enabled: false },
      alarmEmails: ['ops@example.com'],
    });
  });
}

const awsPostgresOn = (url: string, o: { managed?: boolean; method?: BackupMethod }) =>
  aws.BackupSource.postgres({ url, passwordSecret: { arn: SECRET_ARN }, ...o });
const awsPostgres = (url: string, method?: BackupMethod) =>
  aws.BackupSource.postgres({ url, passwordSecret: { arn: SECRET_ARN }, method });
const googlePostgres = (url: string, method?: BackupMethod) =>
  google.BackupSource.postgres({ url, passwordSecret: { id: 'projects/acme-prod/secrets/pw' }, method });

describe('a PostgreSQL chain the source cannot take is refused at synth in the CDKTF flavours', () => {
  for (const type of [BackupType.INCREMENTAL, BackupType.DIFFERENTIAL]) {
    it(`AWS: a ${type} schedule on an RDS endpoint names RDS or Aurora`, () => {
      const rds = awsPostgres('postgres://backup@orders.abcdefghijkl.eu-west-1.rds.amazonaws.com:5432/orders');
      assert.throws(
        () => awsBackup(rds, type),
        (e: Error) =>
          new RegExp(`PostgreSQL ${type} schedule is set on a source on RDS or Aurora, which cannot take`).test(
            e.message,
          ) && !e.message.includes('Cloud SQL'),
      );
    });

    it(`Google: a ${type} schedule on a Cloud SQL socket names Cloud SQL, not RDS`, () => {
      const cloudSql = googlePostgres(
        'postgres://backup@localhost/orders?host=/cloudsql/acme-prod:europe-west1:orders',
      );
      assert.throws(
        () => googleBackup(cloudSql, type),
        (e: Error) =>
          new RegExp(
            `PostgreSQL ${type} schedule is set on a source on Cloud SQL, which cannot take .* Cloud SQL's own`,
          ).test(e.message) && !/RDS|Aurora/.test(e.message),
      );
    });

    it(`a ${type} schedule with the logical method names the cloud's self-managed host`, () => {
      assert.throws(
        () => awsBackup(awsPostgres('postgres://backup@orders.internal:5432/orders'), type),
        new RegExp(`${type} schedule needs physical backups .* the method is 'logical'.*\\(e\\.g\\. on EC2\\)`),
      );
      assert.throws(
        () => googleBackup(googlePostgres('postgres://backup@10.20.0.5:5432/orders'), type),
        new RegExp(`${type} schedule needs physical backups .* 'logical'.*\\(e\\.g\\. on Compute Engine\\)`),
      );
    });
  }

  // (A differential: a weekly full with daily incrementals breaks the default retention's chains.)
  it('a differential schedule on a self-managed server with method physical is accepted', () => {
    const type = BackupType.DIFFERENTIAL;
    assert.doesNotThrow(() =>
      awsBackup(awsPostgres('postgres://backup@orders.internal:5432/orders', BackupMethod.PHYSICAL), type),
    );
    assert.doesNotThrow(() =>
      googleBackup(googlePostgres('postgres://backup@10.20.0.5:5432/orders', BackupMethod.PHYSICAL), type),
    );
  });
});

describe('a token host says whether it is the managed service (managed), as fromRdsInstance does', () => {
  // What `${aws_db_instance.orders.address}` looks like at synth: an unresolved token.
  const tokenHost = (stack: TerraformStack) =>
    Token.asString(new TerraformVariable(stack, 'orders_host', { type: 'string' }).value);

  it('AWS: a token host with managed: true is refused what RDS cannot do; without it the rule is skipped', () => {
    synthAws((stack) => {
      const url = `postgres://backup@${tokenHost(stack)}:5432/orders`;
      assert.throws(
        () => awsPostgresOn(url, { managed: true, method: BackupMethod.PHYSICAL }),
        /method 'physical' is set on a postgres source on RDS or Aurora/,
      );
      const rds = awsPostgresOn(url, { managed: true });
      assert.equal(rds.managed, true);
      assert.throws(
        () =>
          new aws.DatabaseBackup(stack, 'Rds', {
            databaseId: 'orders',
            source: rds,
            image: aws.RunnerImage.fromEcrRepository(REPO, '1.2.3'),
            network: { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0aaa1111'] },
            pointInTimeRecovery: aws.PointInTimeRecovery.enabled(),
          }),
        /PostgreSQL source on RDS or Aurora.*replication connection/,
      );
      assert.throws(
        () =>
          new aws.DatabaseBackup(stack, 'RdsChain', {
            databaseId: 'orders-chain',
            source: rds,
            image: aws.RunnerImage.fromEcrRepository(REPO, '1.2.3'),
            network: { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0aaa1111'] },
            schedules: schedules(BackupType.DIFFERENTIAL),
          }),
        /PostgreSQL differential schedule is set on a source on RDS or Aurora/,
      );
      // Not known to be RDS: taken as self-managed (the runner then fails what RDS cannot do).
      assert.equal(awsPostgresOn(url, { method: BackupMethod.PHYSICAL }).managed, false);
    });
  });

  it('AWS: a literal RDS host is managed without the flag, and managed: false against it is refused', () => {
    const url = 'postgres://backup@orders.abcdefghijkl.eu-west-1.rds.amazonaws.com:5432/orders';
    assert.equal(awsPostgresOn(url, {}).managed, true);
    assert.throws(
      () => awsPostgresOn(url, { managed: false }),
      /managed is false, but the source url '.*rds\.amazonaws\.com.*' is on RDS or Aurora; leave managed out/,
    );
    // A name of your own for an RDS endpoint (a CNAME) takes managed: true.
    assert.equal(awsPostgresOn('postgres://backup@orders-db.internal:5432/orders', { managed: true }).managed, true);
  });

  it('Google: a Cloud SQL instance reached by IP (literal or token) takes managed: true; a socket is seen', () => {
    synthGoogle((stack) => {
      const url = `postgres://backup@${tokenHost(stack)}:5432/orders`;
      assert.throws(
        () =>
          google.BackupSource.postgres({
            url,
            passwordSecret: { id: 'projects/acme-prod/secrets/pw' },
            managed: true,
            method: BackupMethod.PHYSICAL,
          }),
        /method 'physical' is set on a postgres source on Cloud SQL/,
      );
    });
    assert.throws(
      () =>
        googleBackup(
          google.BackupSource.postgres({
            url: 'postgres://backup@10.20.0.5:5432/orders',
            passwordSecret: { id: 'projects/acme-prod/secrets/pw' },
            managed: true,
          }),
          BackupType.DIFFERENTIAL,
        ),
      /differential schedule is set on a source on Cloud SQL/,
    );
    assert.throws(
      () =>
        google.BackupSource.postgres({
          url: 'postgres://backup@localhost/orders?host=/cloudsql/acme-prod:europe-west1:orders',
          passwordSecret: { id: 'projects/acme-prod/secrets/pw' },
          managed: false,
        }),
      /managed is false, but the source url .* is on Cloud SQL/,
    );
  });
});
