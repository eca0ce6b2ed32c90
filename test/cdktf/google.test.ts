import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from '@jest/globals';
import { TerraformStack } from 'cdktf';
// biome-ignore format: one specifier and a long module path; on one line it is over 120 characters
import {
  DataGoogleMonitoringNotificationChannel,
} from '@cdktf/provider-google/lib/data-google-monitoring-notification-channel';
import { DataGoogleSecretManagerSecret } from '@cdktf/provider-google/lib/data-google-secret-manager-secret';
import { DataGoogleStorageBucket } from '@cdktf/provider-google/lib/data-google-storage-bucket';
import { BackupEncryption, BackupSchedule, Duration, Retention } from '../../lib/cdktf/google';
import { RUNNER_ENV, RunnerCommand, SECRET_ENV, renderRunnerEnvironment } from '../../lib/core';
import * as google from '../../lib/cdktf/google';
import { parseInvocation } from '../../runner/src/config';
import { envMap, synthGoogle, warnings } from './helpers';

const SECRET = { id: 'projects/acme-prod/secrets/orders-backup-password' };
const REPO = { location: 'europe-west1', project: 'acme-prod', repositoryId: 'dbbackup' };
const IMAGE = 'europe-west1-docker.pkg.dev/acme-prod/dbbackup/dbbackup:1.2.3';

function postgres() {
  return google.BackupSource.postgres({ url: 'postgres://backup@10.20.0.5:5432/orders', passwordSecret: SECRET });
}

function backup(stack: TerraformStack, props: Partial<google.DatabaseBackupProps> = {}) {
  return new google.DatabaseBackup(stack, 'Orders', {
    databaseId: 'orders',
    project: 'acme-prod',
    region: 'europe-west1',
    source: postgres(),
    image: google.RunnerImage.fromArtifactRegistry(REPO, 'dbbackup', '1.2.3'),
    vpcEgress: google.VpcEgress.directVpc({
      network: 'prod-vpc',
      subnetwork: 'prod-europe-west1',
      networkTags: ['dbbackup'],
    }),
    schedule: BackupSchedule.daily(2),
    retention: Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }),
    alarmEmails: ['oncall@example.com'],
    // One job per concern in these tests; drills have their own (test/cdktf/model.test.ts).
    drill: { enabled: false },
    ...props,
  });
}

type Synth = ReturnType<typeof synthGoogle>;
const container = (job: Record<string, any>) => job.template.template.containers[0];
/** The IAM grants of the stack as `role member-expression` on what. */
function grants(s: Synth): string[] {
  const types = [
    'google_storage_bucket_iam_member',
    'google_project_iam_member',
    'google_cloud_run_v2_job_iam_member',
    'google_secret_manager_secret_iam_member',
    'google_kms_crypto_key_iam_member',
  ];
  return types.flatMap((t) => s.all(t).map((g) => `${t} ${g.role} ${g.member}`));
}

describe('google BackupVault', () => {
  it(
    'has uniform access, public access prevention, versioning and ' + 'CMEK with a rotating key the GCS agent may use',
    () => {
      const s = synthGoogle(
        (stack) => new google.BackupVault(stack, 'Vault', { bucketName: 'acme-backups', location: 'EU' }),
      );
      const b = s.one('google_storage_bucket');
      assert.equal(b.uniform_bucket_level_access, true);
      assert.equal(b.public_access_prevention, 'enforced');
      assert.deepEqual(b.versioning, { enabled: true });
      assert.match(b.encryption.default_kms_key_name, /^\$\{google_kms_crypto_key\.Vault_Key_[0-9A-F]+\.id\}$/);
      assert.equal(b.force_destroy, false);
      assert.equal(b.retention_policy, undefined);
      const key = s.one('google_kms_crypto_key');
      assert.equal(key.rotation_period, '7776000s');
      assert.equal(key.purpose, 'ENCRYPT_DECRYPT');
      assert.equal(key.lifecycle.prevent_destroy, true);
      assert.equal(
        s.one('google_kms_key_ring').location,
        'europe',
        'a key for an EU bucket lives in the europe multi-region',
      );
      const grant = s.one('google_kms_crypto_key_iam_member');
      assert.equal(grant.role, 'roles/cloudkms.cryptoKeyEncrypterDecrypter');
      assert.match(
        grant.member,
        /^serviceAccount:\$\{data\.google_storage_project_service_account\..*\.email_address\}$/,
      );
      assert.ok(
        b.depends_on.some((d: string) => d.startsWith('google_kms_crypto_key_iam_member.')),
        'the bucket waits for the grant',
      );
    },
  );

  it('carries the tier in the object name: one Delete rule per tier lifetime on <prefix>/<tier>/', () => {
    const s = synthGoogle((stack) => {
      const vault = new google.BackupVault(stack, 'Vault', { bucketName: 'acme-backups', location: 'europe-west1' });
      vault.addBackupPrefix('orders', Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }));
      vault.addBackupPrefix('billing', Retention.gfs({ daily: 14, weekly: 1, monthly: 0 }));
    });
    const rules = s.one('google_storage_bucket').lifecycle_rule as any[];
    const deletes = rules.filter((r) => r.action.type === 'Delete' && r.condition.with_state === 'LIVE');
    assert.deepEqual(
      deletes.map((r) => [r.condition.age, r.condition.matches_prefix]),
      [
        [7, ['billing/weekly/', 'orders/daily/']],
        [14, ['billing/daily/']],
        [28, ['orders/weekly/']],
        [372, ['orders/monthly/']],
      ],
    );
    assert.deepEqual(rules.find((r) => r.action.type === 'AbortIncompleteMultipartUpload').condition, { age: 2 });
    assert.deepEqual(rules.find((r) => r.condition.with_state === 'ARCHIVED').condition, {
      with_state: 'ARCHIVED',
      days_since_noncurrent_time: 7,
    });
  });

  it('refuses prefixes whose lifecycle rules would overlap', () => {
    const vault = () => {
      let v!: google.BackupVault;
      synthGoogle(
        (stack) =>
          (v = new google.BackupVault(stack, 'Vault', { bucketName: 'acme-backups', location: 'europe-west1' })),
      );
      return v;
    };
    const v = vault();
    v.addBackupPrefix('prod');
    assert.throws(() => v.addBackupPrefix('prod/orders'), /prefix 'prod\/orders' overlaps prefix 'prod' in this vault/);
  });

  it('uses a retention lock instead of versioning (GCS allows only one of them)', () => {
    const s = synthGoogle((stack) => {
      new google.BackupVault(stack, 'Vault', {
        bucketName: 'acme-backups',
        location: 'europe-west1',
        retention: Retention.gfs({ daily: 7 }),
        retentionLock: { period: Duration.days(7), locked: true },
      });
    });
    const b = s.one('google_storage_bucket');
    assert.deepEqual(b.retention_policy, { retention_period: 7 * 86400, is_locked: true });
    assert.deepEqual(b.versioning, { enabled: false });
    assert.equal(
      (b.lifecycle_rule as any[]).some((r) => r.condition.with_state === 'ARCHIVED'),
      false,
    );
  });

  it('refuses a retention lock that outlives a tier', () => {
    assert.throws(
      () =>
        synthGoogle(
          (stack) =>
            new google.BackupVault(stack, 'Vault', {
              bucketName: 'acme-backups',
              location: 'EU',
              retention: Retention.gfs({ daily: 7 }),
              retentionLock: { period: Duration.days(30) },
            }),
        ),
      /retentionLock\.period of 30 days outlives the retention of daily \(7 days\), weekly \(28 days\)/,
    );
  });

  it('names the key ring and key after the bucket, in the characters Cloud KMS takes', () => {
    const s = synthGoogle(
      (stack) =>
        new google.BackupVault(stack, 'Vault', { bucketName: 'backups.acme.example', location: 'europe-west1' }),
    );
    assert.equal(s.one('google_kms_key_ring').name, 'backups-acme-example-keys');
    assert.equal(s.one('google_kms_key_ring').location, 'europe-west1');
    assert.equal(s.one('google_kms_crypto_key').name, 'backups-acme-example');
  });

  it('rejects a bucket name GCS would refuse', () => {
    assert.throws(
      () => synthGoogle((stack) => new google.BackupVault(stack, 'V', { bucketName: 'Acme_Backups!', location: 'EU' })),
      /bucketName 'Acme_Backups!' is not a valid bucket name/,
    );
  });
});

describe('google RunnerJob', () => {
  it('renders the environment from the runner contract and takes the password from Secret Manager', () => {
    const s = synthGoogle((stack) => backup(stack));
    const job = s.at('google_cloud_run_v2_job', 'Orders/FullBackupJob');
    const c = container(job);
    assert.deepEqual(c.args, ['backup']);
    assert.equal(c.image, IMAGE);
    const env = envMap(c.env);
    const expected = {
      ...renderRunnerEnvironment(RunnerCommand.BACKUP, {
        engine: 'postgres',
        source: 'postgres://backup@10.20.0.5:5432/orders',
        to: env.DBBACKUP_TO,
        type: 'full',
        compression: 'zstd',
        encrypt: 'none',
        json: true,
      }),
      [RUNNER_ENV.DATABASE_ID]: 'orders',
      [RUNNER_ENV.LOG_FORMAT]: 'json',
    };
    assert.equal(env.DBBACKUP_TO, 'gs://${google_storage_bucket.Orders_Vault_D2FD70FF.name}/orders');
    assert.deepEqual(env, expected);
    assert.equal(s.one('google_storage_bucket').name, 'acme-prod-orders-backups');
    const secret = (c.env as any[]).find((e) => e.name === SECRET_ENV.SOURCE_PASSWORD);
    assert.deepEqual(secret.value_source, { secret_key_ref: { secret: SECRET.id, version: 'latest' } });
    assert.equal(secret.value, undefined);
    assert.equal(job.template.template.execution_environment, 'EXECUTION_ENVIRONMENT_GEN2');
    assert.deepEqual(job.template.template.vpc_access, {
      egress: 'PRIVATE_RANGES_ONLY',
      network_interfaces: [{ network: 'prod-vpc', subnetwork: 'prod-europe-west1', tags: ['dbbackup'] }],
    });
    assert.match(job.template.template.service_account, /google_service_account\.Orders_FullBackupJob_ServiceAccount_/);
  });

  it('is parsed by the runner itself: backup, scheduled verify and per-manifest verify', () => {
    const s = synthGoogle((stack) => backup(stack));
    // Terraform fills in the bucket's name at apply time; the rest is literal.
    const resolved = (env: { name: string; value?: string }[]) =>
      Object.fromEntries(
        Object.entries(envMap(env)).map(([k, v]) => [
          k,
          v.replace('${google_storage_bucket.Orders_Vault_D2FD70FF.name}', 'acme-prod-orders-backups'),
        ]),
      );
    const run = container(s.at('google_cloud_run_v2_job', 'Orders/FullBackupJob'));
    const b = parseInvocation(run.args, resolved(run.env)) as any;
    assert.equal(b.command, 'backup');
    assert.deepEqual([b.to.kind, b.to.bucket, b.to.path], ['gs', 'acme-prod-orders-backups', 'orders']);
    assert.equal(b.source.host, '10.20.0.5');
    const verify = container(s.at('google_cloud_run_v2_job', 'Orders/Verifier'));
    const v = parseInvocation(verify.args, resolved(verify.env)) as any;
    assert.equal(v.command, 'verify');
    assert.equal(v.selector.kind, 'latest');
    assert.deepEqual([v.from.kind, v.from.bucket, v.from.path], ['gs', 'acme-prod-orders-backups', 'orders']);
    // What the workflow starts for a committed manifest: the same job with these arguments.
    const v2 = parseInvocation(['verify', '--id', '20250101T020000Z-ab12'], resolved(verify.env)) as any;
    assert.deepEqual([v2.selector.kind, v2.selector.id], ['id', '20250101T020000Z-ab12']);
  });

  it('lets the runner create and read objects, never delete, and read only its secret', () => {
    const s = synthGoogle((stack) => backup(stack));
    const runner = /google_service_account\.Orders_FullBackupJob_ServiceAccount_[0-9A-F]+\.member/;
    const mine = grants(s).filter((g) => runner.test(g));
    assert.deepEqual(mine.map((g) => g.split(' ').slice(0, 2).join(' ')).sort(), [
      'google_secret_manager_secret_iam_member roles/secretmanager.secretAccessor',
      'google_storage_bucket_iam_member roles/storage.objectCreator',
      'google_storage_bucket_iam_member roles/storage.objectViewer',
    ]);
    for (const g of grants(s)) assert.equal(/objectAdmin|storage\.admin|roles\/owner|roles\/editor/.test(g), false, g);
    assert.equal(s.one('google_secret_manager_secret_iam_member').secret_id, SECRET.id);
  });
});

describe('google RunnerSchedule', () => {
  it('calls the job :run endpoint with an OAuth token of a dedicated service account', () => {
    assert.equal(
      BackupSchedule.cron({ hour: '3', minute: '15', weekDay: 'MON-FRI' }).unixExpression,
      '15 3 * * MON-FRI',
    );
    assert.equal(
      BackupSchedule.cron({ hour: '3', weekDay: '2' }).unixExpression,
      '0 3 * * 1',
      'AWS 2 (Monday) is unix 1',
    );
    const s = synthGoogle((stack) =>
      backup(stack, { schedule: BackupSchedule.cron({ hour: '3', minute: '15', timeZone: 'Europe/Berlin' }) }),
    );
    const j = s.one('google_cloud_scheduler_job');
    assert.equal(j.schedule, '15 3 * * *');
    assert.equal(j.time_zone, 'Europe/Berlin');
    assert.equal(j.http_target.http_method, 'POST');
    assert.equal(
      j.http_target.uri,
      'https://run.googleapis.com/v2/projects/acme-prod/locations/europe-west1/jobs/' +
        '${google_cloud_run_v2_job.Orders_FullBackupJob_AC7583FB.name}:run',
    );
    assert.equal(j.http_target.oauth_token.scope, 'https://www.googleapis.com/auth/cloud-platform');
    assert.match(
      j.http_target.oauth_token.service_account_email,
      /google_service_account\.Orders_FullSchedule_ServiceAccount_.*\.email/,
    );
    assert.equal(j.retry_config.retry_count, 3);
    const invoker = s.at('google_cloud_run_v2_job_iam_member', 'FullSchedule/RunsJob');
    assert.equal(invoker.role, 'roles/run.invoker');
    assert.match(invoker.member, /Orders_FullSchedule_ServiceAccount_/);
    assert.match(invoker.name, /google_cloud_run_v2_job\.Orders_FullBackupJob_/);
  });
});

describe('google Verifier', () => {
  it('runs the verifier job for each finalized object through Eventarc and a workflow', () => {
    const s = synthGoogle((stack) => backup(stack));
    const t = s.one('google_eventarc_trigger');
    assert.deepEqual(t.matching_criteria, [
      { attribute: 'type', value: 'google.cloud.storage.object.v1.finalized' },
      { attribute: 'bucket', value: '${google_storage_bucket.Orders_Vault_D2FD70FF.name}' },
    ]);
    assert.equal(t.location, 'europe-west1');
    assert.match(t.destination.workflow, /google_workflows_workflow\..*\.id/);
    const wf = s.one('google_workflows_workflow');
    assert.deepEqual(Object.keys(wf.user_env_vars).sort(), ['BACKUP_PREFIX', 'VERIFIER_JOB']);
    assert.equal(wf.user_env_vars.BACKUP_PREFIX, 'orders');
    assert.match(wf.user_env_vars.VERIFIER_JOB, /google_cloud_run_v2_job\.Orders_Verifier_.*\.id/);
    // Workflow expressions must reach Workflows literally: every ${ is escaped for Terraform.
    const src: string = wf.source_contents;
    assert.ok(src.includes('$${event.data.name}'));
    assert.equal(
      src.replace(/\$\$\{/g, '').includes('${'),
      false,
      'an unescaped ${ would be a Terraform interpolation',
    );
    assert.ok(src.includes('googleapis.run.v2.projects.locations.jobs.run'));
    assert.ok(src.includes('args: ["verify", "--id", "$${backup_id}"]'));
    assert.ok(src.includes('skip_polling: true'));
    assert.equal(src.replace(/\$\$\{/g, '${'), google.VERIFY_WORKFLOW);
  });

  it('grants the workflow only run-with-overrides on the verifier job and the verifier only read access', () => {
    const s = synthGoogle((stack) => backup(stack));
    const wf = s.at('google_cloud_run_v2_job_iam_member', 'Verifier/WorkflowRunsJob');
    assert.equal(wf.role, 'roles/run.jobsExecutorWithOverrides');
    assert.match(wf.name, /Orders_Verifier_[0-9A-F]+\.name/);
    const reads = s.at('google_storage_bucket_iam_member', 'Verifier/ReadsObjects');
    assert.equal(reads.role, 'roles/storage.objectViewer');
    const project = s
      .all('google_project_iam_member')
      .map((g) => g.role)
      .sort();
    assert.deepEqual(project, ['roles/eventarc.eventReceiver', 'roles/pubsub.publisher', 'roles/workflows.invoker']);
  });
  it('grants the Cloud Storage agent Pub/Sub publishing once per project, however many verifiers', () => {
    const s = synthGoogle((stack) => {
      const vault = new google.BackupVault(stack, 'Vault', {
        bucketName: 'acme-backups',
        location: 'europe-west1',
        project: 'acme-prod',
      });
      for (const id of ['orders', 'billing']) {
        new google.Verifier(stack, `${id}Verifier`, {
          databaseId: id,
          project: 'acme-prod',
          region: 'europe-west1',
          vault,
          image: google.RunnerImage.fromImageUri(IMAGE),
        });
      }
    });
    assert.equal(s.all('google_project_iam_member').filter((g) => g.role === 'roles/pubsub.publisher').length, 1);
    assert.equal(s.count('google_eventarc_trigger'), 2);
  });
});

describe('google BackupMonitoring', () => {
  it('alerts on failed executions, on no success within the RPO, and on failed or missing verifications', () => {
    const s = synthGoogle((stack) => backup(stack));
    const failed = s.at('google_monitoring_alert_policy', 'Monitoring/BackupFailed');
    const cond = failed.conditions[0].condition_threshold;
    assert.equal(
      cond.filter,
      'resource.type = "cloud_run_job" AND resource.labels.job_name = "dbbackup-orders-backup" AND ' +
        'metric.type = "run.googleapis.com/job/completed_execution_count" AND metric.labels.result = "failed"',
    );
    assert.equal(cond.comparison, 'COMPARISON_GT');
    assert.equal(cond.threshold_value, 0);
    assert.equal(failed.severity, 'CRITICAL');
    assert.equal(failed.notification_channels.length, 1);

    const stale = s.at('google_monitoring_alert_policy', 'Monitoring/BackupStale').conditions[0].condition_absent;
    assert.match(stale.filter, /job_name = "dbbackup-orders-backup".*result = "succeeded"/);
    const seconds = (d: string) => Number(d.replace(/s$/, ''));
    assert.equal(
      seconds(stale.duration) + seconds(stale.aggregations[0].alignment_period),
      25 * 3600,
      'alignment + duration = the RPO',
    );
    assert.ok(seconds(stale.duration) >= 120);

    const unverified = s.at('google_monitoring_alert_policy', 'Monitoring/BackupUnverified');
    assert.equal(unverified.combiner, 'OR');
    assert.match(unverified.conditions[0].condition_threshold.filter, /dbbackup-orders-verify.*"failed"/);
    assert.match(unverified.conditions[1].condition_absent.filter, /dbbackup-orders-verify.*"succeeded"/);

    const ch = s.one('google_monitoring_notification_channel');
    assert.equal(ch.type, 'email');
    assert.deepEqual(ch.labels, { email_address: 'oncall@example.com' });
  });
});

describe('google validation', () => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      'RPO beyond what Cloud Monitoring can look back',
      () => synthGoogle((s) => backup(s, { rpo: Duration.hours(26) })),
      new RegExp(
        /rpo is 26 hours, but the stale alarm can wait at most 25 hours/.source +
          / \(Cloud Monitoring alert conditions look back at most 25 hours\)/.source,
      ),
    ],
    [
      'weekly schedule without rpo',
      () => synthGoogle((s) => backup(s, { schedule: BackupSchedule.cron({ hour: '2', weekDay: 'SUN' }) })),
      /leaves up to 7 days between two backups, but the stale alarm can wait at most 25 hours/,
    ],
    [
      'AWS KMS encryption on Google',
      () =>
        synthGoogle((s) =>
          backup(s, {
            encryption: BackupEncryption.kms(
              'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
            ),
          }),
        ),
      /uses AWS KMS, which a Cloud Run job has no identity for/,
    ],
    [
      'image URI',
      () => google.RunnerImage.fromImageUri('gcr.io/acme/dbbackup'),
      /is not an Artifact Registry image URI/,
    ],
    [
      'secret version',
      () =>
        google.BackupSource.postgres({
          url: 'postgres://b@h/d',
          passwordSecret: SECRET,
          passwordSecretVersion: 'newest',
        }),
      /passwordSecretVersion 'newest' is not a secret version/,
    ],
    [
      'no notification channel',
      () => synthGoogle((s) => backup(s, { alarmEmails: [] })),
      /no notification channel: give alarmEmails or notificationChannels/,
    ],
    [
      'weekday schedule the RPO cannot cover',
      () =>
        synthGoogle((s) =>
          backup(s, { schedule: BackupSchedule.cron({ hour: '3', weekDay: 'MON-FRI' }), rpo: Duration.hours(25) }),
        ),
      new RegExp(
        /the schedule \(cron\(0 3 \? \* MON-FRI \*\)\) leaves up to 3 days/.source +
          / between two backups, but the stale alarm can wait at most 25 hours/.source,
      ),
    ],
    [
      'database id',
      () => synthGoogle((s) => backup(s, { databaseId: '9orders' })),
      /databaseId '9orders' is not a valid database id/,
    ],
    [
      'Cloud Run CPU',
      () => synthGoogle((s) => backup(s, { cpu: '3' })),
      /cpu '3' is not a Cloud Run job size; use 1, 2, 4, 6, 8 vCPUs/,
    ],
  ];
  for (const [what, fn, message] of cases) {
    it(`rejects ${what} with a message naming the value and the fix`, () => assert.throws(fn, message));
  }
});

describe('google: a platform team composes it from what it already has', () => {
  // A shared backup bucket managed by the platform, a Cloud SQL for MySQL instance reached
  // through the Cloud SQL socket, a connector, the on-call channel and the MySQL secret.
  function platform(stack: TerraformStack) {
    const bucket = new DataGoogleStorageBucket(stack, 'SharedBackups', { name: 'acme-platform-backups' });
    const secret = new DataGoogleSecretManagerSecret(stack, 'BillingSecret', {
      secretId: 'billing-backup-password',
      project: 'acme-data',
    });
    const oncall = new DataGoogleMonitoringNotificationChannel(stack, 'OnCall', {
      displayName: 'On-call PagerDuty',
      project: 'acme-data',
    });
    const vault = google.BackupVault.fromExisting(stack, 'Vault', { bucket: { name: bucket.name, location: 'EU' } });
    const job = new google.RunnerJob(stack, 'Billing', {
      databaseId: 'billing',
      project: 'acme-data',
      region: 'europe-west4',
      prefix: 'mysql/billing',
      vault,
      source: google.BackupSource.mysql({
        url: 'mysql://backup@localhost/billing?socket=/cloudsql/acme-data:europe-west4:billing/mysql.sock',
        passwordSecret: secret,
        passwordSecretVersion: '3',
      }),
      image: google.RunnerImage.fromImageUri(IMAGE),
      cloudSqlInstances: ['acme-data:europe-west4:billing'],
      vpcEgress: google.VpcEgress.connector('projects/acme-data/locations/europe-west4/connectors/shared'),
      encryption: BackupEncryption.age('age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'),
      deletionProtection: false,
    });
    new google.RunnerSchedule(stack, 'BillingSchedule', {
      job,
      schedules: [BackupSchedule.cron({ minute: '30', hour: '*/4' })],
    });
    const verifier = new google.Verifier(stack, 'BillingVerifier', {
      databaseId: 'billing',
      project: 'acme-data',
      region: 'europe-west4',
      vault,
      image: google.RunnerImage.fromImageUri(IMAGE),
      prefix: 'mysql/billing',
    });
    new google.BackupMonitoring(stack, 'BillingAlerts', {
      databaseId: 'billing',
      project: 'acme-data',
      runnerJobName: job.jobName,
      verifierJobName: verifier.jobName,
      rpo: Duration.hours(5),
      notificationChannels: [oncall],
    });
    return vault;
  }

  it('creates no bucket or key, and says which lifecycle rules the bucket owner must add', () => {
    let vault!: google.IBackupVault;
    const s = synthGoogle((stack) => (vault = platform(stack)));
    for (const type of [
      'google_storage_bucket',
      'google_kms_crypto_key',
      'google_kms_key_ring',
      'google_monitoring_notification_channel',
    ]) {
      assert.equal(s.count(type), 0, type);
    }
    const w = warnings(vault as unknown as google.BackupVault);
    assert.match(w[0], /Delete at age 7 days matching prefix 'mysql\/billing\/daily\/'.*'mysql\/billing\/monthly\/'/);
  });

  it('backs up MySQL through the Cloud SQL socket into the shared bucket', () => {
    const s = synthGoogle(platform);
    const job = s.at('google_cloud_run_v2_job', 'Billing');
    const c = container(job);
    const env = envMap(c.env);
    assert.equal(env.DBBACKUP_ENGINE, 'mysql');
    assert.equal(env.DBBACKUP_TO, 'gs://${data.google_storage_bucket.SharedBackups.name}/mysql/billing');
    assert.match(env.DBBACKUP_ENCRYPT, /^age:age1/);
    assert.deepEqual(job.template.template.volumes, [
      { name: 'cloudsql', cloud_sql_instance: { instances: ['acme-data:europe-west4:billing'] } },
    ]);
    assert.deepEqual(c.volume_mounts, [{ name: 'cloudsql', mount_path: '/cloudsql' }]);
    assert.deepEqual(job.template.template.vpc_access, {
      connector: 'projects/acme-data/locations/europe-west4/connectors/shared',
      egress: 'PRIVATE_RANGES_ONLY',
    });
    assert.equal(job.deletion_protection, false);
    const secret = (c.env as any[]).find((e) => e.name === SECRET_ENV.SOURCE_PASSWORD);
    assert.deepEqual(secret.value_source.secret_key_ref, {
      secret: '${data.google_secret_manager_secret.BillingSecret.id}',
      version: '3',
    });
    assert.ok(
      s
        .all('google_project_iam_member')
        .some((g) => g.role === 'roles/cloudsql.client' && /Billing_ServiceAccount/.test(g.member)),
    );
    const parsed = parseInvocation(c.args, {
      ...envMap(c.env),
      DBBACKUP_TO: 'gs://acme-platform-backups/mysql/billing',
    }) as any;
    assert.equal(parsed.source.socket, '/cloudsql/acme-data:europe-west4:billing/mysql.sock');
  });

  it('alerts the existing channel with the RPO given, and triggers on the bucket in its location', () => {
    const s = synthGoogle(platform);
    for (const p of s.all('google_monitoring_alert_policy'))
      assert.deepEqual(p.notification_channels, ['${data.google_monitoring_notification_channel.OnCall.id}']);
    const stale = s.at('google_monitoring_alert_policy', 'BillingAlerts/BackupStale').conditions[0].condition_absent;
    assert.equal(
      Number(stale.duration.replace('s', '')) + Number(stale.aggregations[0].alignment_period.replace('s', '')),
      5 * 3600,
    );
    assert.equal(s.one('google_eventarc_trigger').location, 'eu');
    assert.equal(s.one('google_cloud_scheduler_job').schedule, '30 */4 * * *');
    assert.equal(s.one('google_workflows_workflow').user_env_vars.BACKUP_PREFIX, 'mysql/billing');
  });
});

describe('google verify workflow program', () => {
  // No YAML parser among the Node dependencies; the machine's Python has PyYAML (cfn-lint needs it).
  const python = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' });
  ((python.status !== 0 ? 'python3 with PyYAML is not available' : false) ? it.skip : it)(
    'is a Workflows program: params, the manifest filter, the job run with the id override',
    () => {
      const r = spawnSync(
        'python3',
        ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'],
        { input: google.VERIFY_WORKFLOW, encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      const program = JSON.parse(r.stdout);
      assert.deepEqual(program.main.params, ['event']);
      const steps = program.main.steps.map((s: Record<string, unknown>) => Object.keys(s)[0]);
      assert.deepEqual(steps, ['read', 'filter', 'pick', 'verify', 'done']);
      const filter = program.main.steps[1].filter.switch as { condition: string; return: string }[];
      assert.ok(
        filter.every(
          (c) => c.condition.startsWith('${') && c.condition.endsWith('}') && c.return.startsWith('ignored'),
        ),
      );
      const verify = program.main.steps[3].verify;
      assert.equal(verify.call, 'googleapis.run.v2.projects.locations.jobs.run');
      assert.equal(verify.args.name, '${sys.get_env("VERIFIER_JOB")}');
      assert.deepEqual(verify.args.body.overrides.containerOverrides, [{ args: ['verify', '--id', '${backup_id}'] }]);
      assert.equal(verify.args.connector_params.skip_polling, true);
    },
  );
});
