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
 * chain) for as long as it lives itself.
 */
import { ConfigError } from './errors';
import { Retention } from './retention';
import { CronSpec, awsCronExpression } from './schedule';
import { RetentionTier } from './model';

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
}

/** What the tiers must provide, and advice that does not fail synthesis. */
export interface ChainRetentionResult {
  /** The longest any full backup must stay, in days (for its dependants and the window). */
  readonly requiredFullDays: number;
  /** How long the log archive must keep each log, in days (0 without point-in-time recovery). */
  readonly requiredLogArchiveDays: number;
  /**
   * Soft problems: incremental backups each depend on the ones before them, and the lifecycle
   * expires the oldest first, so late incrementals of a cycle outlive their first parents by up
   * to this many days (list and verify report them as broken chains).
   */
  readonly warnings: readonly string[];
}

const DAY = 1440;

/**
 * Check that the retention keeps every base as long as its dependants and the point-in-time
 * window need it. Throws ConfigError listing each violation with the setting to change;
 * returns the required lifetimes and warnings otherwise. Pure: schedules are laid out over two
 * calendar years (UTC).
 */
export function checkChainRetention(props: ChainRetentionProps): ChainRetentionResult {
  const what = props.what ?? 'retention';
  const window = props.pointInTimeDays ?? 0;
  if (!Number.isFinite(window) || window < 0) throw new ConfigError(`${what}: pointInTimeDays is ${window}; give 0 (no point-in-time recovery) or a positive number of days.`);
  if (props.fullSchedules.length === 0) {
    if (window > 0 || (props.incrementalSchedules?.length ?? 0) + (props.differentialSchedules?.length ?? 0) > 0) {
      throw new ConfigError(`${what}: incremental, differential backups and point-in-time recovery need scheduled full backups as their base; add a full backup schedule.`);
    }
    return { requiredFullDays: 0, requiredLogArchiveDays: 0, warnings: [] };
  }
  const fullRuns = runs(props.fullSchedules);
  const incRuns = runs(props.incrementalSchedules ?? []);
  const diffRuns = runs(props.differentialSchedules ?? []);
  if (fullRuns === undefined || incRuns === undefined || diffRuns === undefined) {
    return { requiredFullDays: 0, requiredLogArchiveDays: 0, warnings: [`${what}: a schedule uses a day pattern (L, W, #) that the chain retention check does not evaluate; check by hand that full backups outlive their dependants.`] };
  }
  const lifetimeOf = new Map<RetentionTier, number>(props.retention.lifetimes.map((l) => [l.tier, l.days * DAY]));
  const daily = lifetimeOf.get(RetentionTier.DAILY)!;
  const dependants = [...incRuns, ...diffRuns].sort((a, b) => a - b);

  // Tier each full as the runner does (counting earlier fulls only).
  const existing: Date[] = [];
  const violations = new Map<string, { tier: RetentionTier; have: number; need: number; depSpan: number; gap: number }>();
  let requiredFull = 0;
  let requiredLogs = 0;
  let longestIncrementalTail = 0;
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
    const incs = between(incRuns, at, next);
    if (incs.length > 1) longestIncrementalTail = Math.max(longestIncrementalTail, incs[incs.length - 1] - incs[0]);
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
    if (v.depSpan > 0) reasons.push(`its incremental/differential backups are taken up to ${humanDays(v.depSpan)} after it and each is kept ${days(daily)} days (daily tier)`);
    if (window > 0) reasons.push(`the ${window}-day point-in-time window restores moments up to the next full (${humanDays(v.gap)} later) from it`);
    const needDays = days(v.need);
    let fix: string;
    if (v.tier === RetentionTier.DAILY && v.depSpan > 0) {
      fix = `a full backup in the daily tier (a second full in the same ISO week) cannot outlive its own daily dependants; schedule at most one full backup per ISO week and keep weekly retention (weekly ≥ ${Math.ceil(needDays / 7)}), or take no incremental/differential backups`;
    } else if (v.tier === RetentionTier.DAILY) {
      fix = `raise ${what} daily to at least ${needDays} days, or take full backups more often`;
    } else if (v.tier === RetentionTier.WEEKLY) {
      fix = `raise ${what} weekly to at least ${Math.ceil(needDays / 7)} (${Math.ceil(needDays / 7) * 7} days), or take full backups more often`;
    } else {
      fix = `raise ${what} monthly to at least ${Math.ceil(needDays / 31)}, or take full backups more often`;
    }
    problems.push(`a full backup in the ${v.tier} tier is kept ${days(v.have)} days but must stay ${needDays} days: ${reasons.join(', and ')}. Fix: ${fix}.`);
  }
  if (window > 0 && props.logArchiveDays !== undefined && props.logArchiveDays * DAY < requiredLogs) {
    problems.push(
      `the log archive keeps logs ${props.logArchiveDays} days but the ${window}-day point-in-time window needs ${days(requiredLogs)}: a moment just before a full backup (full backups run up to ${humanDays(requiredLogs - window * DAY)} apart: ${props.fullSchedules.map(awsCronExpression).join(', ')}) is replayed from the full before it. Fix: raise logArchiveDays to at least ${days(requiredLogs)}, or take full backups more often.`,
    );
  }
  if (problems.length > 0) throw new ConfigError(`${what}: ${problems.join(' ')}`);
  const warnings: string[] = [];
  if (longestIncrementalTail > 0) {
    warnings.push(
      `${what}: incremental backups each depend on the one before; the lifecycle expires the oldest first, so the last incremental of a cycle cannot be restored during its last ${humanDays(longestIncrementalTail)} (list and verify report it as a broken chain). Differential backups (each depends only on its full) do not have this limit.`,
    );
  }
  return { requiredFullDays: days(requiredFull), requiredLogArchiveDays: days(requiredLogs), warnings };
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

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** Every run of the schedules over two calendar years from 2024-01-01 (UTC), in minutes since the epoch, sorted; undefined for L/W/# day patterns. */
function runs(crons: readonly CronSpec[]): number[] | undefined {
  const start = Date.UTC(2024, 0, 1);
  const out = new Set<number>();
  for (const c of crons) {
    if (/[LW#]/i.test(c.day) || /[LW#]/i.test(c.weekDay)) return undefined;
    const minutes = values(c.minute, 0, 59);
    const hours = values(c.hour, 0, 23);
    const dom = c.day === '?' || c.day === '*' ? undefined : new Set(values(c.day, 1, 31));
    const months = c.month === '*' ? undefined : new Set(values(c.month.toUpperCase().replace(/[A-Z]{3}/g, (m) => String(MONTHS.indexOf(m) + 1)), 1, 12));
    const dow = c.weekDay === '?' || c.weekDay === '*' ? undefined : new Set(values(c.weekDay.toUpperCase().replace(/[A-Z]{3}/g, (d) => String(DAYS.indexOf(d) + 1)), 1, 7));
    for (let d = 0; d < 731; d++) {
      const date = new Date(start + d * 86_400_000);
      if (months !== undefined && !months.has(date.getUTCMonth() + 1)) continue;
      if (dom !== undefined && !dom.has(date.getUTCDate())) continue;
      if (dow !== undefined && !dow.has(date.getUTCDay() + 1)) continue;
      for (const h of hours) for (const m of minutes) out.add(start / 60000 + d * DAY + h * 60 + m);
    }
  }
  return [...out].sort((a, b) => a - b);
}

function values(field: string, lo: number, hi: number): number[] {
  const out = new Set<number>();
  for (const part of field.split(',')) {
    const m = /^(\*|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(part);
    if (m === null) continue;
    const first = m[1] === '*' ? lo : Number(m[1]);
    const last = m[2] !== undefined ? Number(m[2]) : m[1] === '*' || m[3] !== undefined ? hi : first;
    const step = m[3] !== undefined ? Number(m[3]) : 1;
    for (let v = first; v <= last; v += step) out.add(v);
  }
  return [...out].sort((a, b) => a - b);
}
