import * as assert from 'node:assert/strict';
import { describe, expect, test } from '@jest/globals';
import { Duration } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import {
  BackupEncryption,
  BackupSchedule,
  BackupSource,
  BackupType,
  BackupVault,
  DatabaseBackup,
  Retention,
} from '../../lib';
import { newSecret, newStack, newVpc, normalizedTemplate, postgresSource, resourcesOf } from './helpers';

const AGE = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';

describe('DatabaseBackup', () => {
  test('ten lines give the whole system: vault, nightly full backup, verifier, weekly drill, alarms, dashboard', () => {
    const stack = newStack();
    const backup = new DatabaseBackup(stack, 'OrdersDb', { source: postgresSource(stack), vpc: newVpc(stack) });
    const t = Template.fromStack(stack);
    // The id comes from the source's database name ('app'), never from the construct id.
    assert.equal(backup.databaseId, 'app');
    assert.equal(backup.prefix, 'app');
    // Backup, drill and the on-demand restore task.
    t.resourceCountIs('AWS::ECS::TaskDefinition', 3);
    t.resourceCountIs('AWS::Scheduler::Schedule', 2);
    t.resourceCountIs('AWS::Lambda::Function', 1);
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 10); // six of the database, four on dead letters and the verifier
    t.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      Description: 'full backup of app',
    });
    t.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 5 ? * SUN *)',
      Description: 'restore drill of app',
    });
    t.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
    // The default RPO: the longest gap (24 h) plus the timeout (4 h).
    assert.equal(backup.rpo.toHours(), 28);
    const stale = resourcesOf(t, 'AWS::CloudWatch::Alarm').find(([id]) => id.includes('Stale'))![1].Properties;
    assert.equal(stale.Threshold, 28 * 3600);
    // The scheduled task definitions are watched for failed runs (a restore is watched by whoever starts it).
    const rule = resourcesOf(t, 'AWS::Events::Rule').find(([id]) => id.includes('TaskFailedRule'))![1].Properties;
    assert.equal(rule.EventPattern.detail.taskDefinitionArn.length, 2);
    // Log groups and the topic are encrypted with the operations key.
    for (const [, lg] of resourcesOf(t, 'AWS::Logs::LogGroup')) {
      assert.match(JSON.stringify(lg.Properties.KmsKeyId), /OrdersDbOperationsKey/);
    }
    // The verifier knows which database it serves.
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ DBBACKUP_DATABASE_ID: 'app' }) },
    });
  });

  test(
    "the runner's security group lets out HTTPS and the " + 'database port only; connections let it into a database',
    () => {
      const stack = newStack();
      const vpc = newVpc(stack);
      const dbGroup = new ec2.SecurityGroup(stack, 'DbGroup', { vpc });
      const backup = new DatabaseBackup(stack, 'Db', { source: postgresSource(stack), vpc });
      dbGroup.connections.allowFrom(backup, ec2.Port.tcp(5432));
      const t = Template.fromStack(stack);
      const [, sg] = resourcesOf(t, 'AWS::EC2::SecurityGroup').find(([id]) => id.startsWith('DbSecurityGroup'))!;
      assert.deepEqual(
        sg.Properties.SecurityGroupEgress.map((e: any) => [e.IpProtocol, e.FromPort, e.ToPort, e.CidrIp]),
        [
          ['tcp', 443, 443, '0.0.0.0/0'],
          ['tcp', 5432, 5432, '0.0.0.0/0'],
        ],
      );
      t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        GroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DbGroup'), 'GroupId'] },
        SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DbSecurityGroup'), 'GroupId'] },
        FromPort: 5432,
      });
    },
  );

  test('schedules per backup type: one task definition per type, one schedule per entry', () => {
    const stack = newStack();
    const backup = new DatabaseBackup(stack, 'Db', {
      // MySQL: its incrementals are binary logs; PostgreSQL's need the physical method (refused.test.ts).
      source: BackupSource.mysql({
        endpoint: 'db.internal',
        databaseName: 'app',
        username: 'backup',
        secret: newSecret(stack),
      }),
      vpc: newVpc(stack),
      schedules: [
        { type: BackupType.FULL, schedule: BackupSchedule.cron({ weekDay: 'SUN', hour: '1' }) },
        { type: BackupType.DIFFERENTIAL, schedule: BackupSchedule.cron({ hour: '1', weekDay: 'MON-SAT' }) },
        { type: BackupType.INCREMENTAL, schedule: BackupSchedule.cron({ hour: '7,13,19', minute: '0' }) },
      ],
      drill: { enabled: false },
    });
    const t = Template.fromStack(stack);
    assert.equal(backup.backupTasks.length, 3);
    assert.equal(backup.drillTask, undefined);
    t.resourceCountIs('AWS::ECS::TaskDefinition', 4); // three backup types and the restore task
    t.resourceCountIs('AWS::Scheduler::Schedule', 3);
    const types = resourcesOf(t, 'AWS::ECS::TaskDefinition')
      .map(([, td]) => td.Properties.ContainerDefinitions[0].Environment.find((e: any) => e.Name === 'DBBACKUP_TYPE'))
      .filter((e) => e !== undefined)
      .map((e) => e.Value);
    assert.deepEqual(types.sort(), ['differential', 'full', 'incremental']);
    // No drill: no drill alarms.
    t.resourceCountIs('AWS::CloudWatch::Alarm', 8);
  });

  test(
    'validation: schedules faster than the timeout, RPO below the gap, ' +
      'incremental without full, retention with an existing vault, age with drills',
    () => {
      const vpcStack = () => {
        const stack = newStack();
        return { stack, vpc: newVpc(stack), source: postgresSource(stack) };
      };
      let s = vpcStack();
      assert.throws(
        () =>
          new DatabaseBackup(s.stack, 'A', { ...s, schedules: [{ schedule: BackupSchedule.rate(Duration.hours(1)) }] }),
        new RegExp(
          /the full schedule 'rate\(1 hour\)' runs every 1 hour, but a backup may/.source +
            / run for 4 hours \(timeout\).*Schedule it less often, or lower timeout/.source,
        ),
      );
      s = vpcStack();
      assert.throws(
        () => new DatabaseBackup(s.stack, 'B', { ...s, rpo: Duration.hours(12) }),
        new RegExp(
          /rpo is 12 hours, shorter than the longest gap between schedule/.source +
            /d backups \(1 day: cron\(0 3 \* \* \? \*\)\).*at least 28 hours/.source,
        ),
      );
      s = vpcStack();
      assert.throws(
        () =>
          new DatabaseBackup(s.stack, 'C', {
            ...s,
            schedules: [{ type: BackupType.INCREMENTAL, schedule: BackupSchedule.cron({ hour: '*/6' }) }],
          }),
        /schedules has only incremental backups, which need a full backup to start from/,
      );
      s = vpcStack();
      const vault = new BackupVault(s.stack, 'Vault');
      assert.throws(
        () => new DatabaseBackup(s.stack, 'D', { ...s, vault, retention: Retention.gfs() }),
        /retention is set, but so is an existing vault/,
      );
      s = vpcStack();
      assert.throws(
        () => new DatabaseBackup(s.stack, 'E', { ...s, encryption: BackupEncryption.age(AGE) }),
        /cannot decrypt age-encrypted backups/,
      );
      s = vpcStack();
      assert.throws(() => new DatabaseBackup(s.stack, 'F', { ...s, schedules: [] }), /schedules is empty/);
      s = vpcStack();
      assert.throws(
        () => new DatabaseBackup(s.stack, 'G', { ...s, drill: { schedule: BackupSchedule.cron({ hour: '*/2' }) } }),
        /the drill schedule .* drills would overlap/,
      );
      assert.throws(
        () =>
          BackupSource.postgres({
            endpoint: 'postgres://db:5432',
            databaseName: 'a',
            username: 'b',
            secret: newSecret(newStack()),
          }),
        /endpoint 'postgres:\/\/db:5432' is not a host name/,
      );
    },
  );

  test('an RPO that leaves no room for a slow backup is allowed with a warning', () => {
    const stack = newStack();
    const backup = new DatabaseBackup(stack, 'Db', {
      source: postgresSource(stack),
      vpc: newVpc(stack),
      rpo: Duration.hours(25),
    });
    Annotations.fromStack(stack).hasWarning(
      `/${backup.node.path}`,
      Match.stringLikeRegexp('rpo \\(25 hours\\) leaves less than the backup timeout'),
    );
  });

  test('age encryption with drills off', () => {
    const stack = newStack();
    const backup = new DatabaseBackup(stack, 'Db', {
      source: postgresSource(stack),
      vpc: newVpc(stack),
      encryption: BackupEncryption.age(AGE),
      drill: { enabled: false },
    });
    assert.equal(backup.drillTask, undefined);
  });

  test('grantRestore covers the objects and the wrapping key', () => {
    const stack = newStack();
    const backup = new DatabaseBackup(stack, 'Db', { source: postgresSource(stack), vpc: newVpc(stack) });
    const role = new iam.Role(stack, 'Restorer', { assumedBy: new iam.AccountRootPrincipal() });
    backup.grantRestore(role);
    const doc = JSON.stringify(
      resourcesOf(Template.fromStack(stack), 'AWS::IAM::Policy').find(([id]) => id.startsWith('Restorer'))![1]
        .Properties.PolicyDocument,
    );
    assert.match(doc, /s3:GetObject/);
    assert.match(doc, /kms:Decrypt/);
    assert.equal(/s3:Put|s3:Delete/.test(doc), false);
    assert.equal(backup.metricBackupAge().metricName, 'BackupAgeSeconds');
  });

  test('snapshot: default PostgreSQL backup', () => {
    const stack = newStack();
    new DatabaseBackup(stack, 'Orders', { source: postgresSource(stack), vpc: newVpc(stack) });
    expect(normalizedTemplate(Template.fromStack(stack))).toMatchSnapshot();
  });
});

describe('a platform team composition: existing VPC, bucket, key, cluster and topic; a MySQL RDS instance', () => {
  function platform() {
    const stack = newStack('Platform');
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'SharedVpc', {
      vpcId: 'vpc-0123456789abcdef0',
      availabilityZones: ['eu-west-1a', 'eu-west-1b'],
      privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
      vpcCidrBlock: '10.20.0.0/16',
    });
    const bucket = s3.Bucket.fromBucketName(stack, 'SharedBucket', 'acme-platform-db-backups');
    const key = kms.Key.fromKeyArn(
      stack,
      'SharedKey',
      'arn:aws:kms:eu-west-1:123456789012:key/0f0f0f0f-1111-2222-3333-444444444444',
    );
    const vault = BackupVault.fromAttributes(stack, 'Vault', { bucket, key, eventBridgeEnabled: true });
    const cluster = ecs.Cluster.fromClusterAttributes(stack, 'SharedCluster', { clusterName: 'platform-jobs', vpc });
    const topic = sns.Topic.fromTopicArn(stack, 'Pager', 'arn:aws:sns:eu-west-1:123456789012:pager');
    const opsKey = kms.Key.fromKeyArn(
      stack,
      'OpsKey',
      'arn:aws:kms:eu-west-1:123456789012:key/0e0e0e0e-1111-2222-3333-444444444444',
    );
    const instance = new rds.DatabaseInstance(stack, 'Billing', {
      engine: rds.DatabaseInstanceEngine.mysql({ version: rds.MysqlEngineVersion.VER_8_0_46 }),
      vpc,
      credentials: rds.Credentials.fromGeneratedSecret('admin'),
      storageEncrypted: true,
    });
    const backups = ['billing', 'billing-archive'].map(
      (id, i) =>
        new DatabaseBackup(stack, `Backup${i}`, {
          databaseId: id,
          source: BackupSource.fromRdsInstance(instance, {
            databaseName: i === 0 ? 'billing' : 'archive',
            username: 'backup',
          }),
          vpc,
          vault,
          cluster,
          alarmTopic: topic,
          operationsKey: opsKey,
          schedules: [{ schedule: BackupSchedule.cron({ hour: '1', minute: String(i * 30) }) }],
          rpo: Duration.hours(30),
          rto: Duration.hours(1),
        }),
    );
    return { stack, backups, t: Template.fromStack(stack) };
  }

  test('nothing is created that was handed in: no bucket, cluster, topic or key', () => {
    const { t } = platform();
    t.resourceCountIs('AWS::S3::Bucket', 0);
    t.resourceCountIs('AWS::ECS::Cluster', 0);
    t.resourceCountIs('AWS::SNS::Topic', 0);
    t.resourceCountIs('AWS::KMS::Key', 0);
    t.resourceCountIs('AWS::EC2::VPC', 0);
  });

  test(
    'MySQL engine and source URL from the instance, storage ' + "under each database's prefix in the shared bucket",
    () => {
      const { t } = platform();
      const envs = resourcesOf(t, 'AWS::ECS::TaskDefinition')
        .map(([, td]) => td.Properties.ContainerDefinitions.find((c: any) => c.Name === 'runner'))
        .filter((c: any) => c.Command[0] === 'backup')
        .map((c: any) => Object.fromEntries(c.Environment.map((e: any) => [e.Name, e.Value])));
      assert.equal(envs.length, 2);
      for (const env of envs) {
        assert.equal(env.DBBACKUP_ENGINE, 'mysql');
        assert.match(
          JSON.stringify(env.DBBACKUP_SOURCE),
          new RegExp(
            /"mysql:\/\/backup@",\{"Fn::GetAtt":\["Billing[0-9A-F]+","Endpoint.Address"\]\},"/.source +
              /:",\{"Fn::GetAtt":\["Billing[0-9A-F]+","Endpoint.Port"\]\},"\/(billing|archive)"/.source,
          ),
        );
        assert.equal(
          env.DBBACKUP_ENCRYPT,
          'kms:arn:aws:kms:eu-west-1:123456789012:key/0f0f0f0f-1111-2222-3333-444444444444',
        );
      }
      assert.deepEqual(envs.map((e) => e.DBBACKUP_TO).sort(), [
        's3://acme-platform-db-backups/billing',
        's3://acme-platform-db-backups/billing-archive',
      ]);
      const drill = resourcesOf(t, 'AWS::ECS::TaskDefinition')
        .map(([, td]) => td.Properties.ContainerDefinitions.find((c: any) => c.Name === 'database'))
        .filter(Boolean);
      // A MySQL 8.0 instance is drilled on MySQL 8.0 (lib/core/drill: the source's server and major).
      assert.equal(drill[0].Image, 'public.ecr.aws/docker/library/mysql:8.0');
    },
  );

  test('the runners are let into the instance on its port; schedules run in the shared cluster and subnets', () => {
    const { t } = platform();
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^BillingSecurityGroup'), 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Backup0SecurityGroup'), 'GroupId'] },
      FromPort: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Billing'), 'Endpoint.Port'] },
    });
    for (const [, s] of resourcesOf(t, 'AWS::Scheduler::Schedule')) {
      assert.match(JSON.stringify(s.Properties.Target.Arn), /cluster\/platform-jobs/);
      assert.deepEqual(s.Properties.Target.EcsParameters.NetworkConfiguration.AwsvpcConfiguration.Subnets, [
        'subnet-0aaaaaaaaaaaaaaaa',
        'subnet-0bbbbbbbbbbbbbbbb',
      ]);
    }
  });

  test('alarms go to the shared topic; each database has its own grants and prefix', () => {
    const { t } = platform();
    for (const [, a] of resourcesOf(t, 'AWS::CloudWatch::Alarm')) {
      assert.deepEqual(a.Properties.AlarmActions, ['arn:aws:sns:eu-west-1:123456789012:pager']);
    }
    const policies = resourcesOf(t, 'AWS::IAM::Policy').filter(([id]) => /Backup0FullBackupTaskTaskRole/.test(id));
    const doc = JSON.stringify(policies[0][1].Properties.PolicyDocument);
    assert.match(doc, /acme-platform-db-backups\/billing\/\*/);
    assert.equal(doc.includes('billing-archive'), false);
  });

  test('snapshot: platform composition', () => {
    const { t } = platform();
    expect(normalizedTemplate(t)).toMatchSnapshot();
  });
});
