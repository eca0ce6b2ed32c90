import * as assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cdkLambda from 'aws-cdk-lib/aws-lambda';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEPRECATED_RUNTIMES, LAMBDA_NODE_RUNTIME, SUPPORTED_NODE_MAJORS, runtimeDeprecation, validateFargateSize, S3_PERMISSIONS, BackupRole } from '../../lib/core';
import { BackupVerifier as CdkVerifier, BackupVault as CdkVault, DatabaseBackup as CdkDatabaseBackup } from '../../lib/aws';
import { newStack, newVpc, postgresSource } from '../aws/helpers';
import * as aws from '../../lib/cdktf/aws';
import * as google from '../../lib/cdktf/google';
import { synthAws, synthGoogle } from './helpers';

function awsBackup(stack: import('cdktf').TerraformStack, extra: Partial<aws.DatabaseBackupProps> = {}): aws.DatabaseBackup {
  return new aws.DatabaseBackup(stack, 'Orders', {
    databaseId: 'orders',
    source: aws.BackupSource.postgres({ url: 'postgres://backup@db.internal:5432/orders', passwordSecret: { arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw' } }),
    image: aws.RunnerImage.fromImageUri('123456789012.dkr.ecr.eu-west-1.amazonaws.com/dbbackup:0.1.0'),
    network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'] },
    alarmEmails: ['oncall@example.com'],
    ...extra,
  });
}

describe('one model: CDK and CDKTF render the same rules', () => {
  it('no construct renders a runtime the cloud has deprecated (lib/core DEPRECATED_RUNTIMES)', () => {
    assert.equal(runtimeDeprecation(LAMBDA_NODE_RUNTIME), undefined, `${LAMBDA_NODE_RUNTIME} is in the ` +
      `deprecated table`);
    assert.ok(runtimeDeprecation('nodejs20.x'), 'the table knows nodejs20.x is deprecated');
    const tf = synthAws((stack) => awsBackup(stack));
    const runtimes = tf.all('aws_lambda_function').map((f) => f.runtime as string);
    assert.ok(runtimes.length > 0);
    const stack = new Stack(new App(), 'S', { env: { account: '123456789012', region: 'eu-west-1' } });
    const vault = new CdkVault(stack, 'V');
    new CdkVerifier(stack, 'Ver', { vault, alarmTopic: new (require('aws-cdk-lib/aws-sns').Topic)(stack, 'T') });
    const cdkRuntimes = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function')).map((r: any) => r.Properties.Runtime as string);
    for (const r of [...runtimes, ...cdkRuntimes]) {
      assert.equal(DEPRECATED_RUNTIMES.some((d) => d.runtime === r), false, `runtime ${r} is deprecated`);
      assert.match(r, /^nodejs(22|24)\.x$/);
    }
    assert.equal(cdkLambda.Runtime.NODEJS_22_X.name, LAMBDA_NODE_RUNTIME);
  });

  it('the runner image (Fargate tasks, Cloud Run jobs) runs a supported Node.js major', () => {
    const dockerfile = fs.readFileSync(path.join(__dirname, '..', '..', 'runner', 'Dockerfile'), 'utf8');
    const majors = [...dockerfile.matchAll(/^FROM\s+(?:\S+\/)?node:(\d+)/gm)].map((m) => Number(m[1]));
    assert.ok(majors.length > 0, 'the Dockerfile has a node base image');
    for (const m of majors) assert.ok((SUPPORTED_NODE_MAJORS as readonly number[]).includes(m), `node:${m} is not one of ${SUPPORTED_NODE_MAJORS.join(', ')}`);
  });

  it('AWS CDKTF: the CDK defaults, names and capabilities (03:00, drills, dashboard, gap + timeout RPO)', () => {
    let backup!: aws.DatabaseBackup;
    const s = synthAws((stack) => {
      backup = awsBackup(stack);
    });
    assert.equal(s.at('aws_scheduler_schedule', 'Orders/FullSchedule').schedule_expression, 'cron(0 3 * * ? *)');
    assert.equal(s.at('aws_scheduler_schedule', 'Orders/DrillSchedule').schedule_expression, 'cron(0 5 ? * SUN *)');
    assert.equal(s.count('aws_ecs_task_definition'), 2, 'backup and drill');
    assert.equal(s.count('aws_cloudwatch_dashboard'), 1);
    assert.equal(backup.rpo.toMinutes(), 28 * 60, 'gap (1 day) + timeout (4 hours)');
    const names = s.all('aws_cloudwatch_metric_alarm').map((a) => a.alarm_name);
    assert.ok(names.includes('dbbackup-orders-drill-failed') && names.includes('dbbackup-orders-drill-too-slow'), names.join());
    assert.ok(backup.task instanceof aws.BackupRunnerTask && backup.verifier instanceof aws.BackupVerifier);
    assert.equal(Object.getPrototypeOf(aws.RunnerTask), aws.BackupRunnerTask, 'the old name is a deprecated subclass');
  });

  it('AWS CDKTF: the writer, verifier and drill policies are the lib/core lists', () => {
    const s = synthAws((stack) => awsBackup(stack));
    const policies = s.all('aws_iam_role_policy').map((p) => JSON.parse(p.policy));
    const actions = (p: any) => p.Statement.flatMap((x: any) => (Array.isArray(x.Action) ? x.Action : [x.Action]));
    const writer = policies.find((p) => p.Statement.some((x: any) => x.Sid === 'WrapBackupKeys'))!;
    for (const a of S3_PERMISSIONS[BackupRole.WRITER].objectActions) assert.ok(actions(writer).includes(a), a);
    assert.deepEqual(writer.Statement.find((x: any) => x.Sid === 'UseVaultKey').Action, ['kms:Decrypt', 'kms:GenerateDataKey']);
    for (const p of policies) assert.equal(actions(p).some((a: string) => /^s3:Delete|^s3:PutLifecycle/.test(a)), false);
  });

  it('one Fargate size table: 1024 CPU with 512 MiB is refused in both flavours', () => {
    assert.throws(() => validateFargateSize(1024, 512), /memoryLimitMiB 512 does not go with cpu 1024 on Fargate; use 2048 to 8192/);
    assert.throws(() => synthAws((stack) => awsBackup(stack, { cpu: 1024, memoryLimitMiB: 512 })), /memoryLimitMiB 512 does not go with cpu 1024 on Fargate/);
  });

  it('one vault, unique database ids and prefixes', () => {
    assert.throws(
      () =>
        synthAws((stack) => {
          const vault = new aws.BackupVault(stack, 'Shared');
          awsBackup(stack, { vault });
          new aws.DatabaseBackup(stack, 'Billing', {
            databaseId: 'billing',
            prefix: 'orders/billing',
            vault,
            source: aws.BackupSource.postgres({ url: 'postgres://backup@db.internal/billing', passwordSecret: { arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw2' } }),
            image: aws.RunnerImage.fromImageUri('123456789012.dkr.ecr.eu-west-1.amazonaws.com/dbbackup:0.1.0'),
            network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'] },
          });
        }),
      /prefix 'orders\/billing' of 'billing' overlaps the prefix 'orders' of 'orders'/,
    );
  });

  it('the CDK flavour refuses the same id or an overlapping prefix in one vault (lib/core claimVaultPrefix)', () => {
    const stack = newStack();
    const vpc = newVpc(stack);
    const vault = new CdkVault(stack, 'Shared');
    const source = postgresSource(stack);
    new CdkDatabaseBackup(stack, 'Orders', { source, vpc, vault, databaseId: 'orders' });
    assert.throws(
      () => new CdkDatabaseBackup(stack, 'Orders2', { source, vpc, vault, databaseId: 'orders', prefix: 'orders-2' }),
      /databaseId 'orders' is already used in this vault/,
    );
    assert.throws(
      () => new CdkDatabaseBackup(stack, 'Nested', { source, vpc, vault, databaseId: 'nested', prefix: 'orders/nested' }),
      /prefix 'orders\/nested' of 'nested' overlaps the prefix 'orders' of 'orders'/,
    );
  });

  it('Google CDKTF: drills (Cloud Run job with a scratch database sidecar, Cloud Scheduler) and a dashboard', () => {
    const s = synthGoogle((stack) => {
      new google.DatabaseBackup(stack, 'Orders', {
        databaseId: 'orders',
        project: 'acme',
        region: 'europe-west1',
        source: google.BackupSource.postgres({ url: 'postgres://backup@10.0.0.5:5432/orders', passwordSecret: { id: 'projects/acme/secrets/pw' } }),
        image: google.RunnerImage.fromImageUri('europe-west1-docker.pkg.dev/acme/dbbackup/dbbackup:0.1.0'),
        alarmEmails: ['oncall@example.com'],
      });
    });
    const drill = s.all('google_cloud_run_v2_job').find((j) => j.name === 'dbbackup-orders-drill')!;
    const containers = drill.template.template.containers;
    assert.deepEqual(containers.map((c: any) => c.name), ['database', 'runner']);
    assert.deepEqual(containers[1].depends_on, ['database']);
    assert.deepEqual(containers[1].args, ['drill']);
    assert.equal(s.all('google_cloud_scheduler_job').find((j) => j.name === 'dbbackup-orders-drill')!.schedule, '0 5 * * SUN');
    assert.equal(s.all('google_cloud_scheduler_job').find((j) => j.name === 'dbbackup-orders-backup')!.schedule, '0 3 * * *');
    assert.equal(s.count('google_monitoring_dashboard'), 1);
    assert.ok(s.all('google_monitoring_alert_policy').some((p) => p.display_name === 'dbbackup orders: restore drill failed'));
  });
});
