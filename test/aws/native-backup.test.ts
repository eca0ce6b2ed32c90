import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { App, Aspects, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import { AwsSolutionsChecks, NIST80053R5Checks } from 'cdk-nag';
import { AwsSolutionsChecks as AwsSolutionsChecksV2 } from 'cdk-nag-v2';
import type { IConstruct } from 'constructs';
import { BackupSource, BackupVault, DatabaseBackup, type NativeBackupOptions } from '../../lib';
import { newSecret, newVpc, normalizedTemplate, resourcesOf } from './helpers';

/** An RDS PostgreSQL instance and its DatabaseBackup (with `nativeBackup` as given; undefined: none). */
/** `nativeBackup` may be made in the stack (an existing vault imported there, as a user does). */
function withInstance(
  nativeBackup: NativeBackupOptions | ((stack: Stack) => NativeBackupOptions) | undefined,
  app = new App(),
) {
  const stack = new Stack(app, 'Db', { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = newVpc(stack);
  const instance = new rds.DatabaseInstance(stack, 'Orders', {
    engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17_9 }),
    instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MEDIUM),
    vpc,
    storageEncrypted: true,
  });
  const vault = new BackupVault(stack, 'Vault');
  const db = new DatabaseBackup(stack, 'OrdersBackup', {
    databaseId: 'orders',
    source: BackupSource.fromRdsInstance(instance, { databaseName: 'orders', username: 'backup' }),
    vpc,
    vault,
    nativeBackup: typeof nativeBackup === 'function' ? nativeBackup(stack) : nativeBackup,
  });
  return { app, stack, instance, vault, db };
}

describe('nativeBackup: an RDS instance or Aurora cluster in an AWS Backup plan', () => {
  test('daily snapshots and continuous backup (35 days), the instance selected by its ARN', () => {
    const { stack, db } = withInstance({});
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::Backup::BackupPlan', 1);
    const plan = resourcesOf(t, 'AWS::Backup::BackupPlan')[0][1].Properties.BackupPlan;
    assert.equal(plan.BackupPlanName, 'dbbackup-orders');
    const rules = Object.fromEntries(plan.BackupPlanRule.map((r: any) => [r.RuleName, r]));
    assert.deepEqual(Object.keys(rules).sort(), ['ContinuousBackup', 'DailySnapshots']);
    assert.equal(rules.DailySnapshots.ScheduleExpression, 'cron(0 5 * * ? *)');
    assert.deepEqual(rules.DailySnapshots.Lifecycle, { DeleteAfterDays: 35 });
    assert.equal(rules.DailySnapshots.EnableContinuousBackup, undefined);
    assert.equal(rules.ContinuousBackup.EnableContinuousBackup, true);
    assert.deepEqual(rules.ContinuousBackup.Lifecycle, { DeleteAfterDays: 35 });
    const selection = resourcesOf(t, 'AWS::Backup::BackupSelection')[0][1].Properties.BackupSelection;
    assert.match(JSON.stringify(selection.Resources), /:rds:eu-west-1:123456789012:db:/);
    assert.match(JSON.stringify(selection.Resources), /"Ref":"Orders[0-9A-F]+"/);
    assert.ok(db.nativeBackup !== undefined);
  });

  test('a new AWS Backup vault, encrypted with its own rotating key whose policy lets AWS Backup use it', () => {
    const { stack } = withInstance({});
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Backup::BackupVault', {
      EncryptionKeyArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^OrdersBackupNativeBackupKey'), 'Arn'] },
    });
    t.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'AllowAwsBackup',
            Condition: { StringEquals: Match.objectLike({ 'kms:ViaService': 'backup.eu-west-1.amazonaws.com' }) },
          }),
        ]),
      },
    });
  });

  test("the vault's key instead of a new one, and an Aurora cluster by its cluster ARN", () => {
    const app = new App();
    const stack = new Stack(app, 'Db', { env: { account: '123456789012', region: 'eu-west-1' } });
    const vpc = newVpc(stack);
    const cluster = new rds.DatabaseCluster(stack, 'Aurora', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_4 }),
      writer: rds.ClusterInstance.provisioned('Writer'),
      vpc,
      storageEncrypted: true,
    });
    const vault = new BackupVault(stack, 'Vault');
    new DatabaseBackup(stack, 'Backup', {
      databaseId: 'aurora',
      source: BackupSource.fromDatabaseCluster(cluster, { databaseName: 'app', username: 'backup' }),
      vpc,
      vault,
      nativeBackup: {
        encryptionKey: vault.key,
        snapshotRetention: Duration.days(90),
        pointInTimeWindow: Duration.days(14),
      },
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Backup::BackupVault', {
      EncryptionKeyArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^VaultKey'), 'Arn'] },
    });
    const selection = resourcesOf(t, 'AWS::Backup::BackupSelection')[0][1].Properties.BackupSelection;
    assert.match(JSON.stringify(selection.Resources), /:rds:eu-west-1:123456789012:cluster:/);
    const rules = resourcesOf(t, 'AWS::Backup::BackupPlan')[0][1].Properties.BackupPlan.BackupPlanRule;
    assert.deepEqual(
      rules.map((r: any) => [r.RuleName, r.Lifecycle.DeleteAfterDays]),
      [
        ['DailySnapshots', 90],
        ['ContinuousBackup', 14],
      ],
    );
  });

  test('without continuous backup there is one rule; an existing AWS Backup vault is used as is', () => {
    const { stack } = withInstance((scope) => ({
      continuousBackup: false,
      backupVault: backup.BackupVault.fromBackupVaultName(scope, 'Existing', 'org-backups'),
    }));
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::Backup::BackupVault', 0);
    const rules = resourcesOf(t, 'AWS::Backup::BackupPlan')[0][1].Properties.BackupPlan.BackupPlanRule;
    assert.deepEqual(
      rules.map((r: any) => [r.RuleName, r.TargetBackupVault]),
      [['DailySnapshots', 'org-backups']],
    );
  });

  test(
    'refused: a self-managed source, a window over 35 days, ' +
      'a vault with a key, a window without continuous backup',
    () => {
      const app = new App();
      const stack = new Stack(app, 'S', { env: { account: '123456789012', region: 'eu-west-1' } });
      const vpc = newVpc(stack);
      assert.throws(
        () =>
          new DatabaseBackup(stack, 'SelfManaged', {
            databaseId: 'self',
            source: BackupSource.postgres({
              endpoint: 'db.internal',
              databaseName: 'app',
              username: 'backup',
              secret: newSecret(stack),
            }),
            vpc,
            nativeBackup: {},
          }),
        /nativeBackup is set for a self-managed postgres database \(db\.internal\); AWS Backup snapshots only RDS/,
      );
      assert.throws(
        () => withInstance({ pointInTimeWindow: Duration.days(36) }),
        /pointInTimeWindow is 36 days; AWS Backup keeps continuous backups of RDS and Aurora for at most 35 days/,
      );
      assert.throws(
        () => withInstance({ continuousBackup: false, pointInTimeWindow: Duration.days(7) }),
        /continuousBackup is false/,
      );
      assert.throws(() => withInstance({ snapshotRetention: Duration.hours(36) }), /whole days/);
      const other = new Stack(new App(), 'O');
      assert.throws(
        () =>
          withInstance({
            backupVault: backup.BackupVault.fromBackupVaultName(other, 'E', 'x'),
            encryptionKey: withInstance({}).vault.key,
          }),
        /both backupVault and encryptionKey/,
      );
    },
  );

  test('cdk-nag 2 and 3 report nothing on the native backup, and the instance is now in a backup plan', () => {
    const onNative = (p: string) => /OrdersBackup\/NativeBackup\//.test(p);
    const { app, stack } = withInstance({});
    for (const pack of [new AwsSolutionsChecks(), new NIST80053R5Checks()]) {
      const v = pack.validateScope(stack).violations;
      const mine = v.filter((x) => x.violatingResources.some((r) => onNative(r.constructPath ?? '')));
      assert.deepEqual(
        mine.map((x) => x.ruleName),
        [],
      );
      assert.equal(
        v.some((x) => x.ruleName === 'NIST.800.53.R5-RDSInBackupPlan'),
        false,
        'the instance is still reported as in no backup plan',
      );
    }
    Aspects.of(app).add(new AwsSolutionsChecksV2());
    app.synth();
    const found: string[] = [];
    const visit = (c: IConstruct): void => {
      for (const m of c.node.metadata)
        if ((m.type === 'aws:cdk:error' || m.type === 'aws:cdk:warning') && onNative(c.node.path))
          found.push(`${c.node.path}: ${String(m.data).split('\n')[0]}`);
      c.node.children.forEach(visit);
    };
    visit(app);
    assert.deepEqual(found, []);
  });

  test(
    'without nativeBackup nothing of AWS Backup is made, and ' + 'NIST reports the instance (the check above can fail)',
    () => {
      const { stack } = withInstance(undefined);
      const t = Template.fromStack(stack);
      t.resourceCountIs('AWS::Backup::BackupPlan', 0);
      const v = new NIST80053R5Checks().validateScope(stack).violations;
      assert.ok(v.some((x) => x.ruleName === 'NIST.800.53.R5-RDSInBackupPlan'));
    },
  );

  test('cfn-lint finds nothing; snapshot of the native backup resources', () => {
    const { stack } = withInstance({});
    const t = Template.fromStack(stack);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-native-'));
    try {
      const file = path.join(dir, 'template.json');
      fs.writeFileSync(file, JSON.stringify(t.toJSON()));
      // W3010: the test VPC, in a stack with a fixed environment, has CDK's stand-in AZ names.
      const lint = spawnSync('cfn-lint', ['--format', 'parseable', '--ignore-checks', 'W3010', '--', file], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(lint.error, undefined, `cfn-lint did not run: ${lint.error}`);
      assert.equal(lint.status, 0, `cfn-lint reported:\n${lint.stdout}${lint.stderr}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const all = normalizedTemplate(t) as { Resources: Record<string, unknown> };
    const native = Object.fromEntries(
      Object.entries(all.Resources).filter(([id]) => id.startsWith('OrdersBackupNativeBackup')),
    );
    expect(native).toMatchSnapshot();
  });
});
