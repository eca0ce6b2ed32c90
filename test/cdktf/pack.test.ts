import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from '@jest/globals';

const root = path.join(__dirname, '..', '..');
const built = (entry: string) => {
  const file = path.join(root, 'dist', 'lib', entry, 'index.js');
  assert.ok(fs.existsSync(file), `${file} is missing: run 'npm run build' first (the suite does)`);
  return file;
};

describe('CDKTF entries that install alone (built package)', () => {
  it('each entry loads only its own provider packages', () => {
    for (const [entry, own, foreign] of [
      ['cdktf/aws', ['cdktf', '@cdktf/provider-aws'], ['@cdktf/provider-google', 'cdktn', '@cdktn/', 'aws-cdk-lib']],
      ['cdktf/google', ['cdktf', '@cdktf/provider-google'], ['@cdktf/provider-aws', 'cdktn', '@cdktn/', 'aws-cdk-lib']],
      ['cdktn/aws', ['cdktn', '@cdktn/provider-aws'], ['/cdktf/', '@cdktf/', 'aws-cdk-lib']],
      ['cdktf', [], ['@cdktf/provider-', 'cdktn', 'aws-cdk-lib']],
    ] as const) {
      const script =
        `require(${JSON.stringify(built(entry))}); ` +
        `console.log(JSON.stringify(Object.keys(require.cache).filter((k) => k.includes('node_modules'))));`;
      const r = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const loaded: string[] = JSON.parse(r.stdout.trim());
      for (const f of foreign)
        assert.equal(
          loaded.some((k) => k.includes(`node_modules/${f}`)),
          false,
          `${entry} loads ${f}`,
        );
      for (const o of own)
        assert.ok(
          loaded.some((k) => k.includes(`node_modules/${o}`)),
          `${entry} does not load ${o}`,
        );
    }
  });

  it('synthesizes a DatabaseBackup under CDK Terrain (cdktn + @cdktn/provider-aws)', () => {
    const script = `
      const { App, TerraformStack } = require('cdktn');
      const { AwsProvider } = require('@cdktn/provider-aws/lib/provider');
      const lib = require(${JSON.stringify(built('cdktn/aws'))});
      const app = new App({ outdir: process.argv[1] });
      const stack = new TerraformStack(app, 'backup');
      new AwsProvider(stack, 'aws', { region: 'eu-west-1' });
      new lib.DatabaseBackup(stack, 'Orders', {
        databaseId: 'orders',
        source: lib.BackupSource.postgres({ url: 'postgres://backup@db.internal/orders',
          passwordSecret: { arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw' } }),
        image: lib.RunnerImage.fromImageUri('123456789012.dkr.ecr.eu-west-1.amazonaws.com/dbbackup:0.1.0'),
        network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'] },
        alarmEmails: ['oncall@example.com'],
      });
      app.synth();`;
    const out = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'cdktn-synth-'));
    try {
      const r = spawnSync(process.execPath, ['-e', script, out], { cwd: root, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const tf = JSON.parse(fs.readFileSync(path.join(out, 'stacks', 'backup', 'cdk.tf.json'), 'utf8'));
      assert.equal(Object.keys(tf.resource.aws_ecs_task_definition).length, 2, 'backup and drill tasks');
      assert.equal(Object.values<any>(tf.resource.aws_lambda_function)[0].runtime, 'nodejs22.x');
      assert.ok(tf.resource.aws_cloudwatch_dashboard);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('installs from the packed tarball into fresh cdktf (AWS, Google) and cdktn projects and synthesizes', () => {
    const r = spawnSync(process.execPath, [path.join(__dirname, 'pack-install.mjs')], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.match(/^ok /gm)?.length, 3, r.stdout);
  }, 400_000);
});
