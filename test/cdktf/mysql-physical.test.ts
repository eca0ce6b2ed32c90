// The physical method on the CDKTF AWS flavour: a self-managed MariaDB/MySQL source's task runs
// the runner with --method physical (parsed by the runner itself), an RDS endpoint is refused at
// synth with the same rule (lib/core checkBackupMethod) and message as the AWS CDK flavour's.
import * as assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
import { BackupSchedule } from '../../lib/cdktf/aws';
import * as aws from '../../lib/cdktf/aws';
import { BackupMethod } from '../../lib/core';
import { parseInvocation } from '../../runner/src/config';
import { envMap, synthAws } from './helpers';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:dbbackup/shop-AbCdEf';
const KEY_ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const REPO = {
  arn: 'arn:aws:ecr:eu-west-1:111122223333:repository/dbbackup',
  repositoryUrl: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/dbbackup',
};

describe('CDKTF method physical for MySQL/MariaDB', () => {
  it('a self-managed MariaDB task runs --method physical', () => {
    const s = synthAws((stack) => {
      const vault = aws.BackupVault.fromExisting(stack, 'Vault', {
        bucket: { bucket: 'acme-backups', arn: 'arn:aws:s3:::acme-backups' },
        key: { arn: KEY_ARN },
      });
      new aws.DatabaseBackup(stack, 'Shop', {
        databaseId: 'shop',
        source: aws.BackupSource.mysql({
          url: 'mysql://backup@db1.internal:3306/shop',
          passwordSecret: { arn: SECRET_ARN },
          method: BackupMethod.PHYSICAL,
        }),
        image: aws.RunnerImage.fromEcrRepository(REPO, '1.2.3'),
        network: { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0aaa1111'] },
        schedule: BackupSchedule.daily(2),
        vault,
        drill: { enabled: false },
      });
    });
    const defs = JSON.parse(s.one('aws_ecs_task_definition').container_definitions);
    const config = parseInvocation(defs[0].command, envMap(defs[0].environment)) as { method: string; engine: string };
    assert.equal(config.engine, 'mysql');
    assert.equal(config.method, 'physical');
  });

  it('an RDS endpoint is refused at synth, saying what to use instead', () => {
    assert.throws(
      () =>
        aws.BackupSource.mysql({
          url: 'mysql://backup@shop.abcdefghijkl.eu-west-1.rds.amazonaws.com:3306/shop',
          passwordSecret: { arn: SECRET_ARN },
          method: BackupMethod.PHYSICAL,
        }),
      /method 'physical' is set on a mysql source on RDS or Aurora: .* Leave method out/,
    );
    // The same source with the logical method is fine.
    assert.doesNotThrow(() =>
      aws.BackupSource.mysql({
        url: 'mysql://backup@shop.abcdefghijkl.eu-west-1.rds.amazonaws.com:3306/shop',
        passwordSecret: { arn: SECRET_ARN },
      }),
    );
  });
});
