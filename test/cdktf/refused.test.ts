// Refused at synth in the CDKTF flavours, with the same lib/core rule as the AWS CDK flavour
// (checkBackupTypeSupported) and a message in the flavour's own terms: RDS or Aurora and EC2 on
// AWS, Cloud SQL and Compute Engine on Google.
import * as assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
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
