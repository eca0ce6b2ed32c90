import { ITerraformDependable, Token } from 'cdktf';
import { Construct } from 'constructs';
import { CloudRunV2WorkerPool } from '@cdktf/provider-google/lib/cloud-run-v2-worker-pool';
import { LoggingMetric } from '@cdktf/provider-google/lib/logging-metric';
import { MonitoringAlertPolicy } from '@cdktf/provider-google/lib/monitoring-alert-policy';
import { ProjectIamMember } from '@cdktf/provider-google/lib/project-iam-member';
import { SecretManagerSecretIamMember } from '@cdktf/provider-google/lib/secret-manager-secret-iam-member';
import { ServiceAccount } from '@cdktf/provider-google/lib/service-account';
import { StorageBucketIamMember } from '@cdktf/provider-google/lib/storage-bucket-iam-member';
import {
  Compression,
  ConfigError,
  RUNNER_CONTAINER,
  SECRET_ENV,
  validateCloudRunSize,
  validateDatabaseId,
  vaultStorageUrl,
} from '../../core';
import { DEFAULT_COMPRESSION } from '../../core/codecs';
import { logStreamingFor } from '../../core/pitr';
import { BackupEncryption } from '../common/encryption';
import { PointInTimeRecovery } from '../common/pitr';
import { shipperEnvironment } from '../common/shipper-env';
import { RunnerImage } from './image';
import { VpcEgress } from './network';
import { resourceName, serviceAccountId } from './private/names';
import { RUNNER_BUCKET_ROLES } from './runner-job';
import { BackupSource } from './source';
import { IBackupVault } from './vault';

/** Properties of a Google `LogShipper`. */
export interface LogShipperProps {
  readonly databaseId: string;
  readonly project: string;
  readonly region: string;
  /** MySQL/MariaDB (binary logs), or a self-managed PostgreSQL server that allows replication connections (WAL). */
  readonly source: BackupSource;
  readonly vault: IBackupVault;
  readonly image: RunnerImage;
  /** Where the lag alert goes (notification channel ids). */
  readonly notificationChannels: string[];
  /** @default - no VPC access */
  readonly vpcEgress?: VpcEgress;
  /** @default - none */
  readonly cloudSqlInstances?: string[];
  /** @default - the databaseId */
  readonly prefix?: string;
  /** @default BackupEncryption.none() (CMEK at rest) */
  readonly encryption?: BackupEncryption;
  /** @default Compression.ZSTD */
  readonly compression?: Compression;
  /** @default PointInTimeRecovery.enabled() */
  readonly pointInTimeRecovery?: PointInTimeRecovery;
  /** @default true */
  readonly deletionProtection?: boolean;
  /** @default - none */
  readonly labels?: Record<string, string>;
}

/**
 * A database's log shipper on Google Cloud: one always-on Cloud Run worker pool instance
 * (manual scaling, 1 instance) that runs `dbbackup binlog-stream` (MySQL/MariaDB) or
 * `dbbackup wal-receive` (PostgreSQL). A worker pool, not a service: the shipper serves no HTTP
 * port for a service's startup probe, and a worker pool's CPU is never throttled. Its lag
 * (the runner's JSON metric line) becomes a log-based metric, alerted on when it is above the
 * threshold or absent.
 */
export class LogShipper extends Construct {
  public readonly workerPool: CloudRunV2WorkerPool;
  public readonly serviceAccount: ServiceAccount;
  /** The log-based metric of the shipper's lag (seconds). */
  public readonly lagMetric: LoggingMetric;
  /** The lag alert: behind by more than the threshold, or silent. */
  public readonly lagAlert: MonitoringAlertPolicy;
  /** The runner command the shipper runs (`binlog-stream` or `wal-receive`). */
  public readonly command: string;
  /** The metric the shipper publishes its lag as. */
  public readonly lagMetricName: string;
  /** The log archive folder under the prefix (`binlog` or `wal`). */
  public readonly folder: string;
  /** The container's plain environment (the contract). */
  public readonly environment: Record<string, string>;

  constructor(scope: Construct, id: string, props: LogShipperProps) {
    super(scope, id);
    const streaming = logStreamingFor(props.source.engine, props.source.managed, 'Cloud SQL');
    const command = streaming.command;
    this.command = command;
    this.lagMetricName = streaming.lagMetric;
    this.folder = streaming.folder;
    if (!Token.isUnresolved(props.databaseId)) validateDatabaseId(props.databaseId);
    const pitr = props.pointInTimeRecovery ?? PointInTimeRecovery.enabled();
    const cpu = String(pitr.cpu ?? 1);
    validateCloudRunSize(cpu, pitr.memoryLimitMiB);
    const prefix = props.prefix ?? props.databaseId;
    const encryption = props.encryption ?? BackupEncryption.none();
    if (encryption.isKms) {
      throw new ConfigError(
        `encryption '${encryption.value}' uses AWS KMS, which a Cloud Run worker pool has no identity ` +
          `for; use BackupEncryption.age(recipient) or BackupEncryption.none() (the bucket is CMEK-encrypted).`,
      );
    }
    const common = {
      source: props.source.url,
      to: vaultStorageUrl('gs', props.vault.bucketName, prefix),
      compression: props.compression ?? DEFAULT_COMPRESSION,
      encrypt: encryption.value,
    };
    this.environment = shipperEnvironment(command, props.source.engine, common, pitr, props.databaseId);
    const interval = pitr.intervalFor(props.source.engine).toSeconds();

    this.serviceAccount = new ServiceAccount(this, 'ServiceAccount', {
      accountId: serviceAccountId(props.databaseId, 'ship'),
      displayName: `dbbackup log shipper of ${props.databaseId}`,
      description: 'Writes log archive objects; cannot delete or overwrite them',
      project: props.project,
    });
    RUNNER_BUCKET_ROLES.forEach((role) => {
      new StorageBucketIamMember(this, role === 'roles/storage.objectCreator' ? 'CreatesObjects' : 'ReadsObjects', {
        bucket: props.vault.bucketName,
        role,
        member: this.serviceAccount.member,
      });
    });
    const dependsOn: ITerraformDependable[] = [
      new SecretManagerSecretIamMember(this, 'ReadsPassword', {
        secretId: props.source.options.passwordSecret.id,
        role: 'roles/secretmanager.secretAccessor',
        member: this.serviceAccount.member,
      }),
    ];
    const sql = props.cloudSqlInstances ?? [];
    if (sql.length > 0) {
      dependsOn.push(
        new ProjectIamMember(this, 'ConnectsToCloudSql', {
          project: props.project,
          role: 'roles/cloudsql.client',
          member: this.serviceAccount.member,
        }),
      );
    }
    const env = Object.entries(this.environment)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value }));
    this.workerPool = new CloudRunV2WorkerPool(this, 'Resource', {
      name: resourceName(props.databaseId, 'shipper'),
      project: props.project,
      location: props.region,
      deletionProtection: props.deletionProtection ?? true,
      labels: props.labels,
      dependsOn,
      // One instance, always: never two shippers of one server, and restarted when it stops.
      scaling: { scalingMode: 'MANUAL', manualInstanceCount: 1 },
      template: {
        serviceAccount: this.serviceAccount.email,
        labels: props.labels,
        containers: [
          {
            name: RUNNER_CONTAINER,
            image: props.image.imageUri,
            args: [this.command],
            env: [
              ...env,
              {
                name: SECRET_ENV.SOURCE_PASSWORD,
                valueSource: {
                  secretKeyRef: {
                    secret: props.source.options.passwordSecret.id,
                    version: props.source.options.passwordSecretVersion ?? 'latest',
                  },
                },
              },
            ],
            resources: { limits: { cpu, memory: `${pitr.memoryLimitMiB}Mi` } },
            volumeMounts: sql.length > 0 ? [{ name: 'cloudsql', mountPath: '/cloudsql' }] : undefined,
          },
        ],
        volumes: sql.length > 0 ? [{ name: 'cloudsql', cloudSqlInstance: { instances: [...sql] } }] : undefined,
        vpcAccess: props.vpcEgress?.vpcAccess,
      },
    });

    // The runner's metric line (JSON on stderr) carries the lag as a top-level field.
    const metricName = `dbbackup/${props.databaseId}/${this.lagMetricName}`;
    this.lagMetric = new LoggingMetric(this, 'LagMetric', {
      project: props.project,
      name: metricName,
      description: `Seconds the log shipper of ${props.databaseId} is behind the server`,
      filter: [
        'resource.type = "cloud_run_worker_pool"',
        `resource.labels.worker_pool_name = "${resourceName(props.databaseId, 'shipper')}"`,
        `jsonPayload.${this.lagMetricName} >= 0`,
      ].join(' AND '),
      valueExtractor: `EXTRACT(jsonPayload.${this.lagMetricName})`,
      metricDescriptor: { metricKind: 'DELTA', valueType: 'DISTRIBUTION', unit: 's' },
      bucketOptions: { exponentialBuckets: { numFiniteBuckets: 32, growthFactor: 2, scale: 1 } },
    });
    const threshold = pitr.logShippingLagThreshold.toSeconds();
    const filter =
      `metric.type = "logging.googleapis.com/user/${metricName}" AND ` + 'resource.type = "cloud_run_worker_pool"';
    const what = streaming.folder === 'wal' ? 'WAL' : 'binary log';
    this.lagAlert = new MonitoringAlertPolicy(this, 'LagAlert', {
      project: props.project,
      displayName: `dbbackup ${props.databaseId}: log shipping lag`,
      combiner: 'OR',
      severity: 'CRITICAL',
      notificationChannels: props.notificationChannels,
      alertStrategy: { autoClose: `${7 * 86400}s` },
      conditions: [
        {
          displayName: `${what} shipper more than ${pitr.logShippingLagThreshold} behind`,
          conditionThreshold: {
            filter,
            comparison: 'COMPARISON_GT',
            thresholdValue: threshold,
            // Five minutes in a row: a deploy's restart of the shipper stays quiet.
            duration: '300s',
            aggregations: [{ alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_PERCENTILE_99' }],
            trigger: { count: 1 },
          },
        },
        {
          displayName: `${what} shipper published no lag`,
          conditionAbsent: {
            filter,
            duration: `${Math.max(300, Math.ceil((5 * interval) / 60) * 60)}s`,
            aggregations: [{ alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_PERCENTILE_99' }],
            trigger: { count: 1 },
          },
        },
      ],
      documentation: {
        mimeType: 'text/markdown',
        subject: `dbbackup ${props.databaseId}: log shipping lag`,
        content:
          `The ${what} shipper of ${props.databaseId} (Cloud Run worker pool ` +
          `\`${resourceName(props.databaseId, 'shipper')}\`) ` +
          `is more than ${pitr.logShippingLagThreshold} behind the server, ` +
          `or published no lag: a stopped or crash-looping ` +
          'shipper, a server it cannot reach, or uploads that fail. Point-in-time recovery ' +
          "cannot reach past the last shipped log; the shipper's log says why.",
      },
      userLabels: props.labels,
    });
  }
}
