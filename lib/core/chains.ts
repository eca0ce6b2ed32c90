/**
 * Backup chains and retention: a synth-time check that the retention tiers keep every full
 * backup alive as long as the backups that depend on it (incremental, differential) and the
 * point-in-time recovery window need it.
 *
 * How the runner tags backups (the storage's lifecycle rules expire each tag by age):
 * - full backups get a calendar tier: the first full of a month is `monthly`, the first of an
 *   ISO week `weekly`, the others `daily`;
 * - incremental and differential backups are always `daily`;
 * - the log archive (PostgreSQL WAL under `wal/`, binary logs under `binlog/`) has its own
 *   lifetime, set on that prefix.
 *
 * A restore to a moment starts from the newest full backup before it, so every moment between a
 * full and the next one needs that full (and the logs since it) for as long as the moment is in
 * the window. A dependant needs its full (and, for an incremental, every backup before it in the
 * chain) for as long as it lives itself; on S3 the runner raises a base's tier tag when a new
 * dependant would outlive it (lib/core/retention.ts planChainTiers), on GCS it cannot.
 *
 * The verdict is the retention simulator's (lib/core/simulate.ts): two years of backups, tiers
 * and lifecycle expiries, walked; the per-tier arithmetic below only explains a failure in terms
 * of the setting to change.
 */
import { ConfigError } from './errors';
import { LifecycleTiming, Retention } from './retention';
import { CronSpec, awsCronExpression } from './schedule';
import { BackupType, RetentionTier } from './model';
import { LOG_RULE_SLACK_DAYS, scheduleRuns, simulateRetention, SimulationResult } from './simulate';

/** What the check needs to know. */
export interface ChainRetentionProps {
  /** How long each tier keeps backups. */
  readonly retention: Retention;
  /** When full backups run: the bases of every chain and of point-in-time recovery. */
  readonly fullSchedules: readonly CronSpec[];
  /**
   * When incremental backups run (each depends on the backup before it).
   * @default - none
   */
  readonly incrementalSchedules?: readonly CronSpec[];
  /**
   * When differential backups run (each depends on the last full).
   * @default - none
   */
  readonly differentialSchedules?: readonly CronSpec[];
  /**
   * The point-in-time recovery window in days: every moment this far back stays restorable.
   * @default 0 - no point-in-time recovery
   */
  readonly pointInTimeDays?: number;
  /**
   * How long the log archive keeps each WAL segment / binary log, in days.
   * @default - not checked; the result says how long it must be (requiredLogArchiveDays)
   */
  readonly logArchiveDays?: number;
  /**
   * The name of the setting being checked, used in messages (e.g. the construct's path).
   * @default 'retention'
   */
  readonly what?: string;
  /** The time zone the schedules fire in. @default 'UTC' */
  readonly timeZone?: string;
  /**
   * How the storage's lifecycle removes objects; on S3 the runner raises a base's tier tag,
   * on GCS (tier folders) it cannot.
   * @default LifecycleTiming.S3
   */
  readonly timing?: LifecycleTiming;
  /**
   * Whether the runner raises a base's tier (it needs `--tier-days`, which the CDK flavour renders).
   * @default - timing is S3
   */
  readonly raiseBaseTiers?: boolean;
}

/** What the tiers must provide, and advice that does not fail synthesis. */
export interface ChainRetentionResult {
  /** The longest any full backup must stay, in days (for its dependants and the window). */
  readonly requiredFullDays: number;
  /** How long the log archive must keep each log, in days (0 without point-in-time recovery). */
  readonly requiredLogArchiveDays: number;
  /** Advice that does not fail synthesis (none today: what would break fails). */
  readonly warnings: readonly string[];
  /** The simulation that decided (undefined without full backups). */
  readonly simulation?: SimulationResult;
}

const DAY = 1440;
const START = Date.UTC(2026, 0, 1);
const WALK_DAYS = 731;

/**
 * Check that the retention keeps every base as long as its dependants and the point-in-time
 * window need it, by simulating two years (lib/core/simulate.ts). Throws ConfigError naming the
 * first day and backup that would break and the setting to change; returns the required
 * lifetimes otherwise. Without `logArchiveDays` the log archive is taken to keep what the window
 * needs plus a day (the rule the vaults emit).
 */
export function checkChainRetention(props: ChainRetentionProps): ChainRetentionResult {
  const what = props.what ?? 'retention';
  const window = props.pointInTimeDays ?? 0;
  if (!Number.isFinite(window) || window < 0)
    throw new ConfigError(
      `${what}: pointInTimeDays is ${window}; give 0 (no point-in-time recovery) or a positive number of days.`,
    );
  if (props.fullSchedules.length === 0) {
    if (window > 0 || (props.incrementalSchedules?.length ?? 0) + (props.differentialSchedules?.length ?? 0) > 0) {
      throw new ConfigError(
        `${what}: incremental, differential backups and point-in-time recovery need scheduled full backups as their ` +
          'base; add a full backup schedule.',
      );
    }
    return { requiredFullDays: 0, requiredLogArchiveDays: 0, warnings: [] };
  }
  const lay = (crons: readonly CronSpec[]) =>
    scheduleRuns(crons, START, START + WALK_DAYS * 86_400_000, props.timeZone).map((ms) => ms / 60000);
  const fullRuns = lay(props.fullSchedules);
  const incRuns = lay(props.incrementalSchedules ?? []);
  const diffRuns = lay(props.differentialSchedules ?? []);
  const lifetimeOf = new Map<RetentionTier, number>(props.retention.lifetimes.map((l) => [l.tier, l.days * DAY]));
  const daily = lifetimeOf.get(RetentionTier.DAILY)!;
  const dependants = [...incRuns, ...diffRuns].sort((a, b) => a - b);

  // Tier each full as the runner does (counting earlier fulls only).
  const existing: Date[] = [];
  const violations = new Map<
    string,
    { tier: RetentionTier; have: number; need: number; depSpan: number; gap: number }
  >();
  let requiredFull = 0;
  let requiredLogs = 0;
  for (let i = 0; i + 1 < fullRuns.length; i++) {
    const at = fullRuns[i];
    const next = fullRuns[i + 1];
    // Only fulls of the same month or ISO week matter to the tier: keep the last 40 days.
    while (existing.length > 0 && existing[0].getTime() < (at - 40 * DAY) * 60000) existing.shift();
    const tier = props.retention.assignTier(new Date(at * 60000), existing);
    existing.push(new Date(at * 60000));
    const have = lifetimeOf.get(tier)!;
    const mine = between(dependants, at, next);
    const depSpan = mine.length === 0 ? 0 : mine[mine.length - 1] - at;
    const gap = next - at;
    const need = Math.max(mine.length === 0 ? 0 : depSpan + daily, window > 0 ? gap + window * DAY : 0);
    requiredFull = Math.max(requiredFull, need);
    if (window > 0) requiredLogs = Math.max(requiredLogs, gap + window * DAY);
    // Only the first two years' pattern matters; one violation per tier is enough to report.
    if (have < need) {
      const v = violations.get(tier);
      if (v === undefined || v.need < need) violations.set(tier, { tier, have, need, depSpan, gap });
    }
  }

  const problems: string[] = [];
  const days = (m: number) => Math.ceil(m / DAY);
  for (const v of violations.values()) {
    const reasons: string[] = [];
    if (v.depSpan > 0)
      reasons.push(
        `its incremental/differential backups are taken up to ${humanDays(v.depSpan)} after it and each is kept ` +
          `${days(daily)} days (daily tier)`,
      );
    if (window > 0)
      reasons.push(
        `the ${window}-day point-in-time window restores moments up to the next full (${humanDays(v.gap)} later) ` +
          'from it',
      );
    const needDays = days(v.need);
    let fix: string;
    if (v.tier === RetentionTier.DAILY && v.depSpan > 0) {
      fix =
        'a full backup in the daily tier (a second full in the same ISO week) cannot outlive its own daily ' +
        'dependants; schedule at most one full backup per ISO week and keep weekly retention (weekly ≥ ' +
        `${Math.ceil(needDays / 7)}), or take no incremental/differential backups`;
    } else if (v.tier === RetentionTier.DAILY) {
      fix = `raise ${what} daily to at least ${needDays} days, or take full backups more often`;
    } else if (v.tier === RetentionTier.WEEKLY) {
      fix =
        `raise ${what} weekly to at least ${Math.ceil(needDays / 7)} (${Math.ceil(needDays / 7) * 7} days), or ` +
        'take full backups more often';
    } else {
      fix = `raise ${what} monthly to at least ${Math.ceil(needDays / 31)}, or take full backups more often`;
    }
    problems.push(
      `a full backup in the ${v.tier} tier is kept ${days(v.have)} days but must stay ${needDays} days: ` +
        `${reasons.join(', and ')}. Fix: ${fix}.`,
    );
  }
  if (window > 0 && props.logArchiveDays !== undefined && props.logArchiveDays * DAY < requiredLogs) {
    problems.push(
      `the log archive keeps logs ${props.logArchiveDays} days but the ${window}-day point-in-time window needs ` +
        `${days(requiredLogs)}: a moment just before a full backup (full backups run up to ` +
        `${humanDays(requiredLogs - window * DAY)} apart: ${props.fullSchedules.map(awsCronExpression).join(', ')}) ` +
        `is replayed from the full before it. Fix: raise logArchiveDays to at least ${days(requiredLogs)}, or take ` +
        'full backups more often.',
    );
  }
  const logDays = window > 0 ? (props.logArchiveDays ?? days(requiredLogs) + LOG_RULE_SLACK_DAYS) : undefined;
  const schedule = (type: BackupType, crons: readonly CronSpec[] | undefined) =>
    (crons ?? []).map((cron) => ({ type, cron }));
  const simulation = simulateRetention({
    schedules: [
      ...schedule(BackupType.FULL, props.fullSchedules),
      ...schedule(BackupType.INCREMENTAL, props.incrementalSchedules),
      ...schedule(BackupType.DIFFERENTIAL, props.differentialSchedules),
    ],
    retention: props.retention,
    rules: {
      tierDays: Object.fromEntries(props.retention.lifetimes.map((l) => [l.tier, l.days])),
      logPrefixDays: logDays === undefined ? undefined : { 'logs/': logDays },
      timing: props.timing,
    },
    pointInTimeDays: window,
    raiseBaseTiers: props.raiseBaseTiers,
    timeZone: props.timeZone,
    start: new Date(START),
    days: WALK_DAYS,
    what,
  });
  const first = simulation.firstBreak;
  if (first !== undefined) {
    const fix =
      problems.length > 0
        ? ''
        : ' Fix: take differential instead of incremental backups (each needs only its full), or full backups more ' +
          'often, or keep the daily tier longer.';
    throw new ConfigError(
      `${what}: ${problems.join(' ')}${problems.length > 0 ? ' ' : ''}First break: on ${first.day} backup ` +
        `${first.backup} would break: ${first.reason}.${fix}`,
    );
  }
  const warnings: string[] = [];
  const raised = simulation.backups.filter((b) => b.tier !== b.writtenTier);
  if (raised.length > 0) {
    const e = raised[0];
    warnings.push(
      `${what}: to keep chains whole the runner raises the tier of ${raised.length} of ${simulation.backups.length} ` +
        'backups over two years ' +
        `(e.g. ${e.id}: ${e.writtenTier} → ${e.tier}), so they are kept longer than their tier says; ` +
        'one full backup per ISO week with differential backups avoids it.',
    );
  }
  return { requiredFullDays: days(requiredFull), requiredLogArchiveDays: days(requiredLogs), warnings, simulation };
}

/** The runs strictly between `from` and `to` (sorted input). */
function between(sorted: readonly number[], from: number, to: number): number[] {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= from) lo = mid + 1;
    else hi = mid;
  }
  const out: number[] = [];
  for (let i = lo; i < sorted.length && sorted[i] < to; i++) out.push(sorted[i]);
  return out;
}

function humanDays(minutes: number): string {
  if (minutes % DAY === 0) return `${minutes / DAY} day${minutes === DAY ? '' : 's'}`;
  if (minutes % 60 === 0) return `${minutes / 60} hours`;
  return `${minutes} minutes`;
}
