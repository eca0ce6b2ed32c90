/**
 * The recovery point objective policy, one rule for every flavour (AWS CDK, CDKTF on AWS and on
 * Google): how long the backup-age (stale) alarm waits before it fires.
 *
 * - Default: the longest gap between two scheduled backups, plus the backup timeout (a backup
 *   may take that long to commit), plus the scheduler's flexible window when there is one.
 * - A given RPO below the longest gap is refused: the alarm would fire between every two
 *   healthy runs. One below gap + timeout is allowed with a warning: a slow backup may raise
 *   the alarm before it commits.
 * - A cloud whose alerting cannot look back that far (Cloud Monitoring: 25 hours) passes its
 *   ceiling; the default is capped there, with the same warning, and a gap above it is refused.
 */
import { ConfigError } from './errors';
import { humanMinutes, longestScheduleGapMinutes } from './checks';
import { CronSpec, awsCronExpression } from './schedule';

/** One schedule as the RPO policy sees it. */
export interface RpoSchedule {
  /** The checked cron fields, for a cron schedule. */
  readonly cron?: CronSpec;
  /** The schedule's IANA time zone. @default 'UTC' */
  readonly timeZone?: string;
  /** The longest time between two runs of this schedule alone, when known (rate schedules). */
  readonly maxIntervalMinutes?: number;
}

/** What the policy needs to decide. */
export interface RpoPolicyInput {
  /** Every backup schedule of the database (any type). */
  readonly schedules: readonly RpoSchedule[];
  /** The longest a backup may run, in minutes. */
  readonly timeoutMinutes: number;
  /** The scheduler's flexible start window, in minutes. @default 0 */
  readonly flexibleWindowMinutes?: number;
  /** The RPO the user gave, in minutes. @default - the policy's default */
  readonly rpoMinutes?: number;
  /** The longest RPO the cloud's alerting can hold, in minutes. @default - no ceiling */
  readonly ceilingMinutes?: number;
  /** Why there is a ceiling, for messages. @default - none */
  readonly ceilingReason?: string;
  /** The prop named in messages. @default 'rpo' */
  readonly what?: string;
}

/** The policy's decision. */
export interface RpoDecision {
  /** The RPO in force, in minutes. */
  readonly rpoMinutes: number;
  /** The longest gap between two backups, in minutes, when known. */
  readonly gapMinutes?: number;
  /** Soft advice (the RPO leaves less than the timeout beyond the gap). */
  readonly warnings: readonly string[];
}

const UTC = ['UTC', 'Etc/UTC'];

/**
 * The longest gap between two backups of the given schedules taken together, in minutes.
 * Cron schedules are laid out on the calendar (an hour more when a schedule is in a zone with
 * daylight saving); otherwise an upper bound from the schedules' own longest intervals.
 */
export function backupGapMinutes(schedules: readonly RpoSchedule[]): number | undefined {
  const crons = schedules.map((s) => s.cron);
  if (crons.length > 0 && crons.every((c): c is CronSpec => c !== undefined)) {
    const gap = longestScheduleGapMinutes(crons);
    const zoned = schedules.some((s) => s.timeZone !== undefined && !UTC.includes(s.timeZone));
    if (gap !== undefined) return gap + (zoned ? 60 : 0);
  }
  const known = schedules.map((s) => s.maxIntervalMinutes).filter((m): m is number => m !== undefined);
  return known.length === 0 ? undefined : Math.min(...known);
}

/** The longest time between two runs of one cron schedule (five calendar years, day patterns included). */
export function cronMaxIntervalMinutes(cron: CronSpec): number | undefined {
  return longestScheduleGapMinutes([cron], { years: 5, dayPatterns: true });
}

/** Apply the RPO policy. Throws ConfigError with the value and the fix. */
export function resolveRpo(input: RpoPolicyInput): RpoDecision {
  const what = input.what ?? 'rpo';
  const gap = backupGapMinutes(input.schedules);
  const slack = input.timeoutMinutes + (input.flexibleWindowMinutes ?? 0);
  const ceiling = input.ceilingMinutes;
  const why = input.ceilingReason ? ` (${input.ceilingReason})` : '';
  const where = input.schedules
    .map((s) => (s.cron ? awsCronExpression(s.cron) : `every ${humanMinutes(s.maxIntervalMinutes ?? 0)}`))
    .join(', ');
  if (ceiling !== undefined && gap !== undefined && gap > ceiling) {
    throw new ConfigError(
      `the schedule (${where}) leaves up to ${humanMinutes(gap)} between two backups, but the stale alarm can ` +
        `wait at most ${humanMinutes(ceiling)}${why}. Schedule backups at least every ${humanMinutes(ceiling)}.`,
    );
  }
  let rpo: number;
  if (input.rpoMinutes === undefined) {
    if (gap === undefined) {
      throw new ConfigError(
        `the gap between scheduled backups (${where}) cannot be worked out; set ${what} ` +
          `explicitly, e.g. ${what}: Duration.hours(26).`,
      );
    }
    rpo = ceiling === undefined ? gap + slack : Math.min(gap + slack, ceiling);
  } else {
    rpo = input.rpoMinutes;
    if (!Number.isFinite(rpo) || rpo <= 0) {
      throw new ConfigError(
        `${what} is ${rpo} minutes; give a positive duration, longer than the time between ` + `two scheduled backups.`,
      );
    }
    if (ceiling !== undefined && rpo > ceiling) {
      throw new ConfigError(
        `${what} is ${humanMinutes(rpo)}, but the stale alarm can wait at most ` +
          `${humanMinutes(ceiling)}${why}. Set ${what} to at most ${humanMinutes(ceiling)} and schedule backups at ` +
          `least that often.`,
      );
    }
    if (gap !== undefined && rpo < gap) {
      throw new ConfigError(
        `${what} is ${humanMinutes(rpo)}, shorter than the longest gap between scheduled backups ` +
          `(${humanMinutes(gap)}: ${where}): the stale alarm would fire every cycle. Schedule backups more ` +
          `often, or set ${what} to at least ${humanMinutes(gap + slack)} (the gap plus the backup timeout).`,
      );
    }
  }
  const warnings: string[] = [];
  if (gap !== undefined && rpo < gap + slack) {
    warnings.push(
      `${what} (${humanMinutes(rpo)}) leaves less than the backup timeout ` +
        `(${humanMinutes(input.timeoutMinutes)}) beyond the longest gap between backups (${humanMinutes(gap)}); ` +
        `a slow backup may raise the stale alarm before it commits.`,
    );
  }
  return { rpoMinutes: rpo, gapMinutes: gap, warnings };
}
