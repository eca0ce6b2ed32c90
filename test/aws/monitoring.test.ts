import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AlarmTopic, BackupMonitoring, BackupVault, BackupVerifier } from '../../lib';
import { METRIC_NAMESPACE, VERIFIER_ENV } from '../../lib/core';
import { newStack, resourcesOf } from './helpers';

function monitoringStack(rto?: Duration) {
  const stack = newStack();
  const topic = new AlarmTopic(stack, 'Alarms', { email: 'ops@example.com' });
  const td = new ecs.FargateTaskDefinition(stack, 'Task', { family: 'orders-full-backup' });
  td.addContainer('runner', { image: ecs.ContainerImage.fromRegistry('x') });
  new BackupMonitoring(stack, 'Monitoring', {
    databaseId: 'orders',
    alarmTopic: topic.topic,
    rpo: Duration.hours(26),
    rto,
    taskDefinitions: [td],
  });
  return { stack, t: Template.fromStack(stack) };
}

function alarm(t: Template, id: string): any {
  const found = resourcesOf(t, 'AWS::CloudWatch::Alarm').find(([logicalId]) => logicalId.startsWith(`Monitoring${id}`));
  assert.ok(found, `no alarm ${id}`);
  return found[1].Properties;
}

describe('BackupMonitoring', () => {
  test("stale: BackupAgeSeconds above the RPO, missing data breaching (the dead-man's switch)", () => {
    const { t } = monitoringStack();
    const a = alarm(t, 'Stale');
    assert.equal(a.Namespace, METRIC_NAMESPACE);
    assert.equal(a.MetricName, 'BackupAgeSeconds');
    assert.deepEqual(a.Dimensions, [{ Name: 'DatabaseId', Value: 'orders' }]);
    assert.equal(a.Statistic, 'Maximum');
    assert.equal(a.Threshold, 26 * 3600);
    assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(a.TreatMissingData, 'breaching');
    assert.equal(a.Period, 900);
    assert.equal(a.EvaluationPeriods, 2);
  });

  test('backup failed and verification failed: any failure in five minutes, quiet days are fine', () => {
    const { t } = monitoringStack();
    for (const [id, metric] of [
      ['BackupFailed', 'BackupFailed'],
      ['VerificationFailed', 'VerificationFailed'],
    ]) {
      const a = alarm(t, id);
      assert.equal(a.MetricName, metric);
      assert.equal(a.Statistic, 'Sum');
      assert.equal(a.Threshold, 1);
      assert.equal(a.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
      assert.equal(a.TreatMissingData, 'notBreaching');
      assert.equal(a.Period, 300);
    }
  });

  test(
    'task failed: an EventBridge rule on stopped tasks of our ' +
      'definitions with a non-zero exit, to the topic and an alarm',
    () => {
      const { t } = monitoringStack();
      t.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          source: ['aws.ecs'],
          'detail-type': ['ECS Task State Change'],
          detail: {
            lastStatus: ['STOPPED'],
            taskDefinitionArn: [{ wildcard: '*:task-definition/orders-full-backup:*' }],
            $or: [
              { containers: { name: ['runner'], exitCode: [{ 'anything-but': 0 }] } },
              { stopCode: ['TaskFailedToStart'] },
            ],
          },
        },
        Targets: [
          Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('^Alarms') }, InputTransformer: Match.anyValue() }),
        ],
      });
      const a = alarm(t, 'TaskFailed');
      assert.equal(a.Namespace, 'AWS/Events');
      assert.equal(a.MetricName, 'TriggeredRules');
      assert.equal(a.Threshold, 1);
      assert.equal(a.TreatMissingData, 'notBreaching');
    },
  );

  test('drill alarms only with an RTO: failed, and slower than the RTO', () => {
    assert.equal(resourcesOf(monitoringStack().t, 'AWS::CloudWatch::Alarm').length, 4);
    const { t } = monitoringStack(Duration.minutes(90));
    const failed = alarm(t, 'DrillFailed');
    assert.equal(failed.MetricName, 'DrillFailed');
    assert.equal(failed.TreatMissingData, 'notBreaching');
    const slow = alarm(t, 'DrillTooSlow');
    assert.equal(slow.MetricName, 'RestoreTimeSeconds');
    assert.equal(slow.Statistic, 'Maximum');
    assert.equal(slow.Threshold, 5400);
    assert.equal(slow.ComparisonOperator, 'GreaterThanThreshold');
  });

  test('every alarm notifies the topic when it fires and when it clears; there is a dashboard', () => {
    const { t } = monitoringStack(Duration.hours(1));
    for (const [, a] of resourcesOf(t, 'AWS::CloudWatch::Alarm')) {
      assert.deepEqual(a.Properties.AlarmActions, [{ Ref: a.Properties.AlarmActions[0].Ref }]);
      assert.match(a.Properties.AlarmActions[0].Ref, /^Alarms/);
      assert.deepEqual(a.Properties.OKActions, a.Properties.AlarmActions);
    }
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const body = JSON.stringify(resourcesOf(t, 'AWS::CloudWatch::Dashboard')[0][1].Properties.DashboardBody);
    for (const m of [
      'BackupAgeSeconds',
      'BackupSizeBytes',
      'BackupDurationSeconds',
      'VerificationFailed',
      'DrillSucceeded',
      'RestoreTimeSeconds',
    ]) {
      assert.ok(body.includes(m), `dashboard lacks ${m}`);
    }
  });

  test('the alarm topic is KMS-encrypted, TLS-only, publishable by CloudWatch, with an email subscription', () => {
    const { t } = monitoringStack();
    t.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlarmsKey'), 'Arn'] },
    });
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    const policy = JSON.stringify(resourcesOf(t, 'AWS::SNS::TopicPolicy')[0][1].Properties.PolicyDocument);
    assert.match(policy, /aws:SecureTransport/);
    assert.match(policy, /cloudwatch.amazonaws.com/);
    assert.match(policy, /events.amazonaws.com/);
    const key = JSON.stringify(resourcesOf(t, 'AWS::KMS::Key')[0][1].Properties.KeyPolicy);
    assert.match(key, /cloudwatch.amazonaws.com/);
    assert.match(key, /events.amazonaws.com/);
    assert.throws(
      () => new AlarmTopic(newStack(), 'T', { email: 'not-an-address' }),
      /alarm email 'not-an-address' is not an email address/,
    );
  });
});

describe('BackupVerifier', () => {
  function verifierStack() {
    const stack = newStack();
    const vault = new BackupVault(stack, 'Vault');
    const topic = new sns.Topic(stack, 'Topic');
    const verifier = new BackupVerifier(stack, 'Verifier', { vault, alarmTopic: topic });
    verifier.addDatabase({ databaseId: 'orders' });
    return { stack, verifier, t: Template.fromStack(stack) };
  }

  test("the pre-bundled function with the contract's environment", () => {
    const { t } = verifierStack();
    t.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Runtime: Match.stringLikeRegexp('^nodejs2[0-9]\\.x$'),
      Environment: {
        Variables: {
          [VERIFIER_ENV.ALARM_TOPIC_ARN]: { Ref: Match.stringLikeRegexp('^Topic') },
          [VERIFIER_ENV.METRIC_NAMESPACE]: METRIC_NAMESPACE,
        },
      },
      DeadLetterConfig: { TargetArn: Match.anyValue() },
    });
  });

  test("triggered by committed manifests under the database's prefix and by a freshness schedule", () => {
    const { t } = verifierStack();
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: {
          bucket: { name: [{ Ref: Match.stringLikeRegexp('^Vault') }] },
          object: { key: [{ wildcard: 'orders/*/manifest.json' }] },
        },
      },
    });
    const freshness = resourcesOf(t, 'AWS::Events::Rule').find(
      ([, r]) => r.Properties.ScheduleExpression !== undefined,
    )![1].Properties;
    assert.equal(freshness.ScheduleExpression, 'rate(15 minutes)');
    const input = JSON.parse(JSON.stringify(freshness.Targets[0].Input));
    assert.match(JSON.stringify(input), /\\"action\\":\\"freshness\\"/);
    assert.match(JSON.stringify(input), /\\"prefix\\":\\"orders\\",\\"databaseId\\":\\"orders\\"/);
  });

  test('can read backups, tag manifests and publish, nothing more', () => {
    const { t } = verifierStack();
    const doc = JSON.stringify(resourcesOf(t, 'AWS::IAM::Policy')[0][1].Properties.PolicyDocument);
    assert.match(doc, /"s3:PutObjectTagging".*"\/orders\/\*\/manifest.json"/);
    assert.match(doc, /sns:Publish/);
    assert.equal(/s3:PutObject"|s3:Delete|kms:Encrypt/.test(doc), false, doc);
  });

  test('a database is watched once', () => {
    const { verifier } = verifierStack();
    assert.throws(() => verifier.addDatabase({ databaseId: 'orders' }), /already watches database 'orders'/);
  });
});
