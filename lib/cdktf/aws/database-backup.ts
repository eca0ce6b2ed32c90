import { Construct } from 'constructs';
import { BackupType, Compression, ConfigError, Retention, defaultRpoMinutes, validateRpo } from '../../core';
import { Duration } from '../common/duration';
import { BackupEncryption } from '../common/encryption';
import { BackupSchedule } from '../common/schedule';
import { RunnerImage } from './image';
import { BackupMonitoring } from './monitoring';
import { IClusterRef, IKeyRef, ITopicRef } from './refs';
import { CpuArchitecture, RunnerNetwork, RunnerTask } from './runner-task';
import { RunnerSchedule } from './schedule';
import { BackupSource } from './source';
import { Verifier } from './verifier';
import { BackupVault, IBackupVault, ObjectLockOptions } from './vault';

/** Properties of a `DatabaseBackup`. */
export interface DatabaseBackupProps {
  /** The database's identifier: the metric dimension, the default prefix and part of resource names. */
  readonly databaseId: string;
  readonly source: BackupSource;
  readonly image: RunnerImage;
  readonly network: RunnerNetwork;
  /**
   * When backups run.
   * @default BackupSchedule.daily(2) (02:00 UTC)
   */
  readonly schedule?: BackupSchedule;
  /**
   * Retention of a new vault (ignored with `vault`: an existing bucket's lifecycle is its owner's).
   * @default Retention.gfs()
   */
  readonly retention?: Retention;
  /**
   * Store backups in this vault (e.g. `BackupVault.fromExisting(...)` or one vault shared by several databases).
   * @default - a new `BackupVault`
   */
  readonly vault?: IBackupVault;
  /**
   * Object Lock for a new vault.
   * @default - none
   */
  readonly objectLock?: ObjectLockOptions;
  /** @default - the databaseId */
  readonly prefix?: string;
  /** @default BackupEncryption.kms(vault key) */
  readonly encryption?: BackupEncryption;
  /** @default Compression.ZSTD */
  readonly compression?: Compression;
  /** @default BackupType.FULL */
  readonly backupType?: BackupType;
  /**
   * The recovery point objective the backup-age alarm holds the backups to.
   * @default - the longest gap between two scheduled runs plus one hour
   */
  readonly rpo?: Duration;
  /** @default - none */
  readonly alarmEmails?: string[];
  /**
   * An existing topic for the alarms.
   * @default - a new encrypted topic
   */
  readonly alarmTopic?: ITopicRef;
  /** @default - none */
  readonly alarmTopicKey?: IKeyRef;
  /** @default - a new cluster */
  readonly cluster?: IClusterRef;
  /** @default 1024 */
  readonly cpu?: number;
  /** @default 2048 */
  readonly memoryLimitMiB?: number;
  /** @default CpuArchitecture.X86_64 */
  readonly cpuArchitecture?: CpuArchitecture;
  /** @default - none */
  readonly tags?: Record<string, string>;
}

/**
 * The whole backup system of one database on AWS, in Terraform: vault, runner task, schedule,
 * verifier and alarms, composed from the constructs of this module.
 */
export class DatabaseBackup extends Construct {
  public readonly vault: IBackupVault;
  /** The new vault, when none was given. */
  public readonly newVault?: BackupVault;
  public readonly task: RunnerTask;
  public readonly schedule: RunnerSchedule;
  public readonly verifier: Verifier;
  public readonly monitoring: BackupMonitoring;
  /** The recovery point objective in force. */
  public readonly rpo: Duration;

  constructor(scope: Construct, id: string, props: DatabaseBackupProps) {
    super(scope, id);
    const schedule = props.schedule ?? BackupSchedule.daily(2);
    if (props.rpo !== undefined) {
      validateRpo(props.rpo.toMinutes(), [schedule.spec]);
      this.rpo = props.rpo;
    } else {
      const minutes = defaultRpoMinutes([schedule.spec]);
      if (minutes === undefined) {
        throw new ConfigError(`the schedule ${schedule.awsExpression} uses a day pattern whose gaps cannot be worked out; give rpo explicitly (e.g. Duration.days(8) for a weekly schedule).`);
      }
      this.rpo = Duration.minutes(minutes);
    }

    if (props.vault !== undefined) {
      this.vault = props.vault;
    } else {
      this.newVault = new BackupVault(this, 'Vault', {
        bucketPrefix: `${props.databaseId.slice(0, 26)}-backups-`,
        retention: props.retention,
        objectLock: props.objectLock,
        tags: props.tags,
      });
      this.vault = this.newVault;
    }
    this.task = new RunnerTask(this, 'Task', {
      databaseId: props.databaseId,
      source: props.source,
      vault: this.vault,
      image: props.image,
      network: props.network,
      prefix: props.prefix,
      encryption: props.encryption,
      compression: props.compression,
      backupType: props.backupType,
      cluster: props.cluster,
      cpu: props.cpu,
      memoryLimitMiB: props.memoryLimitMiB,
      cpuArchitecture: props.cpuArchitecture,
      tags: props.tags,
    });
    this.schedule = new RunnerSchedule(this, 'Schedule', { task: this.task, schedules: [schedule] });
    this.monitoring = new BackupMonitoring(this, 'Monitoring', {
      databaseId: props.databaseId,
      rpo: this.rpo,
      topic: props.alarmTopic,
      topicKey: props.alarmTopicKey,
      alarmEmails: props.alarmEmails,
      deadLetterQueue: this.schedule.deadLetterQueue,
      verifierFunction: { functionName: Verifier.functionName(props.databaseId) },
      tags: props.tags,
    });
    this.verifier = new Verifier(this, 'Verifier', {
      databaseId: props.databaseId,
      vault: this.vault,
      prefix: this.task.prefix,
      alarmTopic: { arn: this.monitoring.topicArn },
      alarmTopicKey: this.monitoring.topicKeyArn === undefined ? undefined : { arn: this.monitoring.topicKeyArn },
      tags: props.tags,
    });
  }
}
