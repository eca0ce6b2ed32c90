import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as kms from 'aws-cdk-lib/aws-kms';
import {
  BackupEncryption,
  BackupRunnerTask,
  BackupType,
  BackupVault,
  Compression,
  Engine,
  RestoreDrillTask,
  ServerFamily,
} from '../../lib';
import { newStack, postgresSource, resourcesOf } from './helpers';

const AGE = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';

function runnerContainer(t: Template, family?: RegExp): any {
  const tds = resourcesOf(t, 'AWS::ECS::TaskDefinition').filter(([id]) => family === undefined || family.test(id));
  return tds[0][1].Properties.ContainerDefinitions.find((c: any) => c.Name === 'runner');
}

describe('BackupRunnerTask', () => {
  test('a Fargate task whose runner gets its settings from the contract and its password from Secrets Manager', () => {
    const stack = newStack();
    const vault = new BackupVault(stack, 'Vault');
    new BackupRunnerTask(stack, 'Task', {
      source: postgresSource(stack),
      vault,
      databaseId: 'app-db',
      backupType: BackupType.INCREMENTAL,
      compression: Compression.LZ4,
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RequiresCompatibilities: ['FARGATE'],
      NetworkMode: 'awsvpc',
      Cpu: '1024',
      Memory: '2048',
      RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
    });
    const c = runnerContainer(t);
    assert.deepEqual(c.Command, ['backup']);
    assert.deepEqual(c.EntryPoint, [
      'timeout',
      '--signal=TERM',
      '--kill-after=60',
      '14400',
      'node',
      '/opt/dbbackup/dbbackup.js',
    ]);
    const env = Object.fromEntries(c.Environment.map((e: any) => [e.Name, e.Value]));
    assert.equal(env.DBBACKUP_ENGINE, 'postgres');
    assert.equal(env.DBBACKUP_SOURCE, 'postgres://backup@db.internal:5432/app');
    assert.match(JSON.stringify(env.DBBACKUP_TO), /"s3:\/\/",\{"Ref":"Vault[0-9A-F]+"\},"\/app-db"/);
    assert.equal(env.DBBACKUP_TYPE, 'incremental');
    assert.equal(env.DBBACKUP_COMPRESSION, 'lz4');
    assert.match(JSON.stringify(env.DBBACKUP_ENCRYPT), /"kms:",\{"Fn::GetAtt":\["VaultKey[0-9A-F]+","Arn"\]\}/);
    assert.equal(env.DBBACKUP_DATABASE_ID, 'app-db');
    assert.equal(env.DBBACKUP_LOG_FORMAT, 'json');
    // No secret travels in the environment; the password comes through ECS secrets.
    assert.equal(JSON.stringify(c.Environment).toLowerCase().includes('password'), false);
    assert.equal(c.Secrets.length, 1);
    assert.equal(c.Secrets[0].Name, 'DBBACKUP_SOURCE_PASSWORD');
    assert.match(JSON.stringify(c.Secrets[0].ValueFrom), /":password::"/);
    assert.equal(c.LogConfiguration.LogDriver, 'awslogs');
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
  });

  test('the execution role reads the secret; the task role writes and reads backups, wraps keys, never deletes', () => {
    const stack = newStack();
    const vault = new BackupVault(stack, 'Vault');
    new BackupRunnerTask(stack, 'Task', { source: postgresSource(stack), vault, databaseId: 'app' });
    const t = Template.fromStack(stack);
    const policies = resourcesOf(t, 'AWS::IAM::Policy');
    const exec = JSON.stringify(policies.find(([id]) => id.includes('ExecutionRole'))![1].Properties.PolicyDocument);
    assert.match(exec, /secretsmanager:GetSecretValue/);
    const task = policies.find(([id]) => id.includes('TaskRole'))![1].Properties.PolicyDocument.Statement as any[];
    const actions = task.flatMap((s) => [s.Action].flat());
    for (const a of [
      's3:PutObject',
      's3:PutObjectTagging',
      's3:AbortMultipartUpload',
      's3:ListMultipartUploadParts',
      's3:GetObject',
      's3:ListBucket',
      'kms:Encrypt',
      'kms:GenerateDataKey',
      'kms:Decrypt',
      'kms:GenerateRandom',
    ]) {
      assert.ok(actions.includes(a), `task role lacks ${a}`);
    }
    assert.equal(
      actions.some((a) => /Delete|s3:\*|kms:\*/.test(a)),
      false,
      actions.join(),
    );
    const random = task.find((s) => s.Action === 'kms:GenerateRandom');
    assert.equal(random.Resource, '*');
    assert.equal(JSON.stringify(task.filter((s) => s !== random)).includes('"Resource":"*"'), false);
  });

  test('age encryption: the recipient goes to the runner, no KMS wrap or GenerateRandom', () => {
    const stack = newStack();
    const vault = new BackupVault(stack, 'Vault');
    new BackupRunnerTask(stack, 'Task', {
      source: postgresSource(stack),
      vault,
      databaseId: 'app',
      encryption: BackupEncryption.age(AGE),
    });
    const t = Template.fromStack(stack);
    const env = Object.fromEntries(runnerContainer(t).Environment.map((e: any) => [e.Name, e.Value]));
    assert.equal(env.DBBACKUP_ENCRYPT, `age:${AGE}`);
    assert.equal(JSON.stringify(t.findResources('AWS::IAM::Policy')).includes('kms:GenerateRandom'), false);
  });

  test('kms encryption with a separate key grants Encrypt on that key', () => {
    const stack = newStack();
    const vault = new BackupVault(stack, 'Vault');
    const key = kms.Key.fromKeyArn(
      stack,
      'Wrap',
      'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
    );
    new BackupRunnerTask(stack, 'Task', {
      source: postgresSource(stack),
      vault,
      databaseId: 'app',
      encryption: BackupEncryption.kms(key),
    });
    const t = Template.fromStack(stack);
    const env = Object.fromEntries(runnerContainer(t).Environment.map((e: any) => [e.Name, e.Value]));
    assert.equal(
      env.DBBACKUP_ENCRYPT,
      'kms:arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
    );
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: 'kms:Encrypt',
            Effect: 'Allow',
            Resource: 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
          },
        ]),
      },
    });
  });

  test('a user image replaces the bundled one', () => {
    const stack = newStack();
    const vault = new BackupVault(stack, 'Vault');
    new BackupRunnerTask(stack, 'Task', {
      source: postgresSource(stack),
      vault,
      databaseId: 'app',
      image: ecs.ContainerImage.fromRegistry('registry.example.com/dbbackup:1.2.3'),
    });
    assert.equal(runnerContainer(Template.fromStack(stack)).Image, 'registry.example.com/dbbackup:1.2.3');
  });

  test('validation names the bad value and the fix', () => {
    const stack = newStack();
    const vault = new BackupVault(stack, 'Vault');
    const source = postgresSource(stack);
    assert.throws(
      () => new BackupRunnerTask(stack, 'A', { source, vault, databaseId: 'bad id!' }),
      /databaseId 'bad id!' is not a valid database id. Use 1 to 40 lower-case letters/,
    );
    assert.throws(
      () => new BackupRunnerTask(stack, 'B', { source, vault, databaseId: 'x', cpu: 1000 }),
      /cpu 1000 is not a Fargate size/,
    );
    assert.throws(
      () => new BackupRunnerTask(stack, 'C', { source, vault, databaseId: 'x', cpu: 256, memoryLimitMiB: 4096 }),
      /memoryLimitMiB 4096 does not go with cpu 256 on Fargate; use 512 or 1024 to 2048/,
    );
    assert.throws(
      () => new BackupRunnerTask(stack, 'D', { source, vault, databaseId: 'x', timeout: Duration.minutes(1) }),
      /timeout is 1 minute; use whole minutes from 5 minutes to 7 days/,
    );
    assert.throws(() => BackupEncryption.age('not-a-recipient'), /does not hold an age recipient/);
  });
});

describe('RestoreDrillTask', () => {
  test(
    'the runner drills into a scratch PostgreSQL beside it, ' +
      'reachable only on 127.0.0.1, and waits for it to be healthy',
    () => {
      const stack = newStack();
      const vault = new BackupVault(stack, 'Vault');
      new RestoreDrillTask(stack, 'Drill', { engine: Engine.POSTGRES, vault, databaseId: 'app' });
      const t = Template.fromStack(stack);
      const td = resourcesOf(t, 'AWS::ECS::TaskDefinition')[0][1].Properties;
      assert.deepEqual(td.EphemeralStorage, { SizeInGiB: 50 });
      const runner = td.ContainerDefinitions.find((c: any) => c.Name === 'runner');
      const db = td.ContainerDefinitions.find((c: any) => c.Name === 'database');
      assert.deepEqual(runner.Command, ['drill']);
      const env = Object.fromEntries(runner.Environment.map((e: any) => [e.Name, e.Value]));
      assert.equal(env.DBBACKUP_TARGET, 'postgres://postgres@127.0.0.1:5432/drill');
      assert.match(JSON.stringify(env.DBBACKUP_FROM), /"s3:\/\/",\{"Ref":"Vault[0-9A-F]+"\},"\/app"/);
      assert.equal(env.DBBACKUP_DATABASE_ID, 'app');
      assert.equal(runner.Secrets, undefined);
      assert.deepEqual(runner.DependsOn, [{ ContainerName: 'database', Condition: 'HEALTHY' }]);
      assert.equal(db.Image, 'public.ecr.aws/docker/library/postgres:17-bookworm');
      assert.ok(db.Command.includes('listen_addresses=127.0.0.1'));
      assert.equal(db.Essential, false);
      assert.match(db.HealthCheck.Command[1], /pg_isready -h 127.0.0.1/);
    },
  );

  test('its role reads backups and unwraps keys, and cannot write', () => {
    const stack = newStack();
    const vault = new BackupVault(stack, 'Vault');
    new RestoreDrillTask(stack, 'Drill', { engine: Engine.MYSQL, vault, databaseId: 'app' });
    const t = Template.fromStack(stack);
    const task = JSON.stringify(
      resourcesOf(t, 'AWS::IAM::Policy').find(([id]) => id.includes('TaskRole'))![1].Properties.PolicyDocument,
    );
    assert.match(task, /s3:GetObject/);
    assert.match(task, /kms:Decrypt/);
    assert.equal(/s3:Put|s3:Delete|kms:Encrypt|GenerateDataKey/.test(task), false, task);
    const db = resourcesOf(t, 'AWS::ECS::TaskDefinition')[0][1].Properties.ContainerDefinitions.find(
      (c: any) => c.Name === 'database',
    );
    // A mysql engine without a family drills on Oracle MySQL (lib/core defaultServerFamily), as
    // BackupSource.mysql does; MariaDB only when named.
    assert.equal(db.Image, 'public.ecr.aws/docker/library/mysql:8.4');
    const other = newStack();
    new RestoreDrillTask(other, 'Drill', {
      engine: Engine.MYSQL,
      serverFamily: ServerFamily.MARIADB,
      vault: new BackupVault(other, 'Vault'),
      databaseId: 'app',
    });
    const maria = resourcesOf(Template.fromStack(other), 'AWS::ECS::TaskDefinition')[0][1].Properties;
    assert.equal(
      maria.ContainerDefinitions.find((c: any) => c.Name === 'database').Image,
      'public.ecr.aws/docker/library/mariadb:11.4',
    );
  });

  test('refuses age-encrypted backups: their identity is not in the cloud', () => {
    const stack = newStack();
    const vault = new BackupVault(stack, 'Vault');
    assert.throws(
      () =>
        new RestoreDrillTask(stack, 'Drill', {
          engine: Engine.POSTGRES,
          vault,
          databaseId: 'app',
          encryption: BackupEncryption.age(AGE),
        }),
      /cannot decrypt age-encrypted backups.*Use BackupEncryption.kms\(\) for scheduled drills, or turn drills off/,
    );
  });
});
