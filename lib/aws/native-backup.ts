import { Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { ConfigError } from '../core';
import { acknowledge } from './private/nag';
import type { BackupSource } from './source';

/** The longest point-in-time window AWS Backup keeps for RDS and Aurora (continuous backup). */
const MAX_CONTINUOUS_DAYS = 35;

/**
 * AWS Backup's own backups of an RDS instance or Aurora cluster, beside the portable ones:
 * daily snapshots and continuous backup (point-in-time restore to any second of the window).
 */
export interface NativeBackupOptions {
  /**
   * When the daily snapshot starts (AWS Backup starts it within an hour).
   * @default events.Schedule.cron({ minute: '0', hour: '5' }) - 05:00 UTC
   */
  readonly schedule?: events.Schedule;
  /**
   * How long each daily snapshot is kept.
   * @default Duration.days(35)
   */
  readonly snapshotRetention?: Duration;
  /**
   * Continuous backup: restore the database to any second of the last `pointInTimeWindow`.
   * @default true
   */
  readonly continuousBackup?: boolean;
  /**
   * How far back a point-in-time restore can go (AWS Backup keeps at most 35 days).
   * @default Duration.days(35)
   */
  readonly pointInTimeWindow?: Duration;
  /**
   * The AWS Backup vault the recovery points go to.
   * @default - a new vault encrypted with `encryptionKey`
   */
  readonly backupVault?: backup.IBackupVault;
  /**
   * The key of a new AWS Backup vault (pass the backup vault's key to keep one key). Its key
   * policy must let AWS Backup use it; a new key's does.
   * @default - a new customer-managed KMS key with rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * What happens to a new vault and key when the stack is deleted (a vault that still holds
   * recovery points cannot be deleted).
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** Properties of a `NativeBackup`. */
export interface NativeBackupProps extends NativeBackupOptions {
  /** The database: `BackupSource.fromRdsInstance` or `BackupSource.fromDatabaseCluster`. */
  readonly source: BackupSource;
  /**
   * Names the plan and the selection.
   * @default - the construct's path
   */
  readonly databaseId?: string;
}

/**
 * An RDS instance or Aurora cluster in an AWS Backup plan: daily snapshots and continuous
 * backup (native point-in-time restore in this account and region, same engine). It is beside
 * the portable backups, not instead of them: those restore anywhere, are verified and drilled,
 * and keep the long tiers.
 */
export class NativeBackup extends Construct {
  /** The AWS Backup vault of the recovery points. */
  public readonly backupVault: backup.IBackupVault;
  /** The key of a new vault. */
  public readonly key?: kms.IKey;
  public readonly plan: backup.BackupPlan;
  public readonly selection: backup.BackupSelection;

  constructor(scope: Construct, id: string, props: NativeBackupProps) {
    super(scope, id);
    const source = props.source;
    if (!source.managed || source.databaseArn === undefined) {
      throw new ConfigError(
        `nativeBackup is set for a self-managed ${source.engine} database (${source.endpoint}); AWS Backup snapshots ` +
          'only RDS instances and Aurora clusters. Use BackupSource.fromRdsInstance or fromDatabaseCluster, or leave ' +
          'nativeBackup out (the portable backups and, for PostgreSQL, WAL archiving give point-in-time recovery).',
      );
    }
    const snapshotDays = days('nativeBackup.snapshotRetention', props.snapshotRetention ?? Duration.days(35), 1);
    const continuous = props.continuousBackup ?? true;
    const window = props.pointInTimeWindow ?? Duration.days(MAX_CONTINUOUS_DAYS);
    const windowDays = days('nativeBackup.pointInTimeWindow', window, 1);
    if (windowDays !== undefined && windowDays > MAX_CONTINUOUS_DAYS) {
      throw new ConfigError(
        `nativeBackup.pointInTimeWindow is ${windowDays} days; AWS Backup keeps continuous backups of RDS and ` +
          `Aurora for at most ${MAX_CONTINUOUS_DAYS} days. Use Duration.days(${MAX_CONTINUOUS_DAYS}) or less, and ` +
          'the portable backups (or snapshotRetention) for longer.',
      );
    }
    if (!continuous && props.pointInTimeWindow !== undefined) {
      throw new ConfigError(
        'nativeBackup.pointInTimeWindow is set, but continuousBackup is false; the window is the continuous ' +
          'backup window. Leave continuousBackup on, or leave pointInTimeWindow out.',
      );
    }
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const schedule = props.schedule ?? events.Schedule.cron({ minute: '0', hour: '5' });

    if (props.backupVault !== undefined) {
      if (props.encryptionKey !== undefined) {
        throw new ConfigError(
          'nativeBackup has both backupVault and encryptionKey; an existing vault keeps its own key. Give one of them.',
        );
      }
      this.backupVault = props.backupVault;
    } else {
      const key =
        props.encryptionKey ??
        new kms.Key(this, 'Key', {
          enableKeyRotation: true,
          description: 'Encrypts the AWS Backup vault of the native database backups',
          removalPolicy,
        });
      allowAwsBackup(key);
      this.key = key;
      this.backupVault = new backup.BackupVault(this, 'Vault', { encryptionKey: key, removalPolicy });
    }

    const rules = [
      new backup.BackupPlanRule({
        ruleName: 'DailySnapshots',
        backupVault: this.backupVault,
        scheduleExpression: schedule,
        deleteAfter: Duration.days(snapshotDays ?? 35),
      }),
    ];
    if (continuous) {
      rules.push(
        new backup.BackupPlanRule({
          ruleName: 'ContinuousBackup',
          backupVault: this.backupVault,
          scheduleExpression: schedule,
          enableContinuousBackup: true,
          deleteAfter: window,
        }),
      );
    }
    this.plan = new backup.BackupPlan(this, 'Plan', {
      backupPlanName: props.databaseId === undefined ? undefined : `dbbackup-${props.databaseId}`,
      backupPlanRules: rules,
    });
    this.selection = this.plan.addSelection('Selection', {
      backupSelectionName: props.databaseId === undefined ? undefined : `dbbackup-${props.databaseId}`,
      resources: [backup.BackupResource.fromArn(source.databaseArn)],
      allowRestores: true,
    });
    const role = this.node.findAll().find((c): c is iam.Role => c instanceof iam.Role);
    if (role !== undefined) {
      acknowledge(
        role,
        {
          id:
            'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/' +
            'service-role/AWSBackupServiceRolePolicyForBackup]',
          reason: "AWS Backup's own service role policy for taking backups, maintained by AWS as the service changes.",
        },
        {
          id:
            'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/' +
            'service-role/AWSBackupServiceRolePolicyForRestores]',
          reason: "AWS Backup's own service role policy for restores, maintained by AWS as the service changes.",
        },
      );
    }
  }
}

/**
 * The key policy statement that lets AWS Backup use the key for this account (through the
 * service only). A no-op on an imported key, whose policy is its owner's.
 */
function allowAwsBackup(key: kms.IKey): void {
  const stack = Stack.of(key);
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'AllowAwsBackup',
      principals: [new iam.AccountRootPrincipal()],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*', 'kms:DescribeKey', 'kms:CreateGrant'],
      resources: ['*'],
      conditions: {
        StringEquals: { 'kms:ViaService': `backup.${stack.region}.amazonaws.com`, 'kms:CallerAccount': stack.account },
      },
    }),
  );
}

function days(name: string, d: Duration, min: number): number | undefined {
  if (Token.isUnresolved(d.toString())) return undefined;
  const n = d.toDays({ integral: false });
  if (!Number.isInteger(n) || n < min) {
    throw new ConfigError(
      `${name} is ${d.toHumanString()}; AWS Backup counts retention in whole days, at least ${min}. ` +
        `Use e.g. Duration.days(${Math.max(min, Math.ceil(n))}).`,
    );
  }
  return n;
}
