import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Template } from 'aws-cdk-lib/assertions';
import { DatabaseBackup } from '../../lib';
import { newStack, newVpc, postgresSource } from './helpers';

describe('alarms on what runs the backups (outside a fleet)', () => {
  const stack = newStack();
  const backup = new DatabaseBackup(stack, 'Orders', {
    databaseId: 'orders',
    vpc: newVpc(stack),
    source: postgresSource(stack),
  });
  const t = Template.fromStack(stack);
  const alarms = t.findResources('AWS::CloudWatch::Alarm');
  const byMetric = (name: string) => Object.values(alarms).filter((a) => a.Properties.MetricName === name);

  test(
    "a message in the schedules' dead-letter queue (a schedule " + 'that could not start its task) alarms to the topic',
    () => {
      const queueAlarms = byMetric('ApproximateNumberOfMessagesVisible');
      const queueNames = queueAlarms.map((a) => JSON.stringify(a.Properties.Dimensions));
      const scheduleQueue = JSON.stringify(stack.resolve(backup.scheduleDeadLetterQueue.queueName));
      assert.ok(
        queueNames.some((d) => d.includes(scheduleQueue)),
        `no alarm on the schedules' queue: ${queueNames.join(' ')}`,
      );
      const verifierQueue = JSON.stringify(stack.resolve(backup.verifier.deadLetterQueue.queueName));
      assert.ok(
        queueNames.some((d) => d.includes(verifierQueue)),
        "no alarm on the verifier's queue",
      );
      for (const a of queueAlarms) {
        assert.equal(a.Properties.Threshold, 1);
        assert.equal(a.Properties.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
        assert.equal(
          JSON.stringify(a.Properties.AlarmActions),
          JSON.stringify([stack.resolve(backup.alarmTopic.topicArn)]),
        );
      }
    },
  );

  test('verifier errors and throttles alarm', () => {
    const fn = JSON.stringify(stack.resolve(backup.verifyFunction.functionName));
    for (const metric of ['Errors', 'Throttles']) {
      const found = byMetric(metric).filter((a) => a.Properties.Namespace === 'AWS/Lambda');
      assert.equal(found.length, 1, `${metric}: ${found.length} alarms`);
      assert.ok(JSON.stringify(found[0].Properties.Dimensions).includes(fn));
    }
  });

  test('the dashboard shows them: the alarm status widget and the dead-letter and verifier graphs', () => {
    const body = JSON.stringify(
      stack.resolve(Object.values(t.findResources('AWS::CloudWatch::Dashboard'))[0].Properties.DashboardBody),
    );
    assert.ok(body.includes('Dead letters (runs not started, checks lost)'));
    assert.ok(body.includes('Verifier errors and throttles'));
    assert.equal(backup.alarms.length, 10);
  });
});
