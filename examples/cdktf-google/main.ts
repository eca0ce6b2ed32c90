/**
 * The Google Cloud example, in Terraform: nightly PostgreSQL backups with GFS retention (orders),
 * and a MariaDB database on Compute Engine (billing) with nightly backups and point-in-time
 * recovery: its binary log shipped continuously by one always-on Cloud Run worker pool instance.
 *
 *   npm run synth:tf                       # writes cdktf.out/cdktf-google/stacks/db-backup-google/cdk.tf.json
 *   cd cdktf.out/cdktf-google/stacks/db-backup-google && terraform init && terraform apply \
 *     -var project_id=my-project -var network=… -var subnetwork=… -var database_host=10.20.0.5 \
 *     -var billing_database_host=10.20.0.6
 *
 * Before the first scheduled run: push the runner image to the Artifact Registry repository
 * (the README (CDK for Terraform)) and add the database passwords as versions of the secrets.
 * The MariaDB server needs binary logging in ROW format (docs/pitr.md).
 */
import { App, TerraformOutput, TerraformStack, TerraformVariable } from 'cdktf';
import { Construct } from 'constructs';
import { GoogleProvider } from '@cdktf/provider-google/lib/provider';
import { ArtifactRegistryRepository } from '@cdktf/provider-google/lib/artifact-registry-repository';
import { ProjectService } from '@cdktf/provider-google/lib/project-service';
import { SecretManagerSecret } from '@cdktf/provider-google/lib/secret-manager-secret';
import { BackupSchedule, BackupType, Retention } from '../../lib/cdktf/google';
import * as google from '../../lib/cdktf/google';

const REGION = 'europe-west1';

/** The APIs the backup system uses. */
const SERVICES = [
  'run.googleapis.com',
  'cloudscheduler.googleapis.com',
  'workflows.googleapis.com',
  'workflowexecutions.googleapis.com',
  'eventarc.googleapis.com',
  'pubsub.googleapis.com',
  'secretmanager.googleapis.com',
  'cloudkms.googleapis.com',
  'monitoring.googleapis.com',
  'artifactregistry.googleapis.com',
];

export class GoogleBackupStack extends TerraformStack {
  public readonly backup: google.DatabaseBackup;
  /** The MariaDB database with point-in-time recovery. */
  public readonly billing: google.DatabaseBackup;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const project = new TerraformVariable(this, 'project_id', {
      type: 'string',
      description: 'The Google Cloud project',
    });
    const network = new TerraformVariable(this, 'network', {
      type: 'string',
      description: 'The VPC network the database is reachable in',
    });
    const subnetwork = new TerraformVariable(this, 'subnetwork', {
      type: 'string',
      description: `A subnetwork in ${REGION} for the job's IPs`,
    });
    const host = new TerraformVariable(this, 'database_host', {
      type: 'string',
      description: 'The database host (private IP or name)',
    });
    const billingHost = new TerraformVariable(this, 'billing_database_host', {
      type: 'string',
      description: 'The host of the MariaDB billing database (private IP or name)',
    });
    new GoogleProvider(this, 'google', { project: project.stringValue, region: REGION });

    const apis = SERVICES.map(
      (service) => new ProjectService(this, `Api-${service.split('.')[0]}`, { service, disableOnDestroy: false }),
    );

    // The runner image lives here; build and push it from dist/runner (the README (CDK for Terraform)).
    const repository = new ArtifactRegistryRepository(this, 'RunnerRepository', {
      repositoryId: 'dbbackup',
      location: REGION,
      format: 'DOCKER',
      description: 'The dbbackup runner image',
      dockerConfig: { immutableTags: true },
      dependsOn: apis,
    });
    // The password is added as a secret version out of band, never in Terraform.
    const password = new SecretManagerSecret(this, 'OrdersBackupPassword', {
      secretId: 'dbbackup-orders-source-password',
      replication: { auto: {} },
      dependsOn: apis,
    });

    this.backup = new google.DatabaseBackup(this, 'Orders', {
      databaseId: 'orders',
      project: project.stringValue,
      region: REGION,
      source: google.BackupSource.postgres({
        url: `postgres://backup@${host.stringValue}:5432/orders`,
        passwordSecret: password,
      }),
      image: google.RunnerImage.fromArtifactRegistry(repository, 'dbbackup', '0.1.0'),
      vpcEgress: google.VpcEgress.directVpc({ network: network.stringValue, subnetwork: subnetwork.stringValue }),
      // The same shape as the AWS CDK flavour: one entry per schedule, each with its backup type.
      schedules: [{ type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: '3', minute: '0' }) }],
      retention: Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }),
      alarmEmails: ['oncall@example.com'],
    });

    // MariaDB with point-in-time recovery: the same construct and props as the AWS flavours'.
    // Its database id is the database name (billing).
    const billingPassword = new SecretManagerSecret(this, 'BillingBackupPassword', {
      secretId: 'dbbackup-billing-source-password',
      replication: { auto: {} },
      dependsOn: apis,
    });
    this.billing = new google.DatabaseBackup(this, 'Billing', {
      project: project.stringValue,
      region: REGION,
      source: google.BackupSource.mariadb({
        url: `mariadb://backup@${billingHost.stringValue}:3306/billing`,
        passwordSecret: billingPassword,
        engineVersion: '10.11',
      }),
      image: google.RunnerImage.fromArtifactRegistry(repository, 'dbbackup', '0.1.0'),
      vpcEgress: google.VpcEgress.directVpc({ network: network.stringValue, subnetwork: subnetwork.stringValue }),
      schedules: [{ type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: '1', minute: '30' }) }],
      retention: Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }),
      pointInTimeRecovery: google.PointInTimeRecovery.enabled({ window: google.Duration.days(3) }),
      alarmEmails: ['oncall@example.com'],
    });

    new TerraformOutput(this, 'bucket', { value: this.backup.vault.bucketName });
    new TerraformOutput(this, 'storage_url', { value: this.backup.job.storageUrl });
    new TerraformOutput(this, 'billing_storage_url', { value: this.billing.job.storageUrl });
    new TerraformOutput(this, 'image', {
      value: google.RunnerImage.fromArtifactRegistry(repository, 'dbbackup', '0.1.0').imageUri,
    });
  }
}

export function buildApp(app: App = new App()): App {
  new GoogleBackupStack(app, 'db-backup-google');
  return app;
}

if (require.main === module) buildApp().synth();
