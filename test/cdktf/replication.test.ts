import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import type { TerraformStack } from 'cdktf';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic';
import * as aws from '../../lib/cdktf/aws';
import { Duration, ObjectLockMode, Retention } from '../../lib/cdktf/aws';
import { allowedActions, policy, statement, synthAws, warnings } from './helpers';

const RETENTION = Retention.gfs({ daily: 7, weekly: 4, monthly: 12 });
const LOCK = { mode: ObjectLockMode.COMPLIANCE, retention: Duration.days(7) };

/** A vault and its replica vault (the same retention and Object Lock), the replica's region declared. */
function pair(stack: TerraformStack, replicaOptions: Partial<aws.BackupVaultProps> = {}) {
  const replica = new aws.BackupVault(stack, 'Replica', { retention: RETENTION, objectLock: LOCK, ...replicaOptions });
  const topic = new SnsTopic(stack, 'Alarms', { name: 'alarms' });
  const vault = new aws.BackupVault(stack, 'Vault', {
    retention: RETENTION,
    objectLock: LOCK,
    replication: { destination: replica, destinationRegion: 'eu-central-1', alarmTopic: topic },
  });
  return { vault, replica };
}

describe('CDKTF BackupVault replication', () => {
  test(
    'aws_s3_bucket_replication_configuration: SSE-KMS objects, the ' +
      'replica key, RTC and metrics, no delete markers',
    () => {
      const s = synthAws((stack) => pair(stack));
      const config = s.one('aws_s3_bucket_replication_configuration');
      assert.match(config.bucket, /aws_s3_bucket\.Vault_[0-9A-F]{8}\.bucket/);
      assert.match(config.role, /aws_iam_role\.Vault_Replication_Role_[0-9A-F]{8}\.arn/);
      assert.ok(config.depends_on.some((d: string) => /aws_s3_bucket_versioning\.Vault_Versioning/.test(d)));
      assert.equal(config.rule.length, 1);
      const [rule] = config.rule;
      assert.equal(rule.id, 'dbbackup-replica');
      assert.equal(rule.status, 'Enabled');
      assert.deepEqual(rule.filter, { prefix: '' });
      assert.deepEqual(rule.delete_marker_replication, { status: 'Disabled' });
      assert.deepEqual(rule.source_selection_criteria, { sse_kms_encrypted_objects: { status: 'Enabled' } });
      assert.match(rule.destination.bucket, /aws_s3_bucket\.Replica_[0-9A-F]{8}\.arn/);
      assert.match(
        rule.destination.encryption_configuration.replica_kms_key_id,
        /aws_kms_key\.Replica_Key_[0-9A-F]{8}\.arn/,
      );
      assert.deepEqual(rule.destination.metrics, { status: 'Enabled', event_threshold: { minutes: 15 } });
      assert.deepEqual(rule.destination.replication_time, { status: 'Enabled', time: { minutes: 15 } });
      assert.equal(rule.destination.account, undefined);
    },
  );

  test('the replica vault has the same tier lifecycle rules and Object Lock as the vault', () => {
    const s = synthAws((stack) => pair(stack));
    const lifecycle = (suffix: string) =>
      s.at('aws_s3_bucket_lifecycle_configuration', `${suffix}/Lifecycle`).rule.filter((r: any) => r.filter[0].tag);
    assert.deepEqual(lifecycle('Replica'), lifecycle('Vault'));
    assert.deepEqual(
      lifecycle('Vault').map((r: any) => [r.filter[0].tag[0].value, r.expiration[0].days]),
      [
        ['daily', 7],
        ['weekly', 28],
        ['monthly', 372],
      ],
    );
    const locks = s.all('aws_s3_bucket_object_lock_configuration');
    assert.equal(locks.length, 2);
    assert.deepEqual(locks[0].rule, locks[1].rule);
  });

  test(
    'the role: read versions, tags and lock settings, replicate ' +
      'objects and tags, the keys only through S3; no delete',
    () => {
      const s = synthAws((stack) => pair(stack));
      const p = policy(s.one('aws_iam_role_policy').policy);
      const actions = allowedActions(p);
      for (const a of [
        's3:GetObjectVersionForReplication',
        's3:GetObjectRetention',
        's3:ReplicateObject',
        's3:ReplicateTags',
      ])
        assert.ok(actions.includes(a), a);
      assert.equal(
        actions.some((a) => /Delete|\*/.test(a)),
        false,
        actions.join(),
      );
      assert.equal(
        statement(p, 'EncryptReplicasThroughS3').Condition.StringEquals['kms:ViaService'],
        's3.eu-central-1.amazonaws.com',
      );
      assert.equal(
        JSON.parse(s.one('aws_iam_role').assume_role_policy).Statement[0].Principal.Service,
        's3.amazonaws.com',
      );
    },
  );

  test('alarms on failed operations and latency, with the replication metric dimensions, to the topic', () => {
    const s = synthAws((stack) => pair(stack));
    const alarms = s.all('aws_cloudwatch_metric_alarm');
    assert.deepEqual(alarms.map((a) => a.metric_name).sort(), ['OperationsFailedReplication', 'ReplicationLatency']);
    for (const a of alarms) {
      assert.equal(a.namespace, 'AWS/S3');
      assert.equal(a.dimensions.RuleId, 'dbbackup-replica');
      assert.match(a.alarm_actions[0], /aws_sns_topic\.Alarms\.arn/);
    }
    assert.equal(alarms.find((a) => a.metric_name === 'ReplicationLatency')!.threshold, 1800);
  });

  test('another account: owner override, the destination account, and a warning about Object Lock', () => {
    let vault!: aws.BackupVault;
    const s = synthAws((stack) => {
      const destination = aws.BackupVault.fromExisting(stack, 'BackupAccount', {
        bucket: { bucket: 'org-backup-replicas', arn: 'arn:aws:s3:::org-backup-replicas' },
        key: { arn: 'arn:aws:kms:eu-central-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
      });
      vault = new aws.BackupVault(stack, 'Vault', {
        objectLock: LOCK,
        replication: { destination, destinationAccountId: '210987654321', replicationTimeControl: false },
      });
    });
    const [rule] = s.one('aws_s3_bucket_replication_configuration').rule;
    assert.equal(rule.destination.account, '210987654321');
    assert.deepEqual(rule.destination.access_control_translation, { owner: 'Destination' });
    assert.equal(rule.destination.replication_time, undefined);
    assert.deepEqual(rule.destination.metrics, { status: 'Enabled' });
    assert.ok(
      allowedActions(policy(s.one('aws_iam_role_policy').policy)).includes('s3:ObjectOwnerOverrideToBucketOwner'),
    );
    assert.ok(warnings(vault).some((w) => /only to a destination bucket with Object Lock enabled/.test(w)));
  });

  test(
    'refused: a replica vault with other tiers, or without the ' + 'Object Lock this vault has, or a bad account id',
    () => {
      assert.throws(
        () => synthAws((stack) => pair(stack, { retention: Retention.gfs({ daily: 14 }) })),
        /replication.destination keeps tiers daily=14,weekly=28,monthly=372, this vault daily=7,weekly=28,monthly=372/,
      );
      assert.throws(
        () => synthAws((stack) => pair(stack, { objectLock: undefined })),
        /has no Object Lock, but this vault has/,
      );
      assert.throws(
        () =>
          synthAws((stack) => {
            const destination = new aws.BackupVault(stack, 'R');
            new aws.BackupVault(stack, 'V', { replication: { destination, destinationAccountId: 'backup' } });
          }),
        /destinationAccountId 'backup' is not an AWS account id/,
      );
    },
  );

  test('without replication there is no replication configuration (nothing changes for other users)', () => {
    const s = synthAws((stack) => new aws.BackupVault(stack, 'Vault'));
    assert.equal(s.count('aws_s3_bucket_replication_configuration'), 0);
    assert.equal(s.count('aws_iam_role'), 0);
  });
});
