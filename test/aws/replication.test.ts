import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { App, Aspects, Duration, Stack, Validations } from 'aws-cdk-lib';
import type { IPolicyValidationContext, PolicyValidationPluginReport } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks, NIST80053R5Checks } from 'cdk-nag';
import { AwsSolutionsChecks as AwsSolutionsChecksV2, NIST80053R5Checks as NIST80053R5ChecksV2 } from 'cdk-nag-v2';
import type { IConstruct } from 'constructs';
import { BackupVault, ObjectLockMode, Retention } from '../../lib';
import { normalizedTemplate, resourcesOf } from './helpers';

const ACCOUNT = '123456789012';
const BACKUP_ACCOUNT = '210987654321';

function twoRegions(options: { objectLock?: boolean } = {}) {
  const app = new App();
  const primary = new Stack(app, 'Primary', { env: { account: ACCOUNT, region: 'eu-west-1' } });
  const dr = new Stack(app, 'Dr', { env: { account: ACCOUNT, region: 'eu-central-1' } });
  const topic = new sns.Topic(primary, 'Alarms');
  const vault = new BackupVault(primary, 'Vault', {
    retention: Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }),
    objectLock:
      options.objectLock === false
        ? undefined
        : { mode: ObjectLockMode.COMPLIANCE, defaultRetention: Duration.days(7) },
    replication: { replicaStack: dr, alarmTopic: topic },
  });
  return { app, primary, dr, vault, topic };
}

function crossAccount(objectLock = false) {
  const app = new App();
  const stack = new Stack(app, 'Primary', { env: { account: ACCOUNT, region: 'eu-west-1' } });
  const destinationBucket = s3.Bucket.fromBucketAttributes(stack, 'BackupAccountBucket', {
    bucketArn: 'arn:aws:s3:::org-backup-replicas',
    account: BACKUP_ACCOUNT,
    region: 'eu-central-1',
  });
  const destinationKey = kms.Key.fromKeyArn(
    stack,
    'BackupAccountKey',
    `arn:aws:kms:eu-central-1:${BACKUP_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
  );
  const vault = new BackupVault(stack, 'Vault', {
    objectLock: objectLock ? { defaultRetention: Duration.days(3) } : undefined,
    replication: { destinationBucket, destinationKey, deleteMarkerReplication: false },
  });
  return { app, stack, vault };
}

function vaultBucket(t: Template): Record<string, any> {
  return resourcesOf(t, 'AWS::S3::Bucket').find(([id]) => id.startsWith('Vault') && !id.includes('AccessLogs'))![1]
    .Properties;
}

function replicationPolicy(t: Template): any[] {
  const [, policy] = resourcesOf(t, 'AWS::IAM::Policy').find(([id]) => id.startsWith('VaultReplicationRole'))!;
  return policy.Properties.PolicyDocument.Statement;
}

describe('BackupVault replication: same account, another region (replicaStack)', () => {
  test(
    'the rule replicates SSE-KMS objects to the replica with ' +
      'its key (alias ARN), RTC and metrics on, no delete markers',
    () => {
      const { primary, vault } = twoRegions();
      const rules = vaultBucket(Template.fromStack(primary)).ReplicationConfiguration.Rules;
      assert.equal(rules.length, 1);
      const [rule] = rules;
      assert.equal(rule.Id, 'dbbackup-replica');
      assert.deepEqual(rule.SourceSelectionCriteria, { SseKmsEncryptedObjects: { Status: 'Enabled' } });
      assert.deepEqual(rule.DeleteMarkerReplication, { Status: 'Disabled' });
      assert.deepEqual(rule.Filter, { Prefix: '' });
      assert.deepEqual(rule.Destination.ReplicationTime, { Status: 'Enabled', Time: { Minutes: 15 } });
      assert.deepEqual(rule.Destination.Metrics, { Status: 'Enabled', EventThreshold: { Minutes: 15 } });
      const keyId = JSON.stringify(rule.Destination.EncryptionConfiguration.ReplicaKmsKeyID);
      assert.match(keyId, /:kms:eu-central-1:123456789012:alias\/dbbackup-replica-/);
      // The replica's bucket is named by a generated literal: no cross-region reference is needed.
      assert.match(JSON.stringify(rule.Destination.Bucket), /:s3:::dr[a-z0-9]+replica[a-z0-9]+"/);
      assert.equal(rule.Destination.Account, undefined);
      assert.ok(vault.replica !== undefined && vault.replicaBucket === vault.replica.bucket);
    },
  );

  test('the replica vault has the same tier lifecycle rules and the same Object Lock as the vault', () => {
    const { primary, dr } = twoRegions();
    const source = vaultBucket(Template.fromStack(primary));
    const replicas = resourcesOf(Template.fromStack(dr), 'AWS::S3::Bucket').filter(
      ([id]) => !id.includes('AccessLogs'),
    );
    assert.equal(replicas.length, 1);
    const replica = replicas[0][1].Properties;
    const tiers = (b: any) => b.LifecycleConfiguration.Rules.filter((r: any) => r.TagFilters);
    assert.deepEqual(tiers(replica), tiers(source));
    assert.deepEqual(
      tiers(replica).map((r: any) => [r.TagFilters[0].Key, r.TagFilters[0].Value, r.ExpirationInDays]),
      [
        ['dbbackup-tier', 'daily', 7],
        ['dbbackup-tier', 'weekly', 28],
        ['dbbackup-tier', 'monthly', 372],
      ],
    );
    assert.equal(replica.ObjectLockEnabled, true);
    assert.deepEqual(replica.ObjectLockConfiguration, source.ObjectLockConfiguration);
    assert.deepEqual(replica.VersioningConfiguration, { Status: 'Enabled' });
    assert.equal(replica.ReplicationConfiguration, undefined);
    Template.fromStack(dr).hasResourceProperties('AWS::KMS::Alias', {
      AliasName: Match.stringLikeRegexp('^alias/dbbackup-replica-'),
    });
  });

  test(
    'the role reads versions, tags and Object Lock settings, ' + 'replicates objects and tags, and deletes nothing',
    () => {
      const { primary } = twoRegions();
      const statements = replicationPolicy(Template.fromStack(primary));
      const all = statements.flatMap((s) => [s.Action].flat());
      for (const a of [
        's3:GetObjectVersionForReplication',
        's3:GetObjectVersionTagging',
        's3:GetObjectRetention',
        's3:GetObjectLegalHold',
        's3:ReplicateObject',
        's3:ReplicateTags',
        'kms:Decrypt',
        'kms:Encrypt',
      ]) {
        assert.ok(all.includes(a), `${a} missing from ${JSON.stringify(all)}`);
      }
      assert.equal(
        all.some((a) => /Delete|\*/.test(a)),
        false,
        `a delete or wildcard action: ${all}`,
      );
      const keyStatement = statements.find((s) => [s.Action].flat().includes('kms:Encrypt'));
      assert.match(
        keyStatement.Condition['ForAnyValue:StringEquals']['kms:ResourceAliases'],
        /^alias\/dbbackup-replica-/,
      );
      assert.match(JSON.stringify(keyStatement.Resource), /:kms:eu-central-1:123456789012:key\/\*/);
    },
  );

  test('two alarms, on failed operations and on latency, with the replication metrics dimensions, to the topic', () => {
    const { primary } = twoRegions();
    const t = Template.fromStack(primary);
    for (const metricName of ['OperationsFailedReplication', 'ReplicationLatency']) {
      t.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/S3',
        MetricName: metricName,
        Dimensions: Match.arrayWith([{ Name: 'RuleId', Value: 'dbbackup-replica' }]),
        AlarmActions: [{ Ref: Match.stringLikeRegexp('^Alarms') }],
      });
    }
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ReplicationLatency', Threshold: 1800 });
  });

  test('the app synthesizes both stacks (no cross-region reference is left)', () => {
    const { app } = twoRegions();
    const assembly = app.synth();
    assert.deepEqual(assembly.stacks.map((s) => s.stackName).sort(), ['Dr', 'Primary']);
  });

  test('cdk-nag 3 reports nothing on the vault, its replication or the replica (at synth and on the tree)', () => {
    const { app } = twoRegions();
    const reports: PolicyValidationPluginReport[] = [];
    const packs = [new AwsSolutionsChecks(app), new NIST80053R5Checks(app)];
    Validations.of(app).addPlugins(
      ...packs.map((p) => ({
        name: p.name,
        validate: (c: IPolicyValidationContext) => {
          reports.push(p.validate(c));
          return { success: true, violations: [] };
        },
      })),
    );
    app.synth();
    const found = reports
      .flatMap((r) => r.violations.map((v) => `${v.ruleName} at ${v.violatingResources[0].constructPath}`))
      .filter((f) => !/ at (Primary|Dr)\/Alarms\//.test(f));
    assert.deepEqual(found, []);
    const direct = [new AwsSolutionsChecks(), new NIST80053R5Checks()]
      .flatMap((p) => p.validateScope(app).violations)
      .map((v) => `${v.ruleName} at ${v.violatingResources[0].constructPath}`)
      .filter((f) => !/Alarms\//.test(f));
    assert.deepEqual(direct, []);
  });

  test('cdk-nag 2 (Aspects) reports nothing on the vault, its replication or the replica', () => {
    const { app } = twoRegions();
    Aspects.of(app).add(new AwsSolutionsChecksV2());
    Aspects.of(app).add(new NIST80053R5ChecksV2());
    app.synth();
    const found: string[] = [];
    const visit = (c: IConstruct): void => {
      for (const m of c.node.metadata) {
        const text = String(m.data);
        if ((m.type === 'aws:cdk:error' || m.type === 'aws:cdk:warning') && /^(AwsSolutions|NIST|CdkNag)/.test(text))
          if (!c.node.path.includes('/Alarms/')) found.push(`${c.node.path}: ${text.split('\n')[0]}`);
      }
      c.node.children.forEach(visit);
    };
    visit(app);
    assert.deepEqual(found, []);
  });

  test('cfn-lint finds nothing in either template', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-replication-'));
    try {
      const app = new App({ outdir: dir });
      const env = (region: string) => ({ account: ACCOUNT, region });
      const dr = new Stack(app, 'Dr', { env: env('eu-central-1') });
      new BackupVault(new Stack(app, 'Primary', { env: env('eu-west-1') }), 'Vault', {
        objectLock: { defaultRetention: Duration.days(7) },
        replication: { replicaStack: dr },
      });
      const assembly = app.synth();
      for (const s of assembly.stacks) {
        const lint = spawnSync('cfn-lint', ['--format', 'parseable', s.templateFullPath], {
          encoding: 'utf8',
          timeout: 120_000,
        });
        assert.equal(lint.error, undefined, `cfn-lint did not run: ${lint.error}`);
        assert.equal(lint.status, 0, `cfn-lint reported on ${s.stackName}:\n${lint.stdout}${lint.stderr}`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('snapshot: both stacks', () => {
    const { primary, dr } = twoRegions();
    expect(normalizedTemplate(Template.fromStack(primary))).toMatchSnapshot();
    expect(normalizedTemplate(Template.fromStack(dr))).toMatchSnapshot();
  });
});

describe('BackupVault replication: another account (destinationBucket, destinationKey)', () => {
  test("the replicas become the destination owner's, encrypted with the given key through S3 of its region", () => {
    const { stack } = crossAccount();
    const t = Template.fromStack(stack);
    const [rule] = vaultBucket(t).ReplicationConfiguration.Rules;
    assert.equal(rule.Destination.Bucket, 'arn:aws:s3:::org-backup-replicas');
    assert.equal(rule.Destination.Account, BACKUP_ACCOUNT);
    assert.deepEqual(rule.Destination.AccessControlTranslation, { Owner: 'Destination' });
    assert.equal(
      rule.Destination.EncryptionConfiguration.ReplicaKmsKeyID,
      `arn:aws:kms:eu-central-1:${BACKUP_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
    );
    const statements = replicationPolicy(t);
    const dest = statements.find((s) => [s.Action].flat().includes('s3:ReplicateObject'));
    assert.deepEqual([dest.Action].flat().sort(), [
      's3:ObjectOwnerOverrideToBucketOwner',
      's3:ReplicateObject',
      's3:ReplicateTags',
    ]);
    const key = statements.find((s) => [s.Action].flat().includes('kms:Encrypt'));
    assert.equal(key.Condition.StringEquals['kms:ViaService'], 's3.eu-central-1.amazonaws.com');
  });

  test('with Object Lock on the vault, a warning says the destination needs it too', () => {
    const { stack } = crossAccount(true);
    Annotations.fromStack(stack).hasWarning(
      '/Primary/Vault',
      Match.stringLikeRegexp('only to a destination bucket with Object Lock enabled'),
    );
  });

  test('delete-marker replication, when asked for, is the only way ReplicateDelete is granted', () => {
    const app = new App();
    const stack = new Stack(app, 'S', { env: { account: ACCOUNT, region: 'eu-west-1' } });
    new BackupVault(stack, 'Vault', {
      replication: {
        destinationBucket: s3.Bucket.fromBucketAttributes(stack, 'D', {
          bucketArn: 'arn:aws:s3:::replicas',
          region: 'us-east-1',
        }),
        destinationKey: kms.Key.fromKeyArn(stack, 'K', 'arn:aws:kms:us-east-1:123456789012:key/abc'),
        deleteMarkerReplication: true,
        replicationTimeControl: false,
      },
    });
    const t = Template.fromStack(stack);
    const [rule] = vaultBucket(t).ReplicationConfiguration.Rules;
    assert.deepEqual(rule.DeleteMarkerReplication, { Status: 'Enabled' });
    assert.equal(rule.Destination.ReplicationTime, undefined);
    assert.deepEqual(rule.Destination.Metrics, { Status: 'Enabled' });
    assert.equal(rule.Destination.Account, undefined);
    assert.ok(replicationPolicy(t).some((s) => [s.Action].flat().includes('s3:ReplicateDelete')));
  });
});

describe('BackupVault replication: refused', () => {
  const stackIn = (app: App, id: string, region: string) => new Stack(app, id, { env: { account: ACCOUNT, region } });

  test('a replica stack in the same region', () => {
    const app = new App();
    const a = stackIn(app, 'A', 'eu-west-1');
    const b = stackIn(app, 'B', 'eu-west-1');
    assert.throws(() => new BackupVault(a, 'Vault', { replication: { replicaStack: b } }), /another region/);
  });

  test('both a replica stack and a destination bucket', () => {
    const app = new App();
    const a = stackIn(app, 'A', 'eu-west-1');
    const b = stackIn(app, 'B', 'eu-central-1');
    const bucket = s3.Bucket.fromBucketName(a, 'D', 'replicas');
    assert.throws(
      () => new BackupVault(a, 'Vault', { replication: { replicaStack: b, destinationBucket: bucket } }),
      /both replicaStack and destinationBucket/,
    );
  });

  test('a destination bucket without its key', () => {
    const app = new App();
    const a = stackIn(app, 'A', 'eu-west-1');
    const bucket = s3.Bucket.fromBucketName(a, 'D', 'replicas');
    assert.throws(
      () => new BackupVault(a, 'Vault', { replication: { destinationBucket: bucket } }),
      /destinationBucket with destinationKey \(got a bucket and no key\)/,
    );
  });
});

test('the vault stack deploys after the replica stack (S3 refuses a rule to a missing bucket)', () => {
  // Synthesized whole: a deprecated aws-cdk-lib call on the way throws (test/util/deprecated-fail.js).
  const { app, primary, dr } = twoRegions();
  app.synth();
  assert.ok(primary.dependencies.includes(dr));
});
