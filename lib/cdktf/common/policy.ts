// Internal: the rules the CDKTF DatabaseBackups of both clouds apply, from lib/core.
import { Annotations, Token } from 'cdktf';
import { Construct } from 'constructs';
import {
  BackupType,
  checkChainRetention,
  ConfigError,
  DEFAULT_BACKUP_CRON,
  LifecycleTiming,
  Retention,
  RpoSchedule,
  cronMaxIntervalMinutes,
  resolveRpo,
  logArchiveExpiry,
} from '../../core';
import { databaseIdFromName } from '../../core/ids';
import { Duration } from './duration';
import { BackupSchedule } from './schedule';
import { ScheduledBackup } from './scheduled';
import { PointInTimeRecovery } from './pitr';

/** The schedules when none are given: a full backup every night at 03:00 UTC (lib/core). */
export function defaultSchedules(): ScheduledBackup[] {
  return [{ type: BackupType.FULL, schedule: BackupSchedule.cron(DEFAULT_BACKUP_CRON) }];
}

/** `schedules`, or the deprecated single `schedule`, or the default; checked as the CDK flavour checks them. */
export function resolveSchedules(
  schedules: readonly ScheduledBackup[] | undefined,
  schedule: BackupSchedule | undefined,
  timeout: Duration,
  deprecated?: ScheduledBackup[],
): ScheduledBackup[] {
  if (schedules !== undefined && (schedule !== undefined || deprecated !== undefined)) {
    throw new ConfigError('schedule and schedules are both set; give schedules only (schedule is deprecated).');
  }
  const list =
    schedules !== undefined
      ? [...schedules]
      : (deprecated ?? (schedule !== undefined ? [{ type: BackupType.FULL, schedule }] : defaultSchedules()));
  if (list.length === 0) {
    throw new ConfigError(
      'schedules is empty; give at least one, e.g. [{ type: ' +
        "BackupType.FULL, schedule: BackupSchedule.cron({ hour: '3' }) }].",
    );
  }
  const types = new Set(list.map((s) => s.type ?? BackupType.FULL));
  if (!types.has(BackupType.FULL)) {
    throw new ConfigError(
      `schedules has only ${[...types].join(' and ')} backups, which need a full backup to ` +
        `start from; add { type: BackupType.FULL, schedule: … }.`,
    );
  }
  for (const s of list) {
    if (s.schedule.spec.minIntervalMinutes * 60 < timeout.toSeconds()) {
      throw new ConfigError(
        `the ${s.type ?? BackupType.FULL} schedule '${s.schedule.awsExpression}' runs every ` +
          `${s.schedule.spec.minIntervalMinutes} minutes, but a backup may run for ${timeout} (timeout), so two ` +
          `backups of the same database could overlap. Schedule it less often, or lower timeout.`,
      );
    }
  }
  return list;
}

/** The RPO policy of every flavour (lib/core/rpo), warnings as annotations. */
export function applyRpoPolicy(
  scope: Construct,
  rpo: Duration | undefined,
  schedules: readonly ScheduledBackup[],
  timeout: Duration,
  ceiling?: { readonly minutes: number; readonly reason: string },
): Duration {
  const rpoSchedules: RpoSchedule[] = schedules.map((s) => ({
    cron: s.schedule.spec,
    timeZone: s.schedule.timeZone,
    maxIntervalMinutes: cronMaxIntervalMinutes(s.schedule.spec),
  }));
  const decision = resolveRpo({
    schedules: rpoSchedules,
    timeoutMinutes: timeout.toMinutes(),
    rpoMinutes: rpo?.toMinutes(),
    ceilingMinutes: ceiling?.minutes,
    ceilingReason: ceiling?.reason,
  });
  for (const w of decision.warnings) Annotations.of(scope).addWarning(w);
  return rpo ?? Duration.minutes(decision.rpoMinutes);
}

/** The construct id of a backup type's task or job and schedules, as in the AWS CDK flavour. */
export const TYPE_IDS: Readonly<Record<BackupType, string>> = {
  [BackupType.FULL]: 'Full',
  [BackupType.INCREMENTAL]: 'Incremental',
  [BackupType.DIFFERENTIAL]: 'Differential',
};

/** What the chain check knows beyond the schedules and the retention. */
export interface ChainRetentionOptions {
  /** Whether the runner gets `--tier-days` and so raises a base's tier (S3 tags; GCS folders cannot be). */
  readonly raiseBaseTiers: boolean;
  /** The point-in-time window in days. @default 0 */
  readonly pointInTimeDays?: number;
  /** The days of the log archive's lifecycle rule, when it has one. */
  readonly logArchiveDays?: number;
}

/**
 * Simulate two years of the schedules, tiers and lifecycle rules (lib/core/simulate.ts, as the
 * CDK flavour does) and fail naming the first day and backup that would break; raised tiers are
 * warned about. On S3 the runner tasks render --tier-days, so a base is raised, as in the CDK
 * flavour; on Cloud Storage tiers are folders and cannot be.
 */
export function applyChainRetention(
  scope: Construct,
  schedules: readonly ScheduledBackup[],
  retention: Retention,
  timing: LifecycleTiming,
  options: ChainRetentionOptions = { raiseBaseTiers: false },
  pitr?: PointInTimeRecovery,
): void {
  const crons = (type: BackupType) =>
    schedules.filter((s) => (s.type ?? BackupType.FULL) === type).map((s) => s.schedule.spec);
  try {
    const r = checkChainRetention({
      retention,
      fullSchedules: crons(BackupType.FULL),
      incrementalSchedules: crons(BackupType.INCREMENTAL),
      differentialSchedules: crons(BackupType.DIFFERENTIAL),
      timeZone: timeZoneOf(schedules),
      timing,
      raiseBaseTiers: options.raiseBaseTiers,
      pointInTimeDays: options.pointInTimeDays,
      logArchiveDays: options.logArchiveDays,
      what: 'retention',
    });
    for (const w of r.warnings) Annotations.of(scope).addWarning(w);
  } catch (e) {
    if (!(e instanceof ConfigError) || pitr?.window === undefined) throw e;
    throw new ConfigError(
      `pointInTimeRecovery window is ${pitr.window}, which the retention ` +
        `does not keep: ${e.message} Or shorten the window.`,
    );
  }
}

function timeZoneOf(schedules: readonly ScheduledBackup[]): string | undefined {
  return schedules.find((s) => s.schedule.timeZone !== 'UTC')?.schedule.timeZone;
}

/**
 * The days of the log archive's lifecycle rule (lib/core `logArchiveExpiry`, as the CDK flavour
 * computes them): from the window and the full-backup schedules, or without a window from the
 * longest-kept tier. Undefined when there is no retention to read (an existing vault) and no window.
 */
export function logArchiveDays(
  schedules: readonly ScheduledBackup[],
  retention: Retention | undefined,
  pitr: PointInTimeRecovery,
): number | undefined {
  if (retention === undefined && pitr.window === undefined) return undefined;
  const fulls = schedules.filter((s) => (s.type ?? BackupType.FULL) === BackupType.FULL).map((s) => s.schedule.spec);
  return logArchiveExpiry({
    retention: retention ?? Retention.gfs(),
    fullSchedules: fulls,
    pointInTimeDays: pitr.windowDays,
    timeZone: timeZoneOf(schedules),
  })?.days;
}

/**
 * The database id: explicit, or the source's database name in kebab case (lib/core
 * `databaseIdFromName`, the rule of the CDK flavour), never the construct id.
 */
export function resolveDatabaseId(
  scope: Construct,
  databaseId: string | undefined,
  databaseName: string | undefined,
): string {
  if (databaseId !== undefined) return databaseId;
  const derived =
    databaseName === undefined || Token.isUnresolved(databaseName) ? undefined : databaseIdFromName(databaseName);
  if (derived === undefined) {
    throw new ConfigError(
      `databaseId is missing on ${scope.node.path}, and the source's database name ` +
        `${
          databaseName === undefined || Token.isUnresolved(databaseName)
            ? 'is not known at synth (a token URL)'
            : `'${databaseName}' makes no valid id`
        }; ` +
        "give databaseId explicitly (e.g. databaseId: 'orders'). It names the vault " +
        'prefix and the metrics, so it must not change with the construct.',
    );
  }
  return derived;
}
