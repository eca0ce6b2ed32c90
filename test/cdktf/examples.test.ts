import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { App, TerraformStack, Testing } from 'cdktf';
import { buildApp as buildAwsApp } from '../../examples/cdktf-aws/main';
import { buildApp as buildGoogleApp } from '../../examples/cdktf-google/main';
import { normalizeAssets, read } from './helpers';

function exampleStack(build: (app: App) => App, name: string): TerraformStack {
  const app = build(Testing.app());
  return app.node.findChild(name) as TerraformStack;
}

describe('CDKTF examples', () => {
  it(
    'AWS: nightly PostgreSQL with GFS retention, and MariaDB with ' +
      'point-in-time recovery, synthesize to the expected Terraform JSON',
    () => {
      const stack = exampleStack(buildAwsApp, 'db-backup-aws');
      const json = Testing.synth(stack);
      const s = read(stack, json);
      // The parts that matter, then the whole document.
      assert.deepEqual(
        s
          .all('aws_ecs_task_definition')
          .map((t) => t.family)
          .sort(),
        [
          'dbbackup-billing-drill',
          'dbbackup-billing-runner',
          'dbbackup-billing-shipper',
          'dbbackup-orders-drill',
          'dbbackup-orders-runner',
        ],
      );
      // The MariaDB binary log shipper: one task, always, with its lag alarm and log archive rule.
      const shipper = s.one('aws_ecs_service');
      assert.equal(shipper.desired_count, 1);
      assert.equal(
        JSON.parse(s.at('aws_ecs_task_definition', 'Billing/BinlogShipper/TaskDefinition').container_definitions)[0]
          .command[0],
        'binlog-stream',
      );
      assert.equal(
        s.at('aws_cloudwatch_metric_alarm', 'Billing/Monitoring/LogShippingLag').metric_name,
        'LogShippingLagSeconds',
      );
      const billingRules = s.at('aws_s3_bucket_lifecycle_configuration', 'Billing/Vault/Lifecycle').rule as any[];
      assert.deepEqual(
        billingRules.filter((r) => r.filter?.[0]?.prefix === 'billing/binlog/').map((r) => r.expiration[0].days),
        [5],
        '3 days of window + 1 day between fulls + 1 of slack (lib/core logArchiveExpiry)',
      );
      assert.equal(s.at('aws_scheduler_schedule', 'Orders/FullSchedule').schedule_expression, 'cron(0 3 * * ? *)');
      assert.equal(s.at('aws_scheduler_schedule', 'Orders/DrillSchedule').schedule_expression, 'cron(0 5 ? * SUN *)');
      assert.equal(s.count('aws_cloudwatch_dashboard'), 2);
      assert.deepEqual(
        (s.at('aws_s3_bucket_lifecycle_configuration', 'Orders/Vault/Lifecycle').rule as any[]).map((r) => r.id),
        ['expire-daily', 'expire-weekly', 'expire-monthly', 'housekeeping'],
      );
      assert.equal(
        s.count('aws_cloudwatch_metric_alarm'),
        7 + 8,
        'age, failed, verification, run not started, verifier errors, ' +
          'drill failed, drill too slow; and the log shipping lag',
      );
      expect(normalizeAssets(json)).toMatchSnapshot();
    },
  );

  it(
    'Google: nightly PostgreSQL, and MariaDB with point-in-time ' +
      'recovery, synthesize to the expected Terraform JSON',
    () => {
      const stack = exampleStack(buildGoogleApp, 'db-backup-google');
      const json = Testing.synth(stack);
      const s = read(stack, json);
      assert.deepEqual(
        s
          .all('google_cloud_scheduler_job')
          .map((j) => [j.name, j.schedule])
          .sort(),
        [
          ['dbbackup-billing-backup', '30 1 * * *'],
          ['dbbackup-billing-drill', '0 5 * * SUN'],
          ['dbbackup-orders-backup', '0 3 * * *'],
          ['dbbackup-orders-drill', '0 5 * * SUN'],
        ],
      );
      assert.equal(s.count('google_monitoring_dashboard'), 2);
      assert.equal(
        s.count('google_monitoring_alert_policy'),
        4 + 5,
        'failed, stale, unverified, drill failed; and the log shipping lag',
      );
      const pool = s.one('google_cloud_run_v2_worker_pool');
      assert.deepEqual(pool.scaling, { scaling_mode: 'MANUAL', manual_instance_count: 1 });
      assert.deepEqual(pool.template.containers[0].args, ['binlog-stream']);
      assert.equal(s.count('google_project_service'), 10);
      expect(normalizeAssets(json)).toMatchSnapshot();
    },
  );

  it(
    '`npm run synth:tf` writes both stacks and the Lambda archive ' +
      'into cdktf.out/ without Terraform or credentials',
    () => {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'synth-tf-'));
      try {
        const root = path.join(__dirname, '..', '..');
        // The script writes to cdktf.out/ under the working directory's package root; run the
        // examples the same way it does, into a temporary directory, with an empty environment.
        for (const [name, stack] of [
          ['cdktf-aws', 'db-backup-aws'],
          ['cdktf-google', 'db-backup-google'],
        ]) {
          const outdir = path.join(out, name);
          fs.mkdirSync(outdir);
          const r = spawnSync(process.execPath, ['--import', 'tsx', path.join('examples', name, 'main.ts')], {
            cwd: root,
            env: { PATH: process.env.PATH, HOME: out, CDKTF_OUTDIR: outdir },
            encoding: 'utf8',
          });
          assert.equal(r.status, 0, r.stderr);
          const tf = JSON.parse(fs.readFileSync(path.join(outdir, 'stacks', stack, 'cdk.tf.json'), 'utf8'));
          assert.ok(Object.keys(tf.resource).length > 10);
        }
        const assets = path.join(out, 'cdktf-aws', 'stacks', 'db-backup-aws', 'assets');
        const zips = fs
          .readdirSync(assets, { recursive: true })
          .map(String)
          .filter((f) => f.endsWith('archive.zip'));
        assert.equal(zips.length, 1, 'the verification function is packed once');
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    },
  );

  it('the cdktf entry point never loads aws-cdk-lib', () => {
    const root = path.join(__dirname, '..', '..');
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        "require('./lib/cdktf/aws'); const bad = Object.keys(require.cache).filter((k) " +
          "=> k.includes('aws-cdk-lib')); console.log(JSON.stringify(bad));",
      ],
      { cwd: root, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim()), []);
  });
});
