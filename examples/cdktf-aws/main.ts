/**
 * The AWS example: nightly PostgreSQL backups with GFS retention, in Terraform.
 *
 *   npm run synth:tf                       # writes cdktf.out/cdktf-aws/stacks/db-backup-aws/cdk.tf.json
 *   cd cdktf.out/cdktf-aws/stacks/db-backup-aws && terraform init && terraform apply \
 *     -var vpc_id=vpc-… -var 'private_subnet_ids=["subnet-…","subnet-…"]' -var database_host=orders.…rds.amazonaws.com
 *
 * Before the first scheduled run: push the runner image to the repository (the README (CDK for Terraform)) and
 * put the database password into the secret.
 */
import { App, TerraformOutput, TerraformStack, TerraformVariable } from 'cdktf';
import { Construct } from 'constructs';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { EcrRepository } from '@cdktf/provider-aws/lib/ecr-repository';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret';
import { BackupSchedule, BackupType, Retention } from '../../lib/cdktf/aws';
import * as aws from '../../lib/cdktf/aws';

export class AwsBackupStack extends TerraformStack {
  public readonly backup: aws.DatabaseBackup;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    new AwsProvider(this, 'aws', {
      region: 'eu-west-1',
      defaultTags: [{ tags: { project: 'db-backup', managedBy: 'cdktf' } }],
    });

    const vpcId = new TerraformVariable(this, 'vpc_id', { type: 'string', description: 'The VPC the database is in' });
    const subnets = new TerraformVariable(this, 'private_subnet_ids', {
      type: 'list(string)',
      description: 'Private subnets with NAT or VPC endpoints',
    });
    const host = new TerraformVariable(this, 'database_host', {
      type: 'string',
      description: 'The database host name',
    });

    // The runner image lives here; build and push it from dist/runner (the README (CDK for Terraform)).
    const repository = new EcrRepository(this, 'RunnerRepository', {
      name: 'dbbackup-runner',
      imageTagMutability: 'IMMUTABLE',
      imageScanningConfiguration: { scanOnPush: true },
      encryptionConfiguration: [{ encryptionType: 'KMS' }],
    });
    // The password is put into the secret out of band (console, CLI or a rotation), never in Terraform.
    const password = new SecretsmanagerSecret(this, 'OrdersBackupPassword', {
      name: 'dbbackup/orders/source-password',
      description: 'Password of the backup user of the orders database',
    });

    this.backup = new aws.DatabaseBackup(this, 'Orders', {
      databaseId: 'orders',
      source: aws.BackupSource.postgres({
        url: `postgres://backup@${host.stringValue}:5432/orders`,
        passwordSecret: password,
      }),
      image: aws.RunnerImage.fromEcrRepository(repository, '0.1.0'),
      network: { vpcId: vpcId.stringValue, subnetIds: subnets.listValue },
      // The same shape as the AWS CDK flavour: one entry per schedule, each with its backup type.
      schedules: [{ type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: '3', minute: '0' }) }],
      retention: Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }),
      alarmEmails: ['oncall@example.com'],
    });

    new TerraformOutput(this, 'bucket', { value: this.backup.vault.bucketName });
    new TerraformOutput(this, 'storage_url', { value: this.backup.task.storageUrl });
    new TerraformOutput(this, 'alarm_topic', { value: this.backup.monitoring.topicArn });
  }
}

export function buildApp(app: App = new App()): App {
  new AwsBackupStack(app, 'db-backup-aws');
  return app;
}

if (require.main === module) buildApp().synth();
