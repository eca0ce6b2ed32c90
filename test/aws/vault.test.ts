import * as assert from 'node:assert/strict';
import { describe, expect, test } from '@jest/globals';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { BackupVault, ObjectLockMode, Retention } from '../../lib';
import { TIER_TAG_KEY } from '../../lib/core';
import { newStack, resourcesOf } from './helpers';
import { normalizedTemplate } from './helpers';

describe('BackupVault', () => {
  test(
    'a bucket with a rotating CMK, bucket key, versioning, ' + 'public access blocked, access logs and EventBridge',
    () => {
      const stack = newStack();
      new BackupVault(stack, 'Vault');
      const t = Template.fromStack(stack);
      t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
      t.resourceCountIs('AWS::S3::Bucket', 2);
      t.hasResource('AWS::S3::Bucket', {
        Properties: {
          BucketEncryption: {
            ServerSideEncryptionConfiguration: [
              {
                BucketKeyEnabled: true,
                ServerSideEncryptionByDefault: {
                  SSEAlgorithm: 'aws:kms',
                  KMSMasterKeyID: { 'Fn::GetAtt': [Match.stringLikeRegexp('^VaultKey'), 'Arn'] },
                },
              },
            ],
          },
          VersioningConfiguration: { Status: 'Enabled' },
          PublicAccessBlockConfiguration: {
            BlockPublicAcls: true,
            BlockPublicPolicy: true,
            IgnorePublicAcls: true,
            RestrictPublicBuckets: true,
          },
          LoggingConfiguration: {
            DestinationBucketName: { Ref: Match.stringLikeRegexp('^VaultAccessLogs') },
            LogFilePrefix: 'backup-bucket/',
          },
          NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } },
          OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        },
        UpdateReplacePolicy: 'Retain',
        DeletionPolicy: 'Retain',
      });
      // No custom-resource Lambda for the notifications.
      t.resourceCountIs('AWS::Lambda::Function', 0);
      // The access-logs bucket: SSE-S3 (the only encryption S3 log delivery supports), versioned.
      t.hasResourceProperties('AWS::S3::Bucket', {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        VersioningConfiguration: { Status: 'Enabled' },
        LifecycleConfiguration: {
          Rules: Match.arrayWith([Match.objectLike({ ExpirationInDays: 365, Status: 'Enabled' })]),
        },
      });
    },
  );

  test(
    'one lifecycle rule per retention tier, filtered by the tier tag, ' +
      'plus noncurrent versions, aborted uploads and delete markers',
    () => {
      const stack = newStack();
      new BackupVault(stack, 'Vault', { retention: Retention.gfs({ daily: 10, weekly: 5, monthly: 6 }) });
      const t = Template.fromStack(stack);
      const [, bucket] = resourcesOf(t, 'AWS::S3::Bucket').find(
        ([id]) => id.startsWith('Vault') && !id.includes('AccessLogs'),
      )!;
      const rules = bucket.Properties.LifecycleConfiguration.Rules;
      assert.deepEqual(rules, [
        {
          Id: 'expire-daily',
          ExpirationInDays: 10,
          Status: 'Enabled',
          TagFilters: [{ Key: TIER_TAG_KEY, Value: 'daily' }],
        },
        {
          Id: 'expire-weekly',
          ExpirationInDays: 35,
          Status: 'Enabled',
          TagFilters: [{ Key: TIER_TAG_KEY, Value: 'weekly' }],
        },
        {
          Id: 'expire-monthly',
          ExpirationInDays: 186,
          Status: 'Enabled',
          TagFilters: [{ Key: TIER_TAG_KEY, Value: 'monthly' }],
        },
        {
          Id: 'noncurrent-versions-and-incomplete-uploads',
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 3 },
          NoncurrentVersionExpiration: { NoncurrentDays: 7 },
          Status: 'Enabled',
        },
        { Id: 'expired-delete-markers', ExpiredObjectDeleteMarker: true, Status: 'Enabled' },
      ]);
    },
  );

  test('cold storage moves only tiers that outlive the move, and warns below the class minimum', () => {
    const stack = newStack();
    const vault = new BackupVault(stack, 'Vault', {
      retention: Retention.gfs({ daily: 7, weekly: 8, monthly: 12 }),
      coldStorage: { after: Duration.days(30), storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL },
    });
    const t = Template.fromStack(stack);
    const [, bucket] = resourcesOf(t, 'AWS::S3::Bucket').find(
      ([id]) => id.startsWith('Vault') && !id.includes('AccessLogs'),
    )!;
    const rules = bucket.Properties.LifecycleConfiguration.Rules as any[];
    assert.equal(rules.find((r) => r.Id === 'expire-daily').Transitions, undefined);
    assert.deepEqual(rules.find((r) => r.Id === 'expire-weekly').Transitions, [
      { StorageClass: 'GLACIER_IR', TransitionInDays: 30 },
    ]);
    assert.deepEqual(rules.find((r) => r.Id === 'expire-monthly').Transitions, [
      { StorageClass: 'GLACIER_IR', TransitionInDays: 30 },
    ]);
    // weekly: 56 days, moved at 30: 26 days in GLACIER_IR, below its 90-day minimum.
    Annotations.fromStack(stack).hasWarning(
      `/${vault.node.path}`,
      Match.stringLikeRegexp('weekly backups live 56 days .* 90-day minimum'),
    );
  });

  test('the bucket policy requires TLS and refuses other encryption without breaking multipart uploads', () => {
    const stack = newStack();
    new BackupVault(stack, 'Vault');
    const t = Template.fromStack(stack);
    const [, policy] = resourcesOf(t, 'AWS::S3::BucketPolicy').find(([, p]) =>
      JSON.stringify(p).includes('DenyOtherEncryption'),
    )!;
    const statements = policy.Properties.PolicyDocument.Statement as any[];
    assert.ok(statements.some((s) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false'));
    const deny = statements.filter((s) => s.Effect === 'Deny' && s.Action === 's3:PutObject');
    assert.equal(deny.length, 2);
    for (const s of deny) {
      // "IfExists": UploadPart carries no encryption header, so a Null/absent-header deny would break it.
      assert.deepEqual(Object.keys(s.Condition), ['StringNotEqualsIfExists']);
      assert.equal(JSON.stringify(s).includes('"Null"'), false);
    }
    assert.equal(deny[0].Condition.StringNotEqualsIfExists['s3:x-amz-server-side-encryption'], 'aws:kms');
    const keyId = deny[1].Condition.StringNotEqualsIfExists['s3:x-amz-server-side-encryption-aws-kms-key-id'];
    assert.match(keyId['Fn::GetAtt'][0], /^VaultKey/);
    assert.equal(keyId['Fn::GetAtt'][1], 'Arn');
  });

  test('Object Lock in compliance mode with a default retention', () => {
    const stack = newStack();
    new BackupVault(stack, 'Vault', {
      objectLock: { mode: ObjectLockMode.COMPLIANCE, defaultRetention: Duration.days(7) },
    });
    Template.fromStack(stack).hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 7 } },
      },
    });
  });

  test('rejects an Object Lock longer than a retention tier, naming both and the fix', () => {
    const stack = newStack();
    assert.throws(
      () =>
        new BackupVault(stack, 'Vault', {
          retention: Retention.gfs({ daily: 7 }),
          objectLock: { defaultRetention: Duration.days(30) },
        }),
      new RegExp(
        /objectLock.defaultRetention of 30 days outlives the retention of da/.source +
          /ily \(7 days\).*Lower objectLock.defaultRetention to at most 7 days/.source,
      ),
    );
  });

  test('rejects Object Lock beyond 100 years and lifecycle durations that are not whole days', () => {
    assert.throws(
      () =>
        new BackupVault(newStack(), 'Vault', {
          retention: Retention.days(40000),
          objectLock: { defaultRetention: Duration.days(36501) },
        }),
      /objectLock.defaultRetention is 36501 days; give a whole number of days from 1 to 36500/,
    );
    assert.throws(
      () => new BackupVault(newStack(), 'Vault', { noncurrentVersionExpiration: Duration.hours(12) }),
      /noncurrentVersionExpiration is 12 hours; S3 lifecycle rules count in whole days/,
    );
  });

  test('retention of 0 is refused by the core model with the fix', () => {
    assert.throws(
      () => new BackupVault(newStack(), 'Vault', { retention: Retention.gfs({ daily: 0 }) }),
      /retention daily is 0; .*keep at least 1/,
    );
  });

  test(
    'grants: backup writes and reads under the prefix but ' +
      'never deletes; restore reads; verify tags manifests only',
    () => {
      const stack = newStack();
      const vault = new BackupVault(stack, 'Vault', { removalPolicy: RemovalPolicy.DESTROY });
      const writer = new iam.Role(stack, 'Writer', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
      const reader = new iam.Role(stack, 'Reader', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
      const checker = new iam.Role(stack, 'Checker', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
      vault.grantBackup(writer, 'db1');
      vault.grantRestore(reader, 'db1');
      vault.grantVerify(checker, 'db1');
      const t = Template.fromStack(stack);
      const policyOf = (role: string) =>
        JSON.stringify(
          resourcesOf(t, 'AWS::IAM::Policy').find(([id]) => id.startsWith(role))![1].Properties.PolicyDocument,
        );
      const w = policyOf('Writer');
      for (const a of [
        's3:PutObject',
        's3:PutObjectTagging',
        's3:AbortMultipartUpload',
        's3:ListMultipartUploadParts',
        's3:GetObject',
        's3:ListBucket',
        's3:GetEncryptionConfiguration',
        'kms:Decrypt',
        'kms:GenerateDataKey',
      ]) {
        assert.ok(w.includes(`"${a}"`), `writer lacks ${a}`);
      }
      assert.ok(w.includes('/db1/*'));
      for (const p of [w, policyOf('Reader'), policyOf('Checker')]) {
        assert.equal(/s3:Delete|s3:\*|s3:PutLifecycle|s3:PutBucket/.test(p), false, p);
      }
      assert.equal(policyOf('Reader').includes('s3:Put'), false);
      assert.ok(policyOf('Checker').includes('/db1/*/manifest.json'));
      t.hasResourceProperties('AWS::IAM::Policy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Action: 's3:ListBucket', Condition: { StringLike: { 's3:prefix': ['db1', 'db1/*'] } } }),
          ]),
        },
        Roles: [{ Ref: Match.stringLikeRegexp('^Reader') }],
      });
    },
  );

  test('fromAttributes: an existing bucket and key; grants cover the key too', () => {
    const stack = newStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'Existing', 'platform-backups');
    const key = kms.Key.fromKeyArn(
      stack,
      'ExistingKey',
      'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
    );
    const vault = BackupVault.fromAttributes(stack, 'Vault', { bucket, key });
    assert.equal(vault.eventBridgeEnabled, false);
    assert.equal(stack.resolve(vault.storageUrl('orders')), 's3://platform-backups/orders');
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    vault.grantBackup(role, 'orders');
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::S3::Bucket', 0);
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::platform-backups/orders/*']] },
          }),
          Match.objectLike({ Resource: 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555' }),
        ]),
      },
    });
  });

  test('rejects a prefix S3 keys cannot carry', () => {
    const stack = newStack();
    const vault = new BackupVault(stack, 'Vault');
    assert.throws(() => vault.storageUrl(''), /the storage prefix is empty; give each database its own prefix/);
    assert.throws(() => vault.storageUrl('/orders/'), /prefix '\/orders\/' is not a valid storage prefix/);
  });

  test('snapshot: default vault', () => {
    const stack = newStack();
    new BackupVault(stack, 'Vault');
    expect(normalizedTemplate(Template.fromStack(stack))).toMatchSnapshot();
  });
});
