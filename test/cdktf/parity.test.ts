// "One model, two flavours": the same database described to the AWS CDK DatabaseBackup and to
// the CDKTF ones gives the same database id, the same runner arguments (tier days, replica lag,
// method) and the same drill image, each from its one rule in lib/core.
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Duration as CdkDuration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cdk from '../../lib';
import * as aws from '../../lib/cdktf/aws';
import * as google from '../../lib/cdktf/google';
import {
  BackupMethod,
  BackupType,
  defaultServerFamily,
  drillScratchOf,
  Engine,
  SCRATCH_DATABASES,
  ServerFamily,
} from '../../lib/core';
import { databaseIdFromName } from '../../lib/core/ids';
import { newSecret, newStack, newVpc } from '../aws/helpers';
import { synthAws, synthGoogle } from './helpers';

const weeklyFull = { weekDay: 'SUN', hour: '1' };
const nightlyDifferential = { hour: '3' };
const retention = { daily: 7, weekly: 5, monthly: 12 };
const COMPARED = [
  'DBBACKUP_ENGINE',
  'DBBACKUP_TYPE',
  'DBBACKUP_METHOD',
  'DBBACKUP_TIER_DAYS',
  'DBBACKUP_MAX_REPLICA_LAG',
];

function pick(env: Readonly<Record<string, string>>): Record<string, string | undefined> {
  return Object.fromEntries(COMPARED.map((k) => [k, env[k]]));
}

/** The database: a self-managed MariaDB 10.11 replica, `orders_prod`, physical, full weekly + nightly differentials. */
function inCdk() {
  const stack = newStack();
  const backup = new cdk.DatabaseBackup(stack, 'OrdersBackup', {
    source: cdk.BackupSource.mariadb({
      endpoint: 'db.internal',
      databaseName: 'orders_prod',
      username: 'backup',
      secret: newSecret(stack),
      engineVersion: '10.11.8',
      method: BackupMethod.PHYSICAL,
    }),
    vpc: newVpc(stack),
    schedules: [
      { type: BackupType.FULL, schedule: cdk.BackupSchedule.cron(weeklyFull) },
      { type: BackupType.DIFFERENTIAL, schedule: cdk.BackupSchedule.cron(nightlyDifferential) },
    ],
    retention: cdk.Retention.gfs(retention),
    maxReplicaLag: CdkDuration.minutes(2),
  });
  const images = Object.values(Template.fromStack(stack).findResources('AWS::ECS::TaskDefinition'))
    .flatMap((d: any) => d.Properties.ContainerDefinitions)
    .filter((c: any) => c.Name === 'database')
    .map((c: any) => c.Image);
  return { backup, drillImage: images[0] as string };
}

function inCdktfAws() {
  let backup: aws.DatabaseBackup | undefined;
  const s = synthAws((stack) => {
    backup = new aws.DatabaseBackup(stack, 'SomethingElse', {
      source: aws.BackupSource.mariadb({
        url: 'mariadb://backup@db.internal:3306/orders_prod',
        passwordSecret: { arn: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:pw' },
        engineVersion: '10.11.8',
        method: BackupMethod.PHYSICAL,
      }),
      image: aws.RunnerImage.fromImageUri('111122223333.dkr.ecr.eu-west-1.amazonaws.com/dbbackup:1.2.3'),
      network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'] },
      schedules: [
        { type: BackupType.FULL, schedule: aws.BackupSchedule.cron(weeklyFull) },
        { type: BackupType.DIFFERENTIAL, schedule: aws.BackupSchedule.cron(nightlyDifferential) },
      ],
      retention: aws.Retention.gfs(retention),
      maxReplicaLag: aws.Duration.minutes(2),
    });
  });
  const drill = JSON.parse(s.at('aws_ecs_task_definition', 'DrillTask/Resource').container_definitions);
  return { backup: backup!, drillImage: drill.find((c: any) => c.name === 'database').image as string };
}

function inCdktfGoogle() {
  let backup: google.DatabaseBackup | undefined;
  const s = synthGoogle((stack) => {
    backup = new google.DatabaseBackup(stack, 'Third', {
      project: 'acme-prod',
      region: 'europe-west1',
      source: google.BackupSource.mariadb({
        url: 'mariadb://backup@10.20.0.5:3306/orders_prod',
        passwordSecret: { id: 'projects/acme-prod/secrets/pw' },
        engineVersion: '10.11.8',
        method: BackupMethod.PHYSICAL,
      }),
      image: google.RunnerImage.fromImageUri('europe-west1-docker.pkg.dev/acme-prod/dbbackup/dbbackup:1.2.3'),
      schedules: [{ type: BackupType.FULL, schedule: google.BackupSchedule.cron({ hour: '1' }) }],
      maxReplicaLag: google.Duration.minutes(2),
      alarmEmails: ['oncall@example.com'],
    });
  });
  const job = s.at('google_cloud_run_v2_job', 'DrillJob/Resource');
  return { backup: backup!, drillImage: job.template.template.containers[0].image as string };
}

describe('one model, two flavours: the same database, the same rules', () => {
  const c = inCdk();
  const a = inCdktfAws();
  const g = inCdktfGoogle();

  test('the database id is the database name in kebab case in every flavour, never the construct id', () => {
    assert.equal(c.backup.databaseId, 'orders-prod');
    assert.equal(a.backup.databaseId, 'orders-prod');
    assert.equal(g.backup.databaseId, 'orders-prod');
    assert.equal(databaseIdFromName('orders_prod'), 'orders-prod');
  });

  test('the backup tasks get the same runner arguments: method, tier days, replica lag', () => {
    for (const type of [BackupType.FULL, BackupType.DIFFERENTIAL]) {
      const cdkEnv = c.backup.backupTasks.find((t) => t.backupType === type)!.environment;
      const tfEnv = a.backup.backupTasks.find((t) => t.backupType === type)!.environment;
      assert.deepEqual(pick(tfEnv), pick(cdkEnv), type);
    }
    const differential = pick(a.backup.backupTasks.find((t) => t.backupType === BackupType.DIFFERENTIAL)!.environment);
    assert.equal(differential.DBBACKUP_METHOD, 'physical');
    assert.equal(differential.DBBACKUP_MAX_REPLICA_LAG, '120s');
    assert.equal(differential.DBBACKUP_TIER_DAYS, cdk.Retention.gfs(retention).tierDaysSetting);
    // Google: the same method and lag; tiers are folders there, so no --tier-days.
    const gEnv = pick(g.backup.job.environment);
    assert.equal(gEnv.DBBACKUP_METHOD, 'physical');
    assert.equal(gEnv.DBBACKUP_MAX_REPLICA_LAG, '120s');
  });

  test("the drill runs the source's server and major version in every flavour", () => {
    const want = drillScratchOf({
      engine: Engine.MYSQL,
      family: ServerFamily.MARIADB,
      sourceVersion: '10.11.8',
      customImage: false,
      versionProp: 'x',
    }).image;
    assert.equal(want, 'public.ecr.aws/docker/library/mariadb:10.11');
    assert.equal(c.drillImage, want);
    assert.equal(a.drillImage, want);
    assert.equal(g.drillImage, want);
  });

  test('a MySQL source drills on MySQL, not MariaDB, in CDKTF too', () => {
    const s = synthAws((stack) => {
      new aws.DatabaseBackup(stack, 'Orders', {
        source: aws.BackupSource.mysql({
          url: 'mysql://backup@db.internal:3306/orders',
          passwordSecret: { arn: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:pw' },
          engineVersion: '8.0.36',
        }),
        image: aws.RunnerImage.fromImageUri('111122223333.dkr.ecr.eu-west-1.amazonaws.com/dbbackup:1.2.3'),
        network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'] },
      });
    });
    const drill = JSON.parse(s.at('aws_ecs_task_definition', 'DrillTask/Resource').container_definitions);
    assert.equal(drill.find((c: any) => c.name === 'database').image, 'public.ecr.aws/docker/library/mysql:8.0');
  });

  test('method physical on Cloud SQL is refused as on RDS', () => {
    assert.throws(
      () =>
        google.BackupSource.mysql({
          url: 'mysql://backup@localhost/orders?socket=/cloudsql/acme-prod:europe-west1:orders',
          passwordSecret: { id: 'projects/acme-prod/secrets/pw' },
          method: BackupMethod.PHYSICAL,
        }),
      (e: Error) =>
        /method 'physical' is set on a mysql source on Cloud SQL: .*which Cloud SQL gives no access to\. /.test(
          e.message,
        ) &&
        /self-managed server \(e\.g\. on Compute Engine\)/.test(e.message) &&
        !/RDS|Aurora|EC2/.test(e.message),
    );
  });

  test('a token database name is refused with the prop to set', () => {
    assert.throws(
      () =>
        synthAws((stack) => {
          new aws.DatabaseBackup(stack, 'Orders', {
            source: aws.BackupSource.postgres({
              url: `postgres://backup@db.internal:5432/${'${TfToken[TOKEN.99]}'}`,
              passwordSecret: { arn: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:pw' },
            }),
            image: aws.RunnerImage.fromImageUri('111122223333.dkr.ecr.eu-west-1.amazonaws.com/dbbackup:1.2.3'),
            network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'] },
          });
        }),
      /databaseId is missing.*give databaseId explicitly/,
    );
  });

  test("every flavour takes a source's server family from lib/core's one rule: mysql is Oracle MySQL", () => {
    assert.equal(defaultServerFamily(Engine.MYSQL), ServerFamily.MYSQL);
    assert.equal(SCRATCH_DATABASES[Engine.MYSQL].image, 'public.ecr.aws/docker/library/mysql:8.4');
    const stack = newStack();
    const endpoint = { endpoint: 'db.internal', databaseName: 'orders', username: 'backup', secret: newSecret(stack) };
    const url = 'mysql://backup@db.internal:3306/orders';
    const arn = { arn: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:pw' };
    const id = { id: 'projects/acme-prod/secrets/pw' };
    const families = (mysql: ServerFamily, mariadb: ServerFamily) => [mysql, mariadb];
    const want = families(ServerFamily.MYSQL, ServerFamily.MARIADB);
    assert.deepEqual(
      families(cdk.BackupSource.mysql(endpoint).serverFamily, cdk.BackupSource.mariadb(endpoint).serverFamily),
      want,
    );
    assert.deepEqual(
      families(
        aws.BackupSource.mysql({ url, passwordSecret: arn }).serverFamily,
        aws.BackupSource.mariadb({ url, passwordSecret: arn }).serverFamily,
      ),
      want,
    );
    assert.deepEqual(
      families(
        google.BackupSource.mysql({ url, passwordSecret: id }).serverFamily,
        google.BackupSource.mysql({ url: url.replace('mysql:', 'mariadb:'), passwordSecret: id }).serverFamily,
      ),
      want,
    );
  });
});
