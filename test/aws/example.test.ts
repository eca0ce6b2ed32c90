import * as crypto from 'node:crypto';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks, NIST80053R5Checks } from 'cdk-nag';
import { BackupExampleStack } from '../../examples/cdk/backup-stack';
import { RUNBOOK_MOMENT } from '../../lib/core';
import { parseInvocation } from '../../runner/src/config';
import { normalizedTemplate, resourcesOf } from './helpers';

/** What ECS would inject from a task's Secrets: made per run, never a literal. */
const INJECTED_SECRET = crypto.randomBytes(9).toString('hex');

const root = path.resolve(__dirname, '..', '..');

function exampleStack(): BackupExampleStack {
  return new BackupExampleStack(new App(), 'DbBackupExample');
}

/** `npx cdk synth` at the root, as a user runs it: no AWS credentials, no Docker, no network. */
function cdkSynth(outdir: string): string {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('AWS_') && !k.startsWith('CDK_') && v !== undefined) env[k] = v;
  env.AWS_EC2_METADATA_DISABLED = 'true';
  const r = spawnSync('npx', ['cdk', 'synth', '--quiet', '--no-notices', '--no-version-reporting', '-o', outdir], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `cdk synth failed:\n${r.stdout}\n${r.stderr}`);
  return fs.readFileSync(path.join(outdir, 'DbBackupExample.template.json'), 'utf8');
}

describe('the example app', () => {
  test(
    'cdk-nag AwsSolutions and NIST 800-53 rev 5 report nothing ' +
      'unacknowledged, and every acknowledgement has a reason',
    () => {
      const stack = exampleStack();
      for (const pack of [new AwsSolutionsChecks(), new NIST80053R5Checks()]) {
        const report = pack.validateScope(stack);
        const found = report.violations.map(
          (v) =>
            `${v.ruleName} (${v.severity}) at ` +
            `${v.violatingResources.map((r) => r.constructPath).join(', ')}: ${v.description}`,
        );
        assert.deepEqual(found, [], `${pack.readPackName} reports:\n${found.join('\n')}`);
      }
      // Every acknowledgement in the tree carries a specific reason.
      const visit = (c: import('constructs').IConstruct): void => {
        for (const m of c.node.metadata) {
          if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
          for (const [id, reason] of Object.entries(m.data as Record<string, string>)) {
            assert.ok(
              typeof reason === 'string' && reason.length >= 40,
              `acknowledgement ${id} at ${c.node.path} has no real reason: '${reason}'`,
            );
          }
        }
        c.node.children.forEach(visit);
      };
      visit(stack);
    },
  );

  test('a nag pack finds an unacknowledged problem when there is one (the check above can fail)', () => {
    const stack = exampleStack();
    new s3.Bucket(stack, 'Careless');
    const report = new AwsSolutionsChecks().validateScope(stack);
    assert.ok(report.violations.some((v) => v.ruleName === 'AwsSolutions-S1'));
  });

  test(
    'npx cdk synth at the root works without credentials or ' + 'Docker, twice identically, and cfn-lint finds nothing',
    () => {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-synth-'));
      try {
        const distStamp = () =>
          ['dist/runner/dbbackup.js', 'dist/runner/Dockerfile', 'dist/lambda/verify/index.js']
            .map((f) => fs.statSync(path.join(root, f)).mtimeMs)
            .join();
        const before = distStamp();
        const first = cdkSynth(path.join(tmp, 'a'));
        const second = cdkSynth(path.join(tmp, 'b'));
        if (first !== second && distStamp() !== before) {
          // Someone rebuilt the bundles between the two synths (shared working tree): the asset
          // hashes differ for that reason alone, and everything else must still be identical.
          const mask = (t: string) => t.replace(/[0-9a-f]{64}/g, '<asset-hash>');
          assert.equal(mask(first), mask(second), 'two synths gave different templates beyond the rebuilt assets');
        } else {
          assert.equal(first, second, 'two synths gave different templates');
        }
        assert.equal(first.includes(root), false, 'the template holds a machine path');
        // The restore-to-a-moment command (point-in-time recovery) names the runbook's fixed
        // placeholder moment, which is not a synth time.
        assert.ok(first.includes(RUNBOOK_MOMENT), 'the billing database has a restore-to-time command');
        assert.equal(
          /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(first.split(RUNBOOK_MOMENT).join('')),
          false,
          'the template holds a timestamp',
        );
        // The runbook beside the template, with the restore task's commands, as `cdk synth` writes it.
        const runbook = fs.readFileSync(path.join(tmp, 'a', 'DbBackupExample.runbook.md'), 'utf8');
        assert.match(runbook, /^# Restore runbook: orders$/m);
        assert.match(runbook, /aws ecs run-task .*"command":\["restore","--latest"\]/);
        assert.equal(runbook.includes(root), false, 'the runbook holds a machine path');
        const template = path.join(tmp, 'a', 'DbBackupExample.template.json');
        const lint = spawnSync('cfn-lint', ['--format', 'parseable', template], { encoding: 'utf8', timeout: 120_000 });
        assert.equal(lint.error, undefined, `cfn-lint did not run: ${lint.error}`);
        assert.equal(lint.status, 0, `cfn-lint reported:\n${lint.stdout}${lint.stderr}`);
        assert.equal(lint.stdout.trim(), '');
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    },
  );

  test('the resources a reviewer reads: encryption, lifecycle, schedule targets, IAM', () => {
    const t = Template.fromStack(exampleStack());
    const bucket = resourcesOf(t, 'AWS::S3::Bucket').find(
      ([id]) => id.startsWith('OrdersVault') && !id.includes('AccessLogs'),
    )![1].Properties;
    assert.equal(
      bucket.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm,
      'aws:kms',
    );
    assert.deepEqual(
      bucket.LifecycleConfiguration.Rules.filter((r: any) => r.TagFilters).map((r: any) => [
        r.TagFilters[0].Value,
        r.ExpirationInDays,
      ]),
      [
        ['daily', 7],
        ['weekly', 28],
        ['monthly', 372],
      ],
    );
    t.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 2 * * ? *)',
      ScheduleExpressionTimezone: 'Etc/UTC',
    });
    const all = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    assert.equal(/s3:Delete|"s3:\*"|"kms:\*"|"\*:\*"/.test(all), false);
  });

  test("contract: the task definitions' command and environment parse with the runner's own parser", () => {
    const t = Template.fromStack(exampleStack());
    const resources = t.toJSON().Resources as Record<string, { Type: string }>;
    const BUCKET = 'dbbackup-example-vault';
    const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    // Resolve CloudFormation values with stand-ins of the right shape.
    const resolve = (v: unknown): string => {
      if (typeof v === 'string') return v;
      const o = v as Record<string, any>;
      if (o['Fn::Join']) return (o['Fn::Join'][1] as unknown[]).map(resolve).join(o['Fn::Join'][0]);
      if (o.Ref !== undefined) {
        const type = resources[o.Ref]?.Type;
        if (type === 'AWS::S3::Bucket') return BUCKET;
        if (type === 'AWS::SecretsManager::Secret')
          return 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf';
        throw new Error(`no stand-in for Ref ${o.Ref} (${type})`);
      }
      if (o['Fn::GetAtt']) {
        const [id, attr] = o['Fn::GetAtt'];
        if (resources[id]?.Type === 'AWS::KMS::Key' && attr === 'Arn') return KEY_ARN;
        throw new Error(`no stand-in for GetAtt ${id}.${attr}`);
      }
      throw new Error(`cannot resolve ${JSON.stringify(v)}`);
    };
    const runs = resourcesOf(t, 'AWS::ECS::TaskDefinition').map(([, td]) => {
      const c = td.Properties.ContainerDefinitions.find((x: any) => x.Name === 'runner');
      const env: Record<string, string> = {};
      for (const e of c.Environment) env[e.Name] = resolve(e.Value);
      for (const s of c.Secrets ?? []) env[s.Name] = INJECTED_SECRET;
      return { argv: c.Command as string[], env, entryPoint: c.EntryPoint as string[] };
    });
    // orders: backup, drill, restore; billing: the same and its binary log shipper.
    assert.equal(runs.length, 7);
    const billing = runs.filter((r) => r.env.DBBACKUP_DATABASE_ID === 'billing');
    assert.deepEqual(billing.map((r) => r.argv[0]).sort(), ['backup', 'binlog-stream', 'drill', 'restore']);
    const shipper = billing.find((r) => r.argv[0] === 'binlog-stream')!;
    const sh = parseInvocation(shipper.argv, shipper.env) as any;
    assert.equal(sh.command, 'binlog-stream');
    assert.equal(sh.to.path, 'billing');
    assert.equal(shipper.entryPoint.includes('timeout'), false, 'the long-running shipper has no timeout');
    runs.splice(0, runs.length, ...runs.filter((r) => r.env.DBBACKUP_DATABASE_ID === 'orders'));

    const backup = runs.find((r) => r.argv[0] === 'backup')!;
    assert.deepEqual(backup.entryPoint.slice(-2), ['node', '/opt/dbbackup/dbbackup.js']);
    const b = parseInvocation(backup.argv, backup.env) as import('../../runner/src/config').BackupConfig;
    assert.equal(b.command, 'backup');
    assert.equal(b.engine, 'postgres');
    assert.equal(b.source.host, 'orders.db.internal.example.com');
    assert.equal(b.source.port, 5432);
    assert.equal(b.source.database, 'orders');
    assert.equal(b.source.user, 'backup');
    assert.equal(b.to.kind, 's3');
    assert.equal(b.to.bucket, BUCKET);
    assert.equal(b.to.path, 'orders');
    assert.equal(b.type, 'full');
    assert.equal(b.compression, 'zstd');
    assert.equal(b.encryption.scheme, 'kms');
    assert.equal(b.encryption.key, KEY_ARN);
    assert.equal(b.json, true);
    assert.equal(backup.env.DBBACKUP_SOURCE_PASSWORD, INJECTED_SECRET);
    assert.equal(backup.env.DBBACKUP_DATABASE_ID, 'orders');

    const drill = runs.find((r) => r.argv[0] === 'drill')!;
    const d = parseInvocation(drill.argv, drill.env) as import('../../runner/src/config').DrillConfig;
    assert.equal(d.command, 'drill');
    assert.equal(d.from.bucket, BUCKET);
    assert.equal(d.from.path, 'orders');
    assert.equal(d.target.engine, 'postgres');
    assert.equal(d.target.host, '127.0.0.1');
    assert.equal(d.target.database, 'drill');

    // The restore task: `restore --latest` unless the run overrides it, into the restorer's URL.
    const restore = runs.find((r) => r.argv[0] === 'restore')!;
    const rs = parseInvocation(restore.argv, restore.env) as import('../../runner/src/config').RestoreConfig;
    assert.equal(rs.command, 'restore');
    assert.deepEqual(rs.selector, { kind: 'latest', database: undefined });
    assert.equal(rs.from.bucket, BUCKET);
    assert.equal(rs.from.path, 'orders');
    assert.equal(rs.target?.user, 'restorer');
    assert.equal(rs.target?.host, 'orders.db.internal.example.com');
    assert.equal(restore.env.DBBACKUP_TARGET_PASSWORD, INJECTED_SECRET);
  });

  test('contract: a setting the runner does not take is refused by the parser (the contract test can fail)', () => {
    assert.throws(
      () =>
        parseInvocation(['backup'], {
          DBBACKUP_ENGINE: 'postgres',
          DBBACKUP_SOURCE: 'postgres://u@h/db',
          DBBACKUP_TO: 's3://b/p',
          DBBACKUP_COMPRESSION: 'brotli',
        }),
      /brotli/,
    );
  });

  test('snapshot: the example stack', () => {
    expect(normalizedTemplate(Template.fromStack(exampleStack()))).toMatchSnapshot();
  });
});
