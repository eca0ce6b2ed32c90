import * as assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
import { TerraformStack } from 'cdktf';
import { DataAwsEcsCluster } from '@cdktf/provider-aws/lib/data-aws-ecs-cluster';
import { DataAwsKmsKey } from '@cdktf/provider-aws/lib/data-aws-kms-key';
import { DataAwsS3Bucket } from '@cdktf/provider-aws/lib/data-aws-s3-bucket';
import { DataAwsSecretsmanagerSecret } from '@cdktf/provider-aws/lib/data-aws-secretsmanager-secret';
import { DataAwsSnsTopic } from '@cdktf/provider-aws/lib/data-aws-sns-topic';
import { BackupEncryption, BackupSchedule, Compression, Duration, Retention } from '../../lib/cdktf/aws';
import {
  FreshnessCheckEvent,
  METRICS,
  METRIC_NAMESPACE,
  RUNNER_ENV,
  RunnerCommand,
  SECRET_ENV,
  TIER_TAG_KEY,
  VERIFIER_ENV,
  renderRunnerEnvironment,
} from '../../lib/core';
import * as aws from '../../lib/cdktf/aws';
import { parseInvocation } from '../../runner/src/config';
import { allowedActions, envMap, policy, statement, synthAws } from './helpers';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:dbbackup/orders-AbCdEf';
const KEY_ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const REPO = {
  arn: 'arn:aws:ecr:eu-west-1:111122223333:repository/dbbackup',
  repositoryUrl: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/dbbackup',
};
const NETWORK = { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'] };

function postgres(options: Partial<aws.BackupSourceOptions> = {}) {
  return aws.BackupSource.postgres({
    url: 'postgres://backup@orders.internal:5432/orders',
    passwordSecret: { arn: SECRET_ARN },
    ...options,
  });
}

function backup(stack: TerraformStack, props: Partial<aws.DatabaseBackupProps> = {}) {
  return new aws.DatabaseBackup(stack, 'Orders', {
    databaseId: 'orders',
    source: postgres(),
    image: aws.RunnerImage.fromEcrRepository(REPO, '1.2.3'),
    network: NETWORK,
    schedule: BackupSchedule.daily(2),
    retention: Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }),
    alarmEmails: ['oncall@example.com'],
    // One task definition in these tests; drills have their own (test/cdktf/model.test.ts).
    drill: { enabled: false },
    ...props,
  });
}

/** The runner container of the one task definition. */
function container(s: ReturnType<typeof synthAws>) {
  const defs = JSON.parse(s.one('aws_ecs_task_definition').container_definitions);
  assert.equal(defs.length, 1);
  return defs[0];
}

describe('aws BackupVault', () => {
  it('encrypts with a rotating KMS key and an S3 bucket key, blocks SSE-C and public access, keeps versions', () => {
    const s = synthAws((stack) => new aws.BackupVault(stack, 'Vault'));
    const key = s.one('aws_kms_key');
    assert.equal(key.enable_key_rotation, true);
    assert.equal(key.deletion_window_in_days, 30);
    const sse = s.one('aws_s3_bucket_server_side_encryption_configuration').rule[0];
    assert.equal(sse.apply_server_side_encryption_by_default.sse_algorithm, 'aws:kms');
    assert.match(
      sse.apply_server_side_encryption_by_default.kms_master_key_id,
      /^\$\{aws_kms_key\.Vault_Key_[0-9A-F]+\.arn\}$/,
    );
    assert.equal(sse.bucket_key_enabled, true);
    assert.deepEqual(sse.blocked_encryption_types, ['SSE-C']);
    const pab = s.one('aws_s3_bucket_public_access_block');
    for (const k of ['block_public_acls', 'block_public_policy', 'ignore_public_acls', 'restrict_public_buckets'])
      assert.equal(pab[k], true, k);
    assert.equal(s.one('aws_s3_bucket_versioning').versioning_configuration.status, 'Enabled');
    assert.equal(s.one('aws_s3_bucket_ownership_controls').rule.object_ownership, 'BucketOwnerEnforced');
    assert.equal(s.one('aws_s3_bucket').bucket_prefix, 'dbbackup-');
    assert.equal(s.one('aws_s3_bucket').force_destroy, false);
    assert.equal(s.one('aws_s3_bucket_notification').eventbridge, true);
    assert.equal(s.count('aws_s3_bucket_object_lock_configuration'), 0);
  });

  it('denies non-TLS requests and writes under another encryption, without breaking UploadPart', () => {
    const s = synthAws((stack) => new aws.BackupVault(stack, 'Vault'));
    const p = policy(s.one('aws_s3_bucket_policy').policy);
    assert.ok(
      p.Statement.every((st) => st.Effect === 'Deny'),
      'the bucket policy only denies',
    );
    assert.deepEqual(statement(p, 'DenyInsecureTransport').Condition, { Bool: { 'aws:SecureTransport': 'false' } });
    assert.deepEqual(statement(p, 'DenyWritesNotEncryptedWithKms').Condition, {
      StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption': 'aws:kms' },
    });
    assert.match(
      JSON.stringify(statement(p, 'DenyWritesWithAnotherKey').Condition),
      /StringNotEqualsIfExists.*x-amz-server-side-encryption-aws-kms-key-id/,
    );
    // UploadPart requests carry no encryption header: a deny on a *missing* header would refuse them.
    for (const st of p.Statement) {
      assert.equal(
        JSON.stringify(st.Condition ?? {}).includes('"s3:x-amz-server-side-encryption":"true"'),
        false,
        `${st.Sid} denies a missing header`,
      );
    }
  });

  it('has one lifecycle rule per tier on the tier tag, with the days of the retention, and housekeeping', () => {
    const s = synthAws(
      (stack) =>
        new aws.BackupVault(stack, 'Vault', { retention: Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }) }),
    );
    const rules = s.one('aws_s3_bucket_lifecycle_configuration').rule as any[];
    const tiers = rules.filter((r) => r.id.startsWith('expire-'));
    assert.deepEqual(
      tiers.map((r) => [r.id, r.filter[0].tag[0].key, r.filter[0].tag[0].value, r.expiration[0].days, r.status]),
      [
        ['expire-daily', TIER_TAG_KEY, 'daily', 7, 'Enabled'],
        ['expire-weekly', TIER_TAG_KEY, 'weekly', 28, 'Enabled'],
        ['expire-monthly', TIER_TAG_KEY, 'monthly', 372, 'Enabled'],
      ],
    );
    const hk = rules.find((r) => r.id === 'housekeeping');
    assert.equal(hk.abort_incomplete_multipart_upload[0].days_after_initiation, 2);
    assert.equal(hk.noncurrent_version_expiration[0].noncurrent_days, 7);
    assert.equal(hk.expiration[0].expired_object_delete_marker, true);
    assert.equal(hk.filter[0].prefix, '');
  });

  it('leaves out tiers that keep nothing', () => {
    const s = synthAws((stack) => new aws.BackupVault(stack, 'Vault', { retention: Retention.days(30) }));
    const ids = (s.one('aws_s3_bucket_lifecycle_configuration').rule as any[]).map((r) => r.id);
    assert.deepEqual(ids, ['expire-daily', 'housekeeping']);
  });

  it('enables Object Lock on request', () => {
    const s = synthAws((stack) => {
      new aws.BackupVault(stack, 'Vault', {
        retention: Retention.gfs({ daily: 7 }),
        objectLock: { mode: aws.ObjectLockMode.COMPLIANCE, retention: Duration.days(7) },
      });
    });
    assert.equal(s.one('aws_s3_bucket').object_lock_enabled, true);
    assert.deepEqual(s.one('aws_s3_bucket_object_lock_configuration').rule.default_retention, {
      mode: 'COMPLIANCE',
      days: 7,
    });
  });

  it('refuses an Object Lock that outlives a tier', () => {
    assert.throws(
      () =>
        synthAws((stack) => {
          new aws.BackupVault(stack, 'Vault', {
            retention: Retention.gfs({ daily: 7 }),
            objectLock: { mode: aws.ObjectLockMode.GOVERNANCE, retention: Duration.days(14) },
          });
        }),
      new RegExp(
        /objectLock\.retention of 14 days outlives the retention of daily \(7 days\): the lifecycle rules/.source +
          / could not remove those backups before the lock ends\. Lower objectLock\.retention to at most 7 days/.source,
      ),
    );
  });

  it('writes server access logs where asked', () => {
    const s = synthAws(
      (stack) =>
        new aws.BackupVault(stack, 'Vault', {
          serverAccessLogs: { bucket: { bucket: 'acme-access-logs', arn: 'arn:aws:s3:::acme-access-logs' } },
        }),
    );
    const logging = s.one('aws_s3_bucket_logging');
    assert.equal(logging.target_bucket, 'acme-access-logs');
    assert.equal(logging.target_prefix, 'dbbackup-vault/');
  });

  it('rejects a bucket prefix S3 would refuse', () => {
    assert.throws(
      () => synthAws((stack) => new aws.BackupVault(stack, 'Vault', { bucketPrefix: 'a'.repeat(40) })),
      /bucketPrefix 'a{40}' is 40 characters long; S3 allows at most 37/,
    );
  });
});

describe('aws RunnerTask', () => {
  it('renders the environment from the runner contract, the command and the password secret', () => {
    const s = synthAws((stack) => backup(stack));
    const c = container(s);
    assert.deepEqual(c.command, ['backup']);
    const env = envMap(c.environment);
    const expected = {
      ...renderRunnerEnvironment(RunnerCommand.BACKUP, {
        engine: 'postgres',
        source: 'postgres://backup@orders.internal:5432/orders',
        to: 'PLACEHOLDER',
        type: 'full',
        compression: 'zstd',
        encrypt: 'PLACEHOLDER',
        // kms: backups (the default): the task refuses manifests that are not kms: and authenticated.
        'require-encryption': 'kms',
        json: true,
      }),
      [RUNNER_ENV.DATABASE_ID]: 'orders',
      [RUNNER_ENV.LOG_FORMAT]: 'json',
    };
    assert.deepEqual(Object.keys(env).sort(), Object.keys(expected).sort());
    // Under coreutils timeout, as in the AWS CDK flavour (lib/core timeoutEntryPoint).
    assert.deepEqual(c.entryPoint, [
      'timeout',
      '--signal=TERM',
      '--kill-after=60',
      '14400',
      'node',
      '/opt/dbbackup/dbbackup.js',
    ]);
    assert.match(env.DBBACKUP_TO, /^s3:\/\/\$\{aws_s3_bucket\.Orders_Vault_[0-9A-F]+\.bucket\}\/orders$/);
    assert.match(env.DBBACKUP_ENCRYPT, /^kms:\$\{aws_kms_key\.Orders_Vault_Key_[0-9A-F]+\.arn\}$/);
    assert.deepEqual(c.secrets, [{ name: SECRET_ENV.SOURCE_PASSWORD, valueFrom: SECRET_ARN }]);
    assert.equal(c.readonlyRootFilesystem, true);
    assert.equal(c.logConfiguration.logDriver, 'awslogs');
    const td = s.one('aws_ecs_task_definition');
    assert.deepEqual(td.requires_compatibilities, ['FARGATE']);
    assert.equal(td.network_mode, 'awsvpc');
  });

  it('gives the runner a role that writes and reads its prefix and can never delete', () => {
    const s = synthAws((stack) => backup(stack));
    const role = policy(s.at('aws_iam_role_policy', 'FullBackupTask/TaskRolePolicy').policy);
    const actions = allowedActions(role);
    assert.ok(
      actions.every((a) => !/Delete|PutLifecycle|PutBucketPolicy|BypassGovernance|\*/.test(a)),
      `no delete: ${actions}`,
    );
    const write = statement(role, 'WriteAndReadBackups');
    assert.deepEqual(write.Action, [
      's3:PutObject',
      's3:PutObjectTagging',
      's3:AbortMultipartUpload',
      's3:ListMultipartUploadParts',
      's3:GetObject',
      's3:GetObjectTagging',
    ]);
    assert.match(String(write.Resource), /\.arn\}\/orders\/\*$/);
    assert.deepEqual(statement(role, 'ListBackups').Condition, { StringLike: { 's3:prefix': ['orders', 'orders/*'] } });
    assert.deepEqual(statement(role, 'UseVaultKey').Action, ['kms:Decrypt', 'kms:GenerateDataKey']);
    assert.deepEqual(statement(role, 'WrapBackupKeys').Action, ['kms:Encrypt']);
    const trust = policy(s.at('aws_iam_role', 'FullBackupTask/TaskRole').assume_role_policy);
    assert.deepEqual(trust.Statement[0].Principal, { Service: 'ecs-tasks.amazonaws.com' });
    assert.ok(trust.Statement[0].Condition.StringEquals['aws:SourceAccount']);
  });

  it('lets the execution role pull the image, write logs and read only the one secret', () => {
    const s = synthAws((stack) => backup(stack));
    const exec = policy(s.at('aws_iam_role_policy', 'FullBackupTask/ExecutionRolePolicy').policy);
    assert.equal(statement(exec, 'ReadSourcePassword').Resource, SECRET_ARN);
    assert.equal(statement(exec, 'PullRunnerImage').Resource, REPO.arn);
    assert.equal(container(s).image, `${REPO.repositoryUrl}:1.2.3`);
    assert.ok(!allowedActions(exec).some((a) => a.startsWith('s3:')));
  });

  it('keeps every secret out of the Terraform JSON', () => {
    const s = synthAws((stack) => backup(stack));
    const json = JSON.stringify(s.tf);
    assert.equal(/PGPASSWORD|MYSQL_PWD/.test(json), false);
    const env = envMap(container(s).environment);
    assert.equal(SECRET_ENV.SOURCE_PASSWORD in env, false, 'the password is a secret, not a plain variable');
    assert.equal(/:\/\/[^/@"]*:[^/@"]*@/.test(env.DBBACKUP_SOURCE), false, 'no password in the URL');
  });

  it('is parsed by the runner itself: construct and runner agree on the contract', () => {
    const s = synthAws((stack) => {
      const vault = aws.BackupVault.fromExisting(stack, 'Vault', {
        bucket: { bucket: 'acme-backups', arn: 'arn:aws:s3:::acme-backups' },
        key: { arn: KEY_ARN },
      });
      backup(stack, { vault, retention: undefined, compression: Compression.GZIP });
    });
    const c = container(s);
    const config = parseInvocation(c.command, envMap(c.environment)) as any;
    assert.equal(config.command, 'backup');
    assert.equal(config.engine, 'postgres');
    assert.equal(config.source.host, 'orders.internal');
    assert.equal(config.source.database, 'orders');
    assert.deepEqual([config.to.kind, config.to.bucket, config.to.path], ['s3', 'acme-backups', 'orders']);
    assert.equal(config.compression, 'gzip');
    assert.deepEqual(config.encryption, { scheme: 'kms', key: KEY_ARN });
    assert.equal(config.json, true);
  });

  it('makes a security group with HTTPS egress and the database port inside the VPC', () => {
    const s = synthAws((stack) => backup(stack));
    const rules = s.all('aws_vpc_security_group_egress_rule');
    assert.deepEqual(rules.map((r) => [r.from_port, r.to_port]).sort(), [
      [443, 443],
      [5432, 5432],
    ]);
    assert.match(rules.find((r) => r.from_port === 5432)!.cidr_ipv4, /data\.aws_vpc\./);
  });
});

describe('aws RunnerSchedule', () => {
  it('runs the task on Fargate from EventBridge Scheduler with retries and a dead-letter queue', () => {
    const s = synthAws((stack) =>
      backup(stack, { schedule: BackupSchedule.cron({ hour: '3', minute: '15', timeZone: 'Europe/Berlin' }) }),
    );
    const sched = s.at('aws_scheduler_schedule', 'FullSchedule/Resource');
    assert.equal(sched.schedule_expression, 'cron(15 3 * * ? *)');
    assert.equal(sched.schedule_expression_timezone, 'Europe/Berlin');
    assert.deepEqual(sched.flexible_time_window, { mode: 'OFF' });
    const t = sched.target;
    assert.match(t.arn, /aws_ecs_cluster\..*\.arn/);
    assert.match(t.ecs_parameters.task_definition_arn, /aws_ecs_task_definition\..*\.arn/);
    assert.equal(t.ecs_parameters.launch_type, 'FARGATE');
    assert.deepEqual(t.ecs_parameters.network_configuration.subnets, NETWORK.subnetIds);
    assert.equal(t.ecs_parameters.network_configuration.assign_public_ip, false);
    assert.deepEqual(t.retry_policy, { maximum_retry_attempts: 3, maximum_event_age_in_seconds: 3600 });
    assert.match(t.dead_letter_config.arn, /aws_sqs_queue\..*\.arn/);
    assert.equal(s.one('aws_sqs_queue').sqs_managed_sse_enabled, true);
  });

  it('lets the scheduler start only this task in this cluster and pass only its roles', () => {
    const s = synthAws((stack) => backup(stack));
    const p = policy(s.at('aws_iam_role_policy', 'FullSchedule/RolePolicy').policy);
    const run = statement(p, 'RunBackupTask');
    assert.match(String(run.Resource), /arn_without_revision\}:\*$/);
    assert.ok(run.Condition.ArnEquals['ecs:cluster']);
    assert.deepEqual(statement(p, 'PassTaskRoles').Condition, {
      StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' },
    });
    assert.equal(statement(p, 'DeadLetter').Action, 'sqs:SendMessage');
  });
});

describe('aws Verifier', () => {
  it('runs the bundled verification function on each committed manifest of the prefix', () => {
    const s = synthAws((stack) => backup(stack));
    const fn = s.one('aws_lambda_function');
    assert.equal(fn.runtime, 'nodejs22.x');
    assert.equal(fn.handler, 'index.handler');
    assert.match(fn.filename, /^assets\/DbBackupVerifyCode\/[0-9A-F]{32}\/archive\.zip$/);
    assert.match(fn.source_code_hash, /^[0-9A-F]{32}$/);
    assert.equal(fn.environment.variables[VERIFIER_ENV.METRIC_NAMESPACE], METRIC_NAMESPACE);
    assert.equal(fn.environment.variables[VERIFIER_ENV.DATABASE_ID], 'orders');
    assert.match(fn.environment.variables[VERIFIER_ENV.ALARM_TOPIC_ARN], /aws_sns_topic\..*\.arn/);
    // kms: backups (the default): manifests of any other scheme, or unauthenticated, fail.
    assert.equal(fn.environment.variables[VERIFIER_ENV.REQUIRE_ENCRYPTION], 'kms');
    const plain = synthAws((stack) => backup(stack, { encryption: BackupEncryption.none() })).one(
      'aws_lambda_function',
    );
    assert.equal(plain.environment.variables[VERIFIER_ENV.REQUIRE_ENCRYPTION], undefined);
    const pattern = JSON.parse(s.one('aws_cloudwatch_event_rule').event_pattern);
    assert.deepEqual(pattern.source, ['aws.s3']);
    assert.deepEqual(pattern['detail-type'], ['Object Created']);
    assert.deepEqual(pattern.detail.object.key, [{ wildcard: 'orders/*/manifest.json' }]);
    assert.equal(s.one('aws_lambda_permission').principal, 'events.amazonaws.com');
  });

  it('checks freshness on a schedule with the FreshnessCheckEvent contract', () => {
    const s = synthAws((stack) => backup(stack));
    const fresh = s.at('aws_scheduler_schedule', 'Verifier/Freshness');
    assert.equal(fresh.schedule_expression, 'rate(15 minutes)');
    const input = JSON.parse(fresh.target.input) as FreshnessCheckEvent;
    assert.equal(input.action, 'freshness');
    assert.equal(input.prefix, 'orders');
    assert.equal(input.databaseId, 'orders');
    assert.match(fresh.target.arn, /aws_lambda_function\./);
  });

  it('lets the function read and tag backups and publish, never delete', () => {
    const s = synthAws((stack) => backup(stack));
    const p = policy(s.at('aws_iam_role_policy', 'Verifier/RolePolicy').policy);
    assert.ok(allowedActions(p).every((a) => !/Delete/.test(a)));
    assert.ok(allowedActions(p).includes('s3:PutObjectTagging'));
    assert.ok(allowedActions(p).includes('sns:Publish'));
    assert.deepEqual(statement(p, 'PublishEncrypted').Action, ['kms:GenerateDataKey', 'kms:Decrypt']);
  });
});

describe('aws BackupMonitoring', () => {
  it('alarms on backup age above the RPO (missing data breaching), failed backups and failed verifications', () => {
    const s = synthAws((stack) => backup(stack));
    const age = s.at('aws_cloudwatch_metric_alarm', 'Monitoring/BackupAge');
    assert.equal(age.namespace, METRIC_NAMESPACE);
    assert.equal(age.metric_name, METRICS.BACKUP_AGE);
    assert.deepEqual(age.dimensions, { DatabaseId: 'orders' });
    assert.equal(age.comparison_operator, 'GreaterThanThreshold');
    assert.equal(
      age.threshold,
      28 * 3600,
      'default RPO: the daily gap plus the backup timeout (lib/core/rpo, as in the CDK)',
    );
    assert.equal(age.treat_missing_data, 'breaching');
    assert.deepEqual([age.period, age.evaluation_periods, age.datapoints_to_alarm], [900, 2, 2]);
    for (const [id, metric] of [
      ['BackupFailed', METRICS.BACKUP_FAILED],
      ['VerificationFailed', METRICS.VERIFICATION_FAILED],
    ]) {
      const a = s.at('aws_cloudwatch_metric_alarm', `Monitoring/${id}`);
      assert.equal(a.metric_name, metric);
      assert.equal(a.statistic, 'Sum');
      assert.equal(a.threshold, 1);
      assert.equal(a.comparison_operator, 'GreaterThanOrEqualToThreshold');
      assert.equal(a.treat_missing_data, 'notBreaching');
      assert.equal(a.alarm_actions.length, 1);
    }
    assert.equal(s.at('aws_cloudwatch_metric_alarm', 'Monitoring/RunNotStarted').namespace, 'AWS/SQS');
    assert.equal(
      s.at('aws_cloudwatch_metric_alarm', 'Monitoring/VerifierErrors').dimensions.FunctionName,
      'dbbackup-orders-verify',
    );
    assert.equal(s.one('aws_lambda_function').function_name, 'dbbackup-orders-verify');
  });

  it('sends to an SNS topic encrypted with a key CloudWatch may use, TLS only', () => {
    const s = synthAws((stack) => backup(stack));
    const topic = s.one('aws_sns_topic');
    assert.match(topic.kms_master_key_id, /aws_kms_key\.Orders_Monitoring_TopicKey_/);
    const key = policy(s.at('aws_kms_key', 'Monitoring/TopicKey').policy);
    assert.deepEqual(statement(key, 'CloudWatchPublishes').Principal, { Service: 'cloudwatch.amazonaws.com' });
    const tp = policy(s.one('aws_sns_topic_policy').policy);
    assert.equal(statement(tp, 'DenyInsecureTransport').Effect, 'Deny');
    assert.equal(s.one('aws_sns_topic_subscription').endpoint, 'oncall@example.com');
  });

  it('takes the RPO given', () => {
    const s = synthAws((stack) => backup(stack, { rpo: Duration.hours(30) }));
    assert.equal(s.at('aws_cloudwatch_metric_alarm', 'Monitoring/BackupAge').threshold, 30 * 3600);
  });
});

describe('aws validation (messages shared with the CDK constructs through lib/core)', () => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      'database id',
      () => synthAws((s) => backup(s, { databaseId: 'Orders_DB' })),
      /databaseId 'Orders_DB' is not a valid database id\. Use 1 to 40 lower-case letters/,
    ],
    ['cron', () => BackupSchedule.cron({ hour: '25' }), /cron hour '25' is not valid; use a number 0-23/],
    [
      'time zone',
      () => BackupSchedule.cron({ hour: '2', timeZone: 'Mars/Olympus' }),
      /schedule timeZone 'Mars\/Olympus' is not a time zone/,
    ],
    [
      'retention',
      () => Retention.gfs({ daily: 0 }),
      /retention daily is 0; every backup is daily until it is promoted/,
    ],
    [
      'rpo shorter than the schedule',
      () => synthAws((s) => backup(s, { rpo: Duration.hours(12) })),
      new RegExp(
        /rpo is 12 hours, shorter than the longest gap between scheduled/.source +
          / backups \(1 day: cron\(0 2 \* \* \? \*\)\).*at least 28 hours/.source,
      ),
    ],
    [
      'password in the URL',
      () =>
        aws.BackupSource.postgres({ url: 'postgres://backup:hunter2@db/orders', passwordSecret: { arn: SECRET_ARN } }),
      /'postgres:\/\/backup:\*\*\*@db\/orders' contains a password/,
    ],
    [
      'engine and scheme',
      () => aws.BackupSource.mysql({ url: 'postgres://backup@db/orders', passwordSecret: { arn: SECRET_ARN } }),
      /is a postgres URL but the engine is 'mysql'/,
    ],
    [
      'prefix',
      () => synthAws((s) => backup(s, { prefix: '/orders/' })),
      /prefix '\/orders\/' is not a valid storage prefix/,
    ],
    [
      'Fargate size',
      () => synthAws((s) => backup(s, { cpu: 1024, memoryLimitMiB: 100 })),
      /memoryLimitMiB 100 does not go with cpu 1024 on Fargate; use 2048 to 8192 MiB/,
    ],
    [
      'image URI',
      () => aws.RunnerImage.fromImageUri('docker.io/library/postgres:16'),
      /image 'docker\.io\/library\/postgres:16' is not an ECR image URI/,
    ],
    [
      'age recipient',
      () => BackupEncryption.age('not-a-recipient'),
      /encryption 'age:not-a-recipient' does not hold an age recipient/,
    ],
    [
      'weekly schedule without rpo',
      () =>
        synthAws((s) =>
          backup(s, { schedule: BackupSchedule.cron({ hour: '2', weekDay: 'SUN' }), rpo: Duration.days(6) }),
        ),
      /rpo is 6 days, shorter than the longest gap between scheduled backups \(7 days/,
    ],
  ];
  for (const [what, fn, message] of cases) {
    it(`rejects a bad ${what} with a message naming the value and the fix`, () => assert.throws(fn, message));
  }

  it('works out the RPO of a weekly schedule', () => {
    const s = synthAws((stack) => backup(stack, { schedule: BackupSchedule.cron({ hour: '2', weekDay: 'SUN' }) }));
    assert.equal(s.at('aws_cloudwatch_metric_alarm', 'Monitoring/BackupAge').threshold, (7 * 24 + 4) * 3600);
  });
});

describe('aws: a platform team composes it from what it already has', () => {
  // An existing bucket and key, an RDS MySQL instance with an RDS-managed secret, a shared
  // cluster, security groups and alarm topic: the constructs are used one by one.
  function platform(stack: TerraformStack) {
    const bucket = new DataAwsS3Bucket(stack, 'Backups', { bucket: 'acme-platform-backups' });
    const key = new DataAwsKmsKey(stack, 'BackupKey', { keyId: 'alias/platform-backups' });
    const secret = new DataAwsSecretsmanagerSecret(stack, 'RdsSecret', { name: 'rds!db-0123456789' });
    const secretKey = new DataAwsKmsKey(stack, 'SecretKey', { keyId: 'alias/platform-secrets' });
    const cluster = new DataAwsEcsCluster(stack, 'Cluster', { clusterName: 'platform-jobs' });
    const topic = new DataAwsSnsTopic(stack, 'Alarms', { name: 'platform-alarms' });

    const vault = aws.BackupVault.fromExisting(stack, 'Vault', { bucket, key });
    const source = aws.BackupSource.mysql({
      url: 'mysql://backup@billing.cluster-abc.eu-west-1.rds.amazonaws.com:3306/billing',
      passwordSecret: secret,
      passwordField: 'password',
      passwordSecretKey: secretKey,
    });
    const task = new aws.RunnerTask(stack, 'BillingTask', {
      databaseId: 'billing',
      prefix: 'mysql/billing',
      source,
      vault,
      image: aws.RunnerImage.fromImageUri(
        '111122223333.dkr.ecr.eu-west-1.amazonaws.com/platform/dbbackup@sha256:' + 'a'.repeat(64),
      ),
      network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'], securityGroupIds: ['sg-backup'] },
      cluster,
      encryption: BackupEncryption.age('age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'),
      cpuArchitecture: aws.CpuArchitecture.ARM64,
    });
    const schedule = new aws.RunnerSchedule(stack, 'BillingSchedule', {
      task,
      schedules: [BackupSchedule.cron({ minute: '0', hour: '*/6' })],
    });
    const monitoring = new aws.BackupMonitoring(stack, 'BillingAlarms', {
      databaseId: 'billing',
      rpo: Duration.hours(7),
      topic,
      deadLetterQueue: schedule.deadLetterQueue,
    });
    new aws.Verifier(stack, 'BillingVerifier', {
      databaseId: 'billing',
      prefix: 'mysql/billing',
      vault,
      alarmTopic: topic,
    });
    return monitoring;
  }

  it('creates no bucket, key, cluster, security group or topic of its own', () => {
    const s = synthAws(platform);
    for (const type of [
      'aws_s3_bucket',
      'aws_kms_key',
      'aws_ecs_cluster',
      'aws_security_group',
      'aws_sns_topic',
      'aws_s3_bucket_policy',
    ]) {
      assert.equal(s.count(type), 0, type);
    }
  });

  it('backs up MySQL into the shared bucket under its prefix with the RDS secret field', () => {
    const s = synthAws(platform);
    const c = container(s);
    const env = envMap(c.environment);
    assert.equal(env.DBBACKUP_ENGINE, 'mysql');
    assert.equal(env.DBBACKUP_TO, 's3://${data.aws_s3_bucket.Backups.bucket}/mysql/billing');
    assert.match(env.DBBACKUP_ENCRYPT, /^age:age1/);
    assert.deepEqual(c.secrets, [
      { name: SECRET_ENV.SOURCE_PASSWORD, valueFrom: '${data.aws_secretsmanager_secret.RdsSecret.arn}:password::' },
    ]);
    assert.match(c.image, /@sha256:a{64}$/);
    const td = s.one('aws_ecs_task_definition');
    assert.equal(td.runtime_platform.cpu_architecture, 'ARM64');
    const exec = policy(s.at('aws_iam_role_policy', 'BillingTask/ExecutionRolePolicy').policy);
    assert.equal(statement(exec, 'DecryptSourcePassword').Resource, '${data.aws_kms_key.SecretKey.arn}');
    assert.equal(
      statement(exec, 'PullRunnerImage').Resource,
      'arn:aws:ecr:eu-west-1:111122223333:repository/platform/dbbackup',
    );
    const task = policy(s.at('aws_iam_role_policy', 'BillingTask/TaskRolePolicy').policy);
    assert.match(String(statement(task, 'WriteAndReadBackups').Resource), /\/mysql\/billing\/\*$/);
    assert.throws(() => statement(task, 'WrapBackupKeys'), /no statement/, 'age encryption needs no KMS Encrypt');
  });

  it('schedules in the shared cluster and alarms to the shared topic', () => {
    const s = synthAws(platform);
    const sched = s.at('aws_scheduler_schedule', 'BillingSchedule/Resource');
    assert.equal(sched.schedule_expression, 'cron(0 */6 * * ? *)');
    assert.equal(sched.target.arn, '${data.aws_ecs_cluster.Cluster.arn}');
    assert.deepEqual(sched.target.ecs_parameters.network_configuration.security_groups, ['sg-backup']);
    for (const alarm of s.all('aws_cloudwatch_metric_alarm'))
      assert.deepEqual(alarm.alarm_actions, ['${data.aws_sns_topic.Alarms.arn}']);
    assert.equal(s.at('aws_cloudwatch_metric_alarm', 'BillingAlarms/BackupAge').threshold, 7 * 3600);
    const pattern = JSON.parse(s.one('aws_cloudwatch_event_rule').event_pattern);
    assert.deepEqual(pattern.detail.object.key, [{ wildcard: 'mysql/billing/*/manifest.json' }]);
  });
});
