// The maxReplicaLag prop of the CDKTF backup task (AWS) and job (Google) reaches the runner as
// --max-replica-lag, and the runner's parser reads it back to the same seconds; a MongoDB source,
// whose runner refuses the option (it measures no lag), is refused at synth.
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import * as aws from '../../lib/cdktf/aws';
import * as google from '../../lib/cdktf/google';
import { BackupConfig, parseInvocation } from '../../runner/src/config';
import { synthAws, synthGoogle } from './helpers';

// The task's key is a token: a plain kms: value stands in for it (AWS tasks require kms:).
const local = {
  DBBACKUP_TO: 'file:///tmp/x',
  DBBACKUP_ENCRYPT: 'kms:arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000',
};

describe('CDKTF maxReplicaLag', () => {
  test('AWS: the backup task renders DBBACKUP_MAX_REPLICA_LAG; without the prop it sets none', () => {
    const tasks: aws.BackupRunnerTask[] = [];
    synthAws((stack) => {
      const vault = new aws.BackupVault(stack, 'Vault');
      for (const [id, maxReplicaLag] of [
        ['Lagged', aws.Duration.minutes(2)],
        ['Plain', undefined],
      ] as const)
        tasks.push(
          new aws.BackupRunnerTask(stack, id, {
            databaseId: id.toLowerCase(),
            source: aws.BackupSource.postgres({
              url: 'postgres://backup@replica.internal:5432/orders',
              passwordSecret: { arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw' },
            }),
            vault,
            image: aws.RunnerImage.fromImageUri('123456789012.dkr.ecr.eu-west-1.amazonaws.com/dbbackup:0.1.0'),
            network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'] },
            maxReplicaLag,
          }),
        );
    });
    assert.equal(tasks[0].environment.DBBACKUP_MAX_REPLICA_LAG, '120s');
    const parsed = parseInvocation(['backup'], { ...tasks[0].environment, ...local }) as BackupConfig;
    assert.equal(parsed.maxReplicaLagSeconds, 120);
    assert.equal(tasks[1].environment.DBBACKUP_MAX_REPLICA_LAG, undefined);
  });

  test('AWS: a MongoDB source with maxReplicaLag is refused at synth, naming the option and the engine', () => {
    assert.throws(
      () =>
        synthAws((stack) => {
          new aws.BackupRunnerTask(stack, 'Mongo', {
            databaseId: 'events',
            source: aws.BackupSource.mongodb({
              url: 'mongodb://backup@replica.internal:27017/events',
              passwordSecret: { arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw' },
            }),
            vault: new aws.BackupVault(stack, 'Vault'),
            image: aws.RunnerImage.fromImageUri('123456789012.dkr.ecr.eu-west-1.amazonaws.com/dbbackup:0.1.0'),
            network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'] },
            maxReplicaLag: aws.Duration.minutes(2),
          });
        }),
      new RegExp(
        "--max-replica-lag \\(DBBACKUP_MAX_REPLICA_LAG\\) is '120s', but it applies to postgres and mysql " +
          'sources only, not to this mongodb source',
      ),
    );
  });

  test('Google: the backup job renders DBBACKUP_MAX_REPLICA_LAG', () => {
    let job: google.RunnerJob | undefined;
    synthGoogle((stack) => {
      job = new google.RunnerJob(stack, 'Orders', {
        databaseId: 'orders',
        project: 'acme-prod',
        region: 'europe-west1',
        vault: new google.BackupVault(stack, 'Vault', { bucketName: 'acme-backups', location: 'EU' }),
        source: google.BackupSource.postgres({
          url: 'postgres://backup@10.0.0.5:5432/orders',
          passwordSecret: { id: 'projects/acme-prod/secrets/pw' },
        }),
        image: google.RunnerImage.fromImageUri('europe-west1-docker.pkg.dev/acme-prod/dbbackup/dbbackup:1.2.3'),
        maxReplicaLag: google.Duration.seconds(45),
        deletionProtection: false,
      });
    });
    assert.equal(job!.environment.DBBACKUP_MAX_REPLICA_LAG, '45s');
    const parsed = parseInvocation(['backup'], { ...job!.environment, ...local }) as BackupConfig;
    assert.equal(parsed.maxReplicaLagSeconds, 45);
  });
});
