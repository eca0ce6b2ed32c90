import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { App, Aspects, Stack, Validations } from 'aws-cdk-lib';
import type { IPolicyValidationContext, IPolicyValidationPlugin, PolicyValidationPluginReport } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks, NIST80053R5Checks } from 'cdk-nag';
import { AwsSolutionsChecks as AwsSolutionsChecksV2, NIST80053R5Checks as NIST80053R5ChecksV2 } from 'cdk-nag-v2';
import type { IConstruct } from 'constructs';
import { BackupSource, BackupVault, DatabaseBackup } from '../../lib';

const env = { account: '123456789012', region: 'eu-west-1' };

/**
 * The vault in stack A; in stack B a VPC, an RDS instance (its port is a token) and two
 * DatabaseBackups (one from the instance, one from an endpoint), plus a bucket of the user's
 * that breaks AwsSolutions-S1 and S10 on purpose.
 */
function build(): { app: App; vaultStack: Stack; dbStack: Stack } {
  const app = new App();
  const vaultStack = new Stack(app, 'VaultStack', { env });
  const vault = new BackupVault(vaultStack, 'Vault');
  const dbStack = new Stack(app, 'DbStack', { env });
  const vpc = new ec2.Vpc(dbStack, 'Vpc', { maxAzs: 2, natGateways: 1 });
  const instance = new rds.DatabaseInstance(dbStack, 'Db', {
    engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16 }),
    vpc,
    storageEncrypted: true,
  });
  new DatabaseBackup(dbStack, 'Orders', {
    source: BackupSource.fromRdsInstance(instance, { databaseName: 'orders', username: 'backup' }),
    vpc,
    vault,
    databaseId: 'orders',
  });
  new DatabaseBackup(dbStack, 'Billing', {
    source: BackupSource.postgres({
      endpoint: 'billing.db.internal',
      databaseName: 'billing',
      username: 'backup',
      secret: instance.secret!,
    }),
    vpc,
    vault,
    databaseId: 'billing',
  });
  new s3.Bucket(dbStack, 'Careless');
  return { app, vaultStack, dbStack };
}

/** Whether a construct path is one of the library's (the ingress rule the runner's allowTo adds included). */
function isLibrary(path: string): boolean {
  const p = path.replace(/^\//, '');
  return new RegExp(
    /^VaultStack\/Vault\/|^DbStack\/(Orders|Billing)\/|^Db/.source +
      /Stack\/Db\/SecurityGroup\/from DbStack(Orders|Billing)/.source,
  ).test(p);
}

/** cdk-nag 2 findings: the error and warning annotations it left on the tree. */
function v2Findings(root: IConstruct): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  const visit = (c: IConstruct): void => {
    for (const m of c.node.metadata) {
      if (m.type !== 'aws:cdk:error' && m.type !== 'aws:cdk:warning') continue;
      const text = String(m.data);
      if (/^(AwsSolutions|NIST\.800\.53\.R5|CdkNagValidationFailure)/.test(text)) out.push({ path: c.node.path, text });
    }
    c.node.children.forEach(visit);
  };
  visit(root);
  return out;
}

/** A cdk-nag 3 pack as a validation plugin whose report is kept (and synthesis not stopped). */
function recording(pack: IPolicyValidationPlugin, reports: PolicyValidationPluginReport[]): IPolicyValidationPlugin {
  return {
    name: pack.name,
    validate: (context: IPolicyValidationContext) => {
      reports.push(pack.validate(context));
      return { success: true, violations: [] };
    },
  };
}

function flat(reports: PolicyValidationPluginReport[]): { rule: string; path: string }[] {
  return reports.flatMap((r) =>
    r.violations.flatMap((v) =>
      v.violatingResources.map((res) => ({ rule: v.ruleName, path: res.constructPath ?? '' })),
    ),
  );
}

describe('cdk-nag 2 and 3 both see the acknowledgements, vault in another stack, token port', () => {
  test('the vault really is in another stack: the grants import its ARN', () => {
    const { dbStack } = build();
    const policies = JSON.stringify(Template.fromStack(dbStack).findResources('AWS::IAM::Policy'));
    assert.match(policies, /Fn::ImportValue/);
    assert.match(policies, /VaultStack:ExportsOutput/);
  });

  test('cdk-nag 2 (Aspects): no finding on a library construct; the user bucket is still reported', () => {
    const { app } = build();
    Aspects.of(app).add(new AwsSolutionsChecksV2());
    Aspects.of(app).add(new NIST80053R5ChecksV2());
    app.synth();
    const found = v2Findings(app);
    const library = found.filter((f) => isLibrary(f.path)).map((f) => `${f.path}: ${f.text.split('\n')[0]}`);
    assert.deepEqual(library, [], `cdk-nag 2 reports on library constructs:\n${library.join('\n')}`);
    assert.ok(
      found.some((f) => f.path === 'DbStack/Careless/Resource' && f.text.startsWith('AwsSolutions-S1:')),
      "the user's own bucket without access logs is not reported: the check above cannot fail",
    );
  });

  test("cdk-nag 2: the suppressions are in the resources' cdk_nag metadata, granular ones with applies_to", () => {
    const { app, dbStack } = build();
    Aspects.of(app).add(new AwsSolutionsChecksV2());
    app.synth();
    const policies = Template.fromStack(dbStack).findResources('AWS::IAM::Policy');
    const task = Object.entries(policies).find(([id]) => id.startsWith('OrdersFullBackupTaskTaskRoleDefaultPolicy'));
    assert.ok(task !== undefined);
    const rules = (task[1] as any).Metadata.cdk_nag.rules_to_suppress as { id: string; applies_to?: string[] }[];
    const iam5 = rules.filter((r) => r.id === 'AwsSolutions-IAM5').flatMap((r) => r.applies_to ?? []);
    assert.ok(iam5.includes('Resource::<Vault47927EF3.Arn>/orders/*'), JSON.stringify(rules));
  });

  test('without cdk-nag 2 the templates carry no cdk_nag metadata (nothing changes for other users)', () => {
    const { dbStack, vaultStack } = build();
    for (const s of [dbStack, vaultStack]) {
      assert.equal(JSON.stringify(Template.fromStack(s).toJSON()).includes('cdk_nag'), false);
    }
  });

  test(
    'cdk-nag 3 (Validations plugins at synth): no finding ' + 'on a library construct; the user bucket is reported',
    () => {
      const { app } = build();
      const reports: PolicyValidationPluginReport[] = [];
      Validations.of(app).addPlugins(
        recording(new AwsSolutionsChecks(app), reports),
        recording(new NIST80053R5Checks(app), reports),
      );
      app.synth();
      assert.equal(reports.length, 2, 'the plugins did not run');
      const found = flat(reports);
      const library = found.filter((f) => isLibrary(f.path)).map((f) => `${f.path}: ${f.rule}`);
      assert.deepEqual(library, [], `cdk-nag 3 reports on library constructs:\n${library.join('\n')}`);
      assert.ok(found.some((f) => f.path === 'DbStack/Careless/Resource' && f.rule === 'AwsSolutions-S1'));
    },
  );

  test('cdk-nag 3 called directly on the tree (before synthesis) finds nothing of the library either', () => {
    const { app } = build();
    for (const pack of [new AwsSolutionsChecks(), new NIST80053R5Checks()]) {
      const found = flat([pack.validateScope(app)]);
      const library = found.filter((f) => isLibrary(f.path)).map((f) => `${f.path}: ${f.rule}`);
      assert.deepEqual(library, [], `${pack.readPackName} reports:\n${library.join('\n')}`);
      if (pack instanceof AwsSolutionsChecks) assert.ok(found.some((f) => f.path === 'DbStack/Careless/Resource'));
    }
  });

  test(
    "a grant's IAM5 finding is acknowledged in both forms: " +
      "the tree's <Vault.Arn> and, after synthesis, the import",
    () => {
      const { app, dbStack } = build();
      const policy = dbStack.node
        .findChild('Orders')
        .node.findChild('FullBackupTask')
        .node.findAll()
        .find((c) => c.node.path.endsWith('TaskRole/DefaultPolicy'))!;
      const acknowledged = () =>
        policy.node.metadata
          .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
          .flatMap((m) => Object.keys(m.data as object))
          .filter((k) => k.includes('IAM5[Resource::') && k.endsWith('/orders/*]'));
      assert.equal(acknowledged().length, 1);
      assert.match(acknowledged()[0], /<Vault47927EF3\.Arn>\/orders\/\*/);
      app.synth();
      const after = acknowledged();
      assert.equal(after.length, 2);
      assert.ok(
        after.some((k) => /VaultStack:ExportsOutputFnGetAttVault47927EF3Arn[0-9A-F]+\/orders\/\*/.test(k)),
        after.join(),
      );
    },
  );

  test('the token-port ingress rules (runner, restore task) are acknowledged only for the open-port rules', () => {
    const { dbStack } = build();
    const ingress = dbStack.node
      .findAll()
      .filter((c) => c instanceof ec2.CfnSecurityGroupIngress && isLibrary(c.node.path));
    // One from the backup runner's group, one from the restore task's, into the RDS instance.
    assert.equal(ingress.length, 2, ingress.map((c) => c.node.path).join());
    for (const rule of ingress) {
      const ids = rule.node.metadata
        .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((m) => Object.keys(m.data as object).map((k) => k.replace(/^annotation::/i, '')));
      assert.deepEqual(
        ids.sort(),
        ['NIST.800.53.R5-EC2RestrictedCommonPorts', 'NIST.800.53.R5-EC2RestrictedSSH'],
        rule.node.path,
      );
    }
  });
});
