// Event parsing and the EMF document shape (no servers).
import assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { METRIC_DIMENSION, METRICS } from '../../lib/core/metrics';
import { emfLine, MetricUnit, metricNamespace } from '../../lambda/verify/emf';
import { decodeEventKey, tasksOf } from '../../lambda/verify/events';
import { deadlineSignal, verifierSettings } from '../../lambda/verify/handle';
import { backupFolder } from '../../lambda/verify/verify';

describe('tasksOf', () => {
  test('EventBridge Object Created for a manifest → verify', () => {
    const t = tasksOf({
      source: 'aws.s3',
      'detail-type': 'Object Created',
      detail: { bucket: { name: 'b' }, object: { key: 'p/20261120T030000Z-x/manifest.json' } },
    });
    assert.deepEqual(t, [
      { kind: 'verify', bucket: 'b', key: 'p/20261120T030000Z-x/manifest.json', keyIsEncoded: false },
    ]);
  });

  test('other keys and other detail types → ignore', () => {
    assert.equal(
      tasksOf({ source: 'aws.s3', detail: { bucket: { name: 'b' }, object: { key: 'p/x/database.dump' } } })[0].kind,
      'ignore',
    );
    assert.equal(
      tasksOf({ source: 'aws.s3', detail: { bucket: { name: 'b' }, object: { key: 'p/x/not-manifest.json' } } })[0]
        .kind,
      'ignore',
    );
    assert.equal(
      tasksOf({
        source: 'aws.s3',
        'detail-type': 'Object Deleted',
        detail: { bucket: { name: 'b' }, object: { key: 'p/x/manifest.json' } },
      })[0].kind,
      'ignore',
    );
  });

  test('S3 notification Records are decoded', () => {
    const t = tasksOf({
      Records: [
        {
          eventName: 'ObjectCreated:CompleteMultipartUpload',
          s3: { bucket: { name: 'b' }, object: { key: 'my+team/db%3D1/x/manifest.json' } },
        },
      ],
    });
    assert.deepEqual(t, [{ kind: 'verify', bucket: 'b', key: 'my team/db=1/x/manifest.json', keyIsEncoded: true }]);
    assert.equal(decodeEventKey('a%2Bb+c'), 'a+b c');
  });

  test('freshness events are checked field by field', () => {
    assert.deepEqual(tasksOf({ action: 'freshness', bucket: 'b', prefix: '', databaseId: 'd' }), [
      { kind: 'freshness', event: { action: 'freshness', bucket: 'b', prefix: '', databaseId: 'd' } },
    ]);
    assert.throws(() => tasksOf({ action: 'freshness', bucket: 'b', prefix: 'p' }), {
      name: 'EventError',
      message: /databaseId/,
    });
    assert.throws(() => tasksOf({ action: 'freshness', bucket: '', prefix: 'p', databaseId: 'd' }), {
      name: 'EventError',
    });
  });

  test('anything else is an EventError', () => {
    assert.throws(() => tasksOf(null), { name: 'EventError' });
    assert.throws(() => tasksOf({ source: 'aws.ec2' }), { name: 'EventError', message: /unknown event/ });
    assert.throws(() => tasksOf({ source: 'aws.s3', detail: {} }), { name: 'EventError' });
  });
});

describe('emfLine', () => {
  test('declares the namespace, the DatabaseId dimension and each metric with its unit', () => {
    const line = emfLine(
      'DbBackup',
      'orders',
      [{ name: METRICS.BACKUP_AGE, value: 42.5, unit: MetricUnit.SECONDS }],
      { BackupId: 'x', [METRIC_DIMENSION]: 'clobbered?', [METRICS.BACKUP_AGE]: 'clobbered?', Skipped: undefined },
      new Date(Date.UTC(2026, 10, 20)),
    );
    const doc = JSON.parse(line);
    assert.deepEqual(doc._aws, {
      Timestamp: Date.UTC(2026, 10, 20),
      CloudWatchMetrics: [
        {
          Namespace: 'DbBackup',
          Dimensions: [['DatabaseId']],
          Metrics: [{ Name: 'BackupAgeSeconds', Unit: 'Seconds' }],
        },
      ],
    });
    assert.equal(doc.DatabaseId, 'orders');
    assert.equal(doc.BackupAgeSeconds, 42.5);
    assert.equal(doc.BackupId, 'x');
    assert.equal('Skipped' in doc, false);
  });

  test('an oversized document keeps its metrics and drops the log-only properties', () => {
    const line = emfLine(
      'N',
      'd',
      [{ name: 'M', value: 1, unit: MetricUnit.COUNT }],
      { Big: 'x'.repeat(300 * 1024) },
      new Date(),
    );
    const doc = JSON.parse(line);
    assert.equal(doc.M, 1);
    assert.equal(doc.PropertiesDropped, true);
    assert.ok(line.length < 10_000);
  });

  test('settings come from VERIFIER_ENV', () => {
    assert.equal(metricNamespace({}), 'DbBackup');
    assert.deepEqual(
      verifierSettings({
        DBBACKUP_METRIC_NAMESPACE: 'Ns',
        DBBACKUP_ALARM_TOPIC_ARN: 'arn:aws:sns:us-east-1:1:t',
        DBBACKUP_DATABASE_ID: 'd',
        DBBACKUP_REQUIRE_ENCRYPTION: 'kms',
      }),
      {
        namespace: 'Ns',
        topicArn: 'arn:aws:sns:us-east-1:1:t',
        fallbackDatabaseId: 'd',
        requireEncryption: 'kms',
      },
    );
    assert.deepEqual(verifierSettings({ DBBACKUP_ALARM_TOPIC_ARN: ' ' }), {
      namespace: 'DbBackup',
      topicArn: undefined,
      fallbackDatabaseId: undefined,
      requireEncryption: undefined,
    });
  });
});

describe('helpers', () => {
  test('backupFolder', () => {
    assert.deepEqual(backupFolder('a/b/20261120T030000Z-x/manifest.json'), {
      folder: 'a/b/20261120T030000Z-x/',
      folderName: '20261120T030000Z-x',
    });
    assert.throws(() => backupFolder('a/b/x/other.json'));
  });

  test('deadlineSignal leaves a reserve before the deadline', async () => {
    assert.equal(deadlineSignal(undefined), undefined);
    const s = deadlineSignal({ getRemainingTimeInMillis: () => 2_500 })!;
    assert.equal(s.aborted, false);
    await new Promise((r) => setTimeout(r, 1_100));
    assert.equal(s.aborted, true, 'with 2.5 s left and a 2 s reserve it fires at the 1 s floor');
  });
});
