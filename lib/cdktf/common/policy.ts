// Internal: the rules the CDKTF DatabaseBackups of both clouds apply, from lib/core.
import { Annotations } from 'cdktf';
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
} from '../../core';
import { Duration } from './duration';
import { BackupSchedule } from './schedule';
import { ScheduledBackup } from './scheduled';

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
  const list = schedules !== undefined ? [...schedules] : (deprecated ?? (schedule !== undefined ? [{ type: BackupType.FULL, schedule }] : defaultSchedules()));
  if (list.length === 0) {
    throw new ConfigError("schedules is empty; give at least one, e.g. [{ type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: '3' }) }].");
  }
  const types = new Set(list.map((s) => s.type ?? BackupType.FULL));
  if (!types.has(BackupType.FULL)) {
    throw new ConfigError(`schedules has only ${[...types].join(' and ')} backups, which need a full backup to ` +
      `start from; add { type: BackupType.FULL, schedule: … }.`);
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

/**
 * Simulate two years of the schedules, tiers and lifecycle rules (lib/core/simulate.ts, as the
 * CDK flavour does) and fail naming the first day and backup that would break; raised tiers are
 * warned about. The CDKTF runners get no --tier-days yet, so no base is raised (on Cloud Storage
 * tiers are folders and could not be).
 */
export function applyChainRetention(scope: Construct, schedules: readonly ScheduledBackup[], retention: Retention, timing: LifecycleTiming): void {
  const crons = (type: BackupType) => schedules.filter((s) => (s.type ?? BackupType.FULL) === type).map((s) => s.schedule.spec);
  const r = checkChainRetention({
    retention,
    fullSchedules: crons(BackupType.FULL),
    incrementalSchedules: crons(BackupType.INCREMENTAL),
    differentialSchedules: crons(BackupType.DIFFERENTIAL),
    timeZone: schedules.find((s) => s.schedule.timeZone !== 'UTC')?.schedule.timeZone,
    timing,
    // The CDKTF tasks and jobs do not render --tier-days yet, so their runner raises no base.
    raiseBaseTiers: false,
    what: 'retention',
  });
  for (const w of r.warnings) Annotations.of(scope).addWarning(w);
}
