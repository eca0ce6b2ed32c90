/**
 * The AWS example, in Terraform: nightly PostgreSQL backups with GFS retention (orders), and a
 * MariaDB database (billing) with nightly backups and point-in-time recovery: its binary log
 * shipped continuously by a one-task ECS service, restorable to any moment of the last 3 days.
 *
 *   npm run synth:tf                       # writes cdktf.out/cdktf-aws/stacks/db-backup-aws/cdk.tf.json
 *   cd cdktf.out/cdktf-aws/stacks/db-backup-aws && terraform init && terraform apply \
 *     -var vpc_id=vpc-… -var 'private_subnet_ids=["subnet-…","subnet-…"]' \
 *     -var database_host=orders.…rds.amazonaws.com \
 *     -var billing_database_host=billing.db.internal
 *
 * Before the first scheduled run: push the runner image to the repository (the README (CDK for Terraform)) and
 * put the database passwords into the secrets. The MariaDB server needs binary logging in ROW format
 * (docs/pitr.md).
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
  /** The MariaDB database with point-in-time recovery. */
  public readonly billing: aws.DatabaseBackup;

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
    const billingHost = new TerraformVariable(this, 'billing_database_host', {
      type: 'string',
      description: 'The host name of the MariaDB billing database',
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
        // The host is a variable, so it is taken as self-managed: on RDS or Aurora, say so
        // (`managed: true`), and what RDS cannot do (physical backups, incrementals) is refused at synth.
      }),
      image: aws.RunnerImage.fromEcrRepository(repository, '0.1.0'),
      network: { vpcId: vpcId.stringValue, subnetIds: subnets.listValue },
      // The same shape as the AWS CDK flavour: one entry per schedule, each with its backup type.
      schedules: [{ type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: '3', minute: '0' }) }],
      retention: Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }),
      alarmEmails: ['oncall@example.com'],
    });

    // MariaDB with point-in-time recovery: the same construct and props as the AWS CDK flavour's.
    // Its database id is the database name (billing), as in the CDK flavour.
    const billingPassword = new SecretsmanagerSecret(this, 'BillingBackupPassword', {
      name: 'dbbackup/billing/source-password',
      description: 'Password of the backup user of the billing database',
    });
    this.billing = new aws.DatabaseBackup(this, 'Billing', {
      source: aws.BackupSource.mariadb({
        url: `mariadb://backup@${billingHost.stringValue}:3306/billing`,
        passwordSecret: billingPassword,
        engineVersion: '10.11',
      }),
      image: aws.RunnerImage.fromEcrRepository(repository, '0.1.0'),
      network: { vpcId: vpcId.stringValue, subnetIds: subnets.listValue },
      schedules: [{ type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: '1', minute: '30' }) }],
      retention: Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }),
      pointInTimeRecovery: aws.PointInTimeRecovery.enabled({ window: aws.Duration.days(3) }),
      alarmEmails: ['oncall@example.com'],
    });

    new TerraformOutput(this, 'bucket', { value: this.backup.vault.bucketName });
    new TerraformOutput(this, 'storage_url', { value: this.backup.task.storageUrl });
    new TerraformOutput(this, 'alarm_topic', { value: this.backup.monitoring.topicArn });
    new TerraformOutput(this, 'billing_storage_url', { value: this.billing.task.storageUrl });
  }
}

export function buildApp(app: App = new App()): App {
  new AwsBackupStack(app, 'db-backup-aws');
  return app;
}

if (require.main === module) buildApp().synth();
