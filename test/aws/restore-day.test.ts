import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, test } from '@jest/globals';
import { App, CfnElement, Stack, Token } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import {
  BackupEncryption,
  BackupFleet,
  BackupSource,
  DatabaseBackup,
  type DatabaseBackupProps,
  PointInTimeRecovery,
  type RestoreDrillOptions,
} from '../../lib';
import { KMS_UNWRAP_ACTIONS, S3_PERMISSIONS, BackupRole } from '../../lib/core';
import { assertNagClean, newSecret, newStack, newVpc, postgresSource, resourcesOf } from './helpers';

const env = { account: '123456789012', region: 'eu-west-1' };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-restore-day-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * A CloudFormation value as text: `Ref X` and `GetAtt X.Attr` become `${X}`, as the runbook
 * writes them, so one expected string checks the output and the runbook line alike.
 */
function flatten(v: unknown): string {
  if (typeof v === 'string') return v;
  const o = v as Record<string, any>;
  if (o['Fn::Join'] !== undefined) return (o['Fn::Join'][1] as unknown[]).map(flatten).join(o['Fn::Join'][0]);
  if (o.Ref !== undefined) return `\${${o.Ref}}`;
  if (o['Fn::GetAtt'] !== undefined) return `\${${o['Fn::GetAtt'][0]}}`;
  throw new Error(`cannot flatten ${JSON.stringify(v)}`);
}

/** The logical id of a construct's CloudFormation resource (its default child, all the way down). */
function lid(c: IConstruct): string {
  let el: IConstruct | undefined = c;
  while (el !== undefined && !(el instanceof CfnElement)) el = el.node.defaultChild;
  assert.ok(el instanceof CfnElement, `${c.node.path} has no CloudFormation resource`);
  return Stack.of(c).resolve(el.logicalId);
}

function outputs(t: Template): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, o] of Object.entries(t.toJSON().Outputs ?? {})) out[id] = flatten((o as any).Value);
  return out;
}

function backupStack(props: Partial<DatabaseBackupProps> = {}, outdir?: string) {
  const app = new App(outdir === undefined ? {} : { outdir });
  const stack = new Stack(app, 'Test', { env });
  const vpc = newVpc(stack);
  const backup = new DatabaseBackup(stack, 'Orders', {
    source: postgresSource(stack),
    vpc,
    databaseId: 'orders',
    ...props,
  });
  return { app, stack, backup };
}

function restoreTaskDefinition(t: Template): any {
  const found = resourcesOf(t, 'AWS::ECS::TaskDefinition').filter(([, td]) =>
    td.Properties.ContainerDefinitions.some((c: any) => c.Name === 'runner' && c.Command?.[0] === 'restore'),
  );
  assert.equal(found.length, 1, 'exactly one task definition runs restore');
  return found[0][1].Properties;
}

describe('the restore task', () => {
  test("has the reader's rights only: read and list under the prefix, kms:Decrypt; no write, no delete", () => {
    const { stack } = backupStack();
    const t = Template.fromStack(stack);
    const td = restoreTaskDefinition(t);
    const roleId = td.TaskRoleArn['Fn::GetAtt'][0];
    const policies = resourcesOf(t, 'AWS::IAM::Policy').filter(([, p]) =>
      p.Properties.Roles.some((r: any) => r.Ref === roleId),
    );
    assert.equal(policies.length, 1);
    const statements = policies[0][1].Properties.PolicyDocument.Statement as any[];
    const actions = new Set(statements.flatMap((s) => [s.Action].flat()));
    const reader = S3_PERMISSIONS[BackupRole.READER];
    assert.deepEqual(
      [...actions].sort(),
      [
        ...new Set([...reader.objectActions, ...reader.listActions, ...reader.sseKeyActions, ...KMS_UNWRAP_ACTIONS]),
      ].sort(),
    );
    for (const a of actions) assert.doesNotMatch(a, /Put|Delete|Abort|Encrypt|GenerateDataKey|\*/);
    const objects = statements.find((s) => [s.Action].flat().includes('s3:GetObject'));
    assert.match(flatten(objects.Resource), /\/orders\/\*$/);
    const list = statements.find((s) => s.Action === 's3:ListBucket');
    assert.deepEqual(list.Condition, { StringLike: { 's3:prefix': ['orders', 'orders/*'] } });
  });

  test('runs `restore --latest` unless overridden, from the vault into the target, password from the secret', () => {
    const { stack, backup } = backupStack();
    const t = Template.fromStack(stack);
    const c = restoreTaskDefinition(t).ContainerDefinitions.find((x: any) => x.Name === 'runner');
    assert.deepEqual(c.Command, ['restore', '--latest']);
    const envOf = Object.fromEntries(c.Environment.map((e: any) => [e.Name, flatten(e.Value)]));
    const bucket = lid(backup.bucket);
    assert.equal(envOf.DBBACKUP_FROM, `s3://\${${bucket}}/orders`);
    assert.equal(envOf.DBBACKUP_TARGET, 'postgres://backup@db.internal:5432/app');
    assert.equal(envOf.DBBACKUP_DATABASE_ID, 'orders');
    assert.deepEqual(
      c.Secrets.map((s: any) => s.Name),
      ['DBBACKUP_TARGET_PASSWORD'],
    );
    // Its own group: HTTPS out and the target's port, nothing else.
    const group = lid(backup.restoreTask!.securityGroup!);
    const egress = t
      .toJSON()
      .Resources[group].Properties.SecurityGroupEgress.map((e: any) => e.FromPort)
      .sort();
    assert.deepEqual(egress, [443, 5432]);
  });

  test('a target of your own: its URL, secret and port; age backups get no restore task', () => {
    const { stack } = backupStack({
      restore: { target: 'postgres://restorer@restore.internal:6432/orders' },
    });
    const c = restoreTaskDefinition(Template.fromStack(stack)).ContainerDefinitions.find(
      (x: any) => x.Name === 'runner',
    );
    assert.equal(
      c.Environment.find((e: any) => e.Name === 'DBBACKUP_TARGET').Value,
      'postgres://restorer@restore.internal:6432/orders',
    );
    const { stack: ageStack, backup } = backupStack({
      encryption: BackupEncryption.age('age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'),
      drill: { enabled: false },
    });
    assert.equal(backup.restoreTask, undefined);
    assert.equal(
      resourcesOf(Template.fromStack(ageStack), 'AWS::ECS::TaskDefinition').some(([, td]) =>
        td.Properties.ContainerDefinitions.some((x: any) => x.Command?.[0] === 'restore'),
      ),
      false,
    );
  });

  test('in a fleet: none by default; when asked, per database under the fleet, sharing its execution role', () => {
    const stack = newStack();
    const fleet = new BackupFleet(stack, 'Fleet', { vpc: newVpc(stack) });
    const plain = new DatabaseBackup(stack, 'Orders', { fleet, databaseId: 'orders', source: postgresSource(stack) });
    assert.equal(plain.restoreTask, undefined);
    const withRestore = new DatabaseBackup(stack, 'Billing', {
      fleet,
      databaseId: 'billing',
      source: BackupSource.postgres({
        endpoint: 'billing.internal',
        databaseName: 'billing',
        username: 'backup',
        secret: newSecret(stack, 'BillingSecret'),
      }),
      restore: { enabled: true },
    });
    const task = withRestore.restoreTask!;
    assert.equal(task.taskDefinition.executionRole, fleet.executionRole);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::ECS::TaskDefinition', {
      Family: Match.stringLikeRegexp('-billing-restore$'),
    });
    // Fleet members get no outputs by default (CloudFormation allows 200 a stack).
    assert.deepEqual(Object.keys(t.toJSON().Outputs ?? {}), []);
    // cdk-nag: the member's restore task (its role, group, policy) has nothing unacknowledged.
    assertNagClean(stack, 'Test/Billing/');
  });
});

describe('the stack outputs and the runbook', () => {
  test('outputs hold the exact commands of an on-demand backup and of a restore (newest, by id)', () => {
    const { stack, backup } = backupStack();
    const t = Template.fromStack(stack);
    const cluster = lid(backup.cluster);
    const backupTd = lid(backup.taskDefinition);
    const restoreTd = lid(backup.restoreTask!.taskDefinition);
    const backupSg = lid(backup.securityGroup!);
    const restoreSg = lid(backup.restoreTask!.securityGroup!);
    const subnets = ['VpcPrivateSubnet1Subnet536B997A', 'VpcPrivateSubnet2Subnet3788AAA1'].map((s) => `\${${s}}`);
    const net = (sg: string) =>
      `--network-configuration "awsvpcConfiguration={subnets=[${subnets.join(',')}],` +
      `securityGroups=[\${${sg}}],assignPublicIp=DISABLED}"`;
    const head = `aws ecs run-task --region eu-west-1 --cluster \${${cluster}}`;
    const tail = "--query 'tasks[0].taskArn' --output text";
    const restore = (command: string) =>
      `${head} --task-definition \${${restoreTd}} --launch-type FARGATE ${net(restoreSg)} ` +
      `--overrides '{"containerOverrides":[{"name":"runner","command":${command}}]}' ${tail}`;
    const o = outputs(t);
    const byName = (suffix: string) => {
      const key = Object.keys(o).find((k) => k.startsWith(`Orders${suffix}`));
      assert.ok(key !== undefined, `no output Orders${suffix}: ${Object.keys(o).join(', ')}`);
      return o[key];
    };
    assert.equal(
      byName('BackupNowCommand'),
      `${head} --task-definition \${${backupTd}} --launch-type FARGATE ${net(backupSg)} ${tail}`,
    );
    assert.equal(byName('RestoreLatestCommand'), restore('["restore","--latest"]'));
    assert.equal(byName('RestoreByIdCommand'), restore('["restore","--id","BACKUP_ID"]'));
    // PostgreSQL restores to a moment into a data directory, which a task does not have.
    assert.equal(
      Object.keys(o).some((k) => k.includes('RestoreToTime')),
      false,
    );
  });

  test('with binary log shipping, a restore to a moment is an output too', () => {
    const stack = newStack();
    new DatabaseBackup(stack, 'Orders', {
      source: BackupSource.mysql({
        endpoint: 'orders.db.internal',
        databaseName: 'orders',
        username: 'backup',
        secret: newSecret(stack),
      }),
      vpc: newVpc(stack),
      pointInTimeRecovery: PointInTimeRecovery.enabled(),
    });
    const o = outputs(Template.fromStack(stack));
    const key = Object.keys(o).find((k) => k.startsWith('OrdersRestoreToTimeCommand'));
    assert.ok(key !== undefined);
    assert.match(o[key], /"command":\["restore","--to-time","2026-01-31T23:59:00Z"\]/);
  });

  test(
    '<stack>.runbook.md is written in the assembly outdir with the ' +
      'same commands, how to read the names, and the by-hand path',
    () => {
      const outdir = path.join(tmp, 'assembly');
      const { app, stack, backup } = backupStack({}, outdir);
      new DatabaseBackup(stack, 'Billing', {
        source: BackupSource.postgres({
          endpoint: 'billing.internal',
          databaseName: 'billing',
          username: 'backup',
          secret: newSecret(stack, 'BillingSecret'),
        }),
        vpc: stack.node.findChild('Vpc') as import('aws-cdk-lib/aws-ec2').IVpc,
        databaseId: 'billing',
      });
      const assembly = app.synth();
      const file = path.join(assembly.directory, 'Test.runbook.md');
      assert.ok(fs.existsSync(file), `no ${file}: ${fs.readdirSync(assembly.directory).join(', ')}`);
      const md = fs.readFileSync(file, 'utf8');
      const t = Template.fromJSON(assembly.getStackByName('Test').template);
      for (const value of Object.values(outputs(t))) assert.ok(md.includes(value), `the runbook lacks:\n${value}`);
      assert.match(md, /^# Restore runbook: orders$/m);
      assert.match(md, /^# Restore runbook: billing$/m);
      const cluster = lid(backup.cluster);
      assert.ok(
        md.includes(
          `${cluster}=$(aws cloudformation describe-stack-resource --stack-name Test ` +
            `--logical-resource-id ${cluster} ` +
            '--query StackResourceDetail.PhysicalResourceId --output text)',
        ),
      );
      const bucket = lid(backup.bucket);
      const key = lid(backup.key);
      assert.ok(
        md.includes(
          `aws s3 cp s3://\${${bucket}}/orders/BACKUP_ID/database.pgdump.zst.age - | age -d -i identity.txt | ` +
            'zstd -d -c | pg_restore --single-transaction --exit-on-error -d TARGET_DATABASE',
        ),
      );
      assert.ok(md.includes(`aws kms decrypt --key-id \${${key}} --ciphertext-blob fileb://wrapped-key.bin`));
      assert.match(md, /--metric-name RestoreTimeSeconds --dimensions Name=DatabaseId,Value=orders/);
      // Deterministic: no timestamps or machine paths.
      assert.equal(md.includes(outdir), false);
      // cfn-lint on the template with two restore tasks and their outputs (W3010: the test VPC's
      // availability zones are the stand-ins of a fixed environment, not a resource of ours).
      const template = path.join(assembly.directory, 'Test.template.json');
      const lint = spawnSync('cfn-lint', ['--format', 'parseable', '--ignore-checks', 'W3010', '--', template], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(lint.error, undefined, `cfn-lint did not run: ${lint.error}`);
      assert.equal(lint.status, 0, `cfn-lint reported:\n${lint.stdout}${lint.stderr}`);
    },
  );
});

describe('grants', () => {
  function statementsOf(t: Template, roleLogicalId: string): any[] {
    return resourcesOf(t, 'AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === roleLogicalId))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
  }

  test(
    'grantRunBackup: ecs:RunTask on the backup task, iam:PassRole ' +
      'on its roles, ecs:DescribeTasks; nothing on the backups',
    () => {
      const { stack, backup } = backupStack();
      const operator = new iam.Role(stack, 'Operator', { assumedBy: new iam.AccountRootPrincipal() });
      backup.grantRunBackup(operator);
      const t = Template.fromStack(stack);
      const s = statementsOf(t, lid(operator));
      const td = lid(backup.taskDefinition);
      const run = s.find((x) => x.Action === 'ecs:RunTask');
      assert.equal(flatten(run.Resource), `\${${td}}`);
      const pass = s.find((x) => x.Action === 'iam:PassRole');
      assert.deepEqual(
        [pass.Resource].flat().map(flatten).sort(),
        [`\${${lid(backup.taskDefinition.taskRole)}}`, `\${${lid(backup.taskDefinition.executionRole!)}}`].sort(),
      );
      const describeTasks = s.find((x) => x.Action === 'ecs:DescribeTasks');
      assert.match(flatten(describeTasks.Resource), /:task\/\$\{OrdersCluster[0-9A-F]+\}\/\*$/);
      assert.equal(JSON.stringify(s).match(/s3:|kms:/), null);
    },
  );

  test('grantRestore: the restore task (RunTask, PassRole), the backups (read) and the key (kms:Decrypt)', () => {
    const { stack, backup } = backupStack();
    const operator = new iam.Role(stack, 'Operator', { assumedBy: new iam.AccountRootPrincipal() });
    backup.grantRestore(operator);
    const t = Template.fromStack(stack);
    const s = statementsOf(t, lid(operator));
    const run = s.find((x) => x.Action === 'ecs:RunTask');
    assert.equal(flatten(run.Resource), `\${${lid(backup.restoreTask!.taskDefinition)}}`);
    const pass = s.find((x) => x.Action === 'iam:PassRole');
    assert.deepEqual(
      [pass.Resource].flat().map(flatten).sort(),
      [
        `\${${lid(backup.restoreTask!.taskRole)}}`,
        `\${${lid(backup.restoreTask!.taskDefinition.executionRole!)}}`,
      ].sort(),
    );
    const key = lid(backup.key);
    assert.ok(s.some((x) => x.Action === 'kms:Decrypt' && flatten(x.Resource) === `\${${key}}`));
    assert.ok(s.some((x) => [x.Action].flat().includes('s3:GetObject')));
    assert.equal(/s3:Put|s3:Delete|kms:Encrypt/.test(JSON.stringify(s)), false);
  });
});

describe('refused at synth', () => {
  function drillStack(source: (s: Stack) => BackupSource, drill: RestoreDrillOptions = {}) {
    const stack = newStack();
    const backup = new DatabaseBackup(stack, 'Orders', { source: source(stack), vpc: newVpc(stack), drill });
    return { stack, backup };
  }
  const pg = (version: string) => (s: Stack) =>
    BackupSource.postgres({
      endpoint: 'db.internal',
      databaseName: 'orders',
      username: 'backup',
      secret: newSecret(s),
      engineVersion: version,
    });
  const mysql = (version: string) => (s: Stack) =>
    BackupSource.mysql({
      endpoint: 'db.internal',
      databaseName: 'orders',
      username: 'backup',
      secret: newSecret(s),
      engineVersion: version,
    });
  const mariadb = (version: string) => (s: Stack) =>
    BackupSource.mariadb({
      endpoint: 'db.internal',
      databaseName: 'orders',
      username: 'backup',
      secret: newSecret(s),
      engineVersion: version,
    });
  const image = ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/postgres:17-bookworm');

  function scratchImage(stack: Stack): string {
    const t = Template.fromStack(stack);
    const td = resourcesOf(t, 'AWS::ECS::TaskDefinition').find(([, d]) =>
      d.Properties.ContainerDefinitions.some((c: any) => c.Name === 'database'),
    )!;
    return td[1].Properties.ContainerDefinitions.find((c: any) => c.Name === 'database').Image;
  }

  test("the default scratch server is the source's own, on its major version", () => {
    assert.equal(scratchImage(drillStack(pg('16.4')).stack), 'public.ecr.aws/docker/library/postgres:16-bookworm');
    // Aurora MySQL 3 is MySQL 8.0: drilled on MySQL 8.0, not on MariaDB.
    assert.equal(
      scratchImage(drillStack(mysql('8.0.mysql_aurora.3.04.0')).stack),
      'public.ecr.aws/docker/library/mysql:8.0',
    );
    assert.equal(scratchImage(drillStack(mariadb('10.11.8')).stack), 'public.ecr.aws/docker/library/mariadb:10.11');
  });

  test('a PostgreSQL 16 source drilled on PostgreSQL 17, naming both', () => {
    assert.throws(
      () => drillStack(pg('16.4'), { databaseImage: image, databaseImageVersion: '17' }),
      new RegExp(
        /scratch postgres server is version 17 \(drill\.databaseImageVers/.source +
          /ion\), but the source is version 16\.4: drill on major version 16/.source,
      ),
    );
    drillStack(pg('16.4'), { databaseImage: image, databaseImageVersion: '16' });
  });

  test('a MySQL 8 (Aurora MySQL 3) source drilled on MariaDB, naming both', () => {
    assert.throws(
      () =>
        drillStack(mysql('8.0.mysql_aurora.3.04.0'), { databaseImage: image, databaseImageVersion: '11.4-MariaDB' }),
      /scratch server is mariadb, but the source is mysql/,
    );
  });

  test("a custom scratch image without its version, when the source's is known", () => {
    assert.throws(
      () => drillStack(mariadb('10.11'), { databaseImage: image }),
      new RegExp(
        /custom databaseImage whose version is not given.*set drill\./.source +
          /databaseImageVersion to the image's version \(e\.g\. '10'\)/.source,
      ),
    );
  });

  test('a databaseId that would change with the construct: taken from the source, never the construct id', () => {
    const idOf = (constructId: string) => {
      const stack = newStack();
      const b = new DatabaseBackup(stack, constructId, { source: postgresSource(stack), vpc: newVpc(stack) });
      return { b, stack };
    };
    const before = idOf('Orders');
    const renamed = idOf('OrdersRenamed');
    assert.equal(before.b.databaseId, 'app');
    assert.equal(renamed.b.databaseId, before.b.databaseId);
    assert.equal(renamed.b.prefix, before.b.prefix);
    // The release that took the construct id is named, with the value that keeps its prefix.
    const warnings = Annotations.fromStack(renamed.stack).findWarning('*', Match.stringLikeRegexp('databaseId'));
    assert.match(JSON.stringify(warnings), /set databaseId: 'orders-renamed' to keep the backups under their prefix/);

    const stack = newStack();
    assert.throws(
      () =>
        new DatabaseBackup(stack, 'Orders', {
          source: BackupSource.postgres({
            endpoint: 'db.internal',
            databaseName: Token.asString({ Ref: 'DatabaseName' }),
            username: 'backup',
            secret: newSecret(stack),
          }),
          vpc: newVpc(stack),
        }),
      new RegExp(
        /databaseId is missing on Test\/Orders, and the source's database name /.source +
          /is a token; give databaseId explicitly \(e\.g\. databaseId: 'orders'\)/.source,
      ),
    );
  });
});
