/**
 * The retention simulator: lays the backup schedules out over two years of days, tiers each
 * backup the way the runner does, expires objects the way the storage's lifecycle rules do, and
 * checks at every moment something expires that
 * - every backup still stored is restorable (every backup of its chain is still there), and
 * - every moment of the promised point-in-time window is reachable (a full backup before it,
 *   still stored, and the logs from that full on).
 *
 * It takes the lifecycle rules in a cloud-neutral form (days per tier, days per log prefix) that
 * the CDK and CDKTF vaults produce from what they synthesize, so the constructs prove at synth
 * that the rules they emit keep what they promise. The same walk answers "how much will this
 * keep": the backups per tier and the bytes at the end of the walk (the steady state).
 *
 * Time: schedules fire in their time zone (offsets from Intl.DateTimeFormat, so DST changes are
 * walked: a run in the skipped spring hour does not happen, a run in the repeated autumn hour
 * happens once); tiers are calendar months and ISO weeks in UTC, as the runner assigns them
 * (lib/core/retention.ts); lifecycle timing as `LifecycleTiming` describes.
 */
import { cronMatcher } from './checks';
import { ConfigError } from './errors';
import { BackupType, RetentionTier } from './model';
import { assignTier, expiryWindow, LifecycleTiming, planChainTiers, Retention, TIERS_BY_LIFETIME } from './retention';
import { awsCronExpression, CronSpec } from './schedule';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** One schedule of backups. */
export interface SimulatedSchedule {
  readonly type: BackupType;
  readonly cron: CronSpec;
}

/** The lifecycle rules of a vault, as synthesized, in a form both clouds share. */
export interface LifecycleRuleSet {
  /** Days each tier's rule keeps a backup. A tier missing here is never expired. */
  readonly tierDays: Readonly<Partial<Record<RetentionTier, number>>>;
  /**
   * Days the rule on each log archive prefix keeps a log object (e.g. `{ 'binlog/': 40 }`).
   * @default - no rule: logs are never expired
   */
  readonly logPrefixDays?: Readonly<Record<string, number>>;
  /** @default LifecycleTiming.S3 */
  readonly timing?: LifecycleTiming;
}

/** Bytes stored per backup, for the storage estimate. */
export interface SimulatedSizes {
  /** @default 0 */
  readonly full?: number;
  /** @default 0 */
  readonly incremental?: number;
  /** @default 0 */
  readonly differential?: number;
  /** Bytes of logs archived per day. @default 0 */
  readonly logPerDay?: number;
}

/** What to simulate. */
export interface SimulateProps {
  readonly schedules: readonly SimulatedSchedule[];
  /** Which tiers the runner assigns (a tier with count 0 is never assigned). */
  readonly retention: Retention;
  readonly rules: LifecycleRuleSet;
  /** The promised point-in-time window in days. @default 0 - none */
  readonly pointInTimeDays?: number;
  /** The log prefix the window replays from (a key of `rules.logPrefixDays`). @default - the only one there */
  readonly logPrefix?: string;
  /** The IANA time zone the schedules fire in. @default 'UTC' */
  readonly timeZone?: string;
  /** Whether the runner may raise a base's tier (S3 tags: yes; GCS tier folders: no). @default - timing is S3 */
  readonly raiseBaseTiers?: boolean;
  /** The first day walked (UTC midnight). @default 2026-01-01 (2026 has an ISO week 53) */
  readonly start?: Date;
  /** Days walked. @default 731 */
  readonly days?: number;
  readonly sizes?: SimulatedSizes;
  /** The setting being checked, for messages. @default 'retention' */
  readonly what?: string;
}

/** One simulated backup. */
export interface SimulatedBackup {
  readonly id: string;
  readonly type: BackupType;
  readonly at: Date;
  /** The tier at the end of the walk (a base may have been raised). */
  readonly tier: RetentionTier;
  /** The tier it was written with. */
  readonly writtenTier: RetentionTier;
  /** Every backup it needs to be restored, full first. */
  readonly chain: readonly string[];
  /** When lifecycle may first / will last remove it (undefined: never). */
  readonly expires?: { readonly earliest: Date; readonly latest: Date };
}

/** The first thing that would break. */
export interface SimulationBreak {
  /** `YYYY-MM-DD` (UTC). */
  readonly day: string;
  /** The backup that can no longer be restored, or the full backup the window's oldest moment needed. */
  readonly backup: string;
  readonly reason: string;
}

/** What the walk found. */
export interface SimulationResult {
  readonly ok: boolean;
  /** The earliest break, if any. */
  readonly firstBreak?: SimulationBreak;
  /** Breaks found, earliest first (at most 20). */
  readonly breaks: readonly SimulationBreak[];
  readonly backups: readonly SimulatedBackup[];
  /** The longest time between two full backups, in minutes (0 with fewer than two). */
  readonly longestFullGapMinutes: number;
  /**
   * Days a log object must be kept for the window: window + the longest gap between fulls,
   * rounded up (0 without a window). The vaults' rules add `LOG_RULE_SLACK_DAYS`.
   */
  readonly requiredLogDays: number;
  /** What is stored at the end of the walk. */
  readonly steadyState: {
    readonly backupsPerTier: Readonly<Record<RetentionTier, number>>;
    readonly bytesPerTier: Readonly<Record<RetentionTier, number>>;
    /** Days of logs kept (the whole walk when no rule expires them). */
    readonly logDays: number;
    readonly logBytes: number;
    readonly totalBytes: number;
    /** True when no rule expires the logs: they grow for ever. */
    readonly logsUnbounded: boolean;
  };
}

/** The day of slack a log archive's lifecycle rule keeps beyond what the window needs (upload lag, lifecycle lag). */
export const LOG_RULE_SLACK_DAYS = 1;

/**
 * Days each log object is needed: a moment at the window's far end replays from the newest full
 * before it, up to the longest gap between fulls earlier, so that full's logs must last
 * window + gap (0 without a window).
 */
export function requiredLogArchiveDays(windowDays: number, longestFullGapMinutes: number): number {
  return windowDays > 0 ? Math.ceil(windowDays + longestFullGapMinutes / 1440 - 1e-9) : 0;
}

/** The days of the lifecycle rule on a log archive prefix: what the window needs plus the slack. */
export function logArchiveRuleDays(windowDays: number, longestFullGapMinutes: number): number {
  return windowDays > 0 ? requiredLogArchiveDays(windowDays, longestFullGapMinutes) + LOG_RULE_SLACK_DAYS : 0;
}

/**
 * Every run of the schedules between `startMs` and `endMs`, in ms since the epoch (UTC), sorted,
 * deduplicated per type.
 */
export function scheduleRuns(crons: readonly CronSpec[], startMs: number, endMs: number, timeZone = 'UTC'): number[] {
  const out = new Set<number>();
  checkZone(timeZone);
  for (const c of crons) {
    const m = cronMatcher(c, true);
    if (m === undefined)
      throw new ConfigError(`the schedule ${awsCronExpression(c)} cannot be laid out; give plain cron fields.`);
    // Local calendar days, one before and after, so zones far from UTC lose no run at the edges.
    for (let d = startMs - DAY_MS; d < endMs + DAY_MS; d += DAY_MS) {
      const date = new Date(d);
      if (!m.matchesDay(date)) continue;
      for (const minute of m.times) {
        const utc = localToUtc(timeZone, d + minute * MINUTE_MS);
        if (utc !== undefined && utc >= startMs && utc < endMs) out.add(utc);
      }
    }
  }
  return [...out].sort((a, b) => a - b);
}

/** Walk the schedules, tiers and lifecycle rules; see the file's comment. */
export function simulateRetention(props: SimulateProps): SimulationResult {
  const what = props.what ?? 'retention';
  const window = props.pointInTimeDays ?? 0;
  if (!Number.isFinite(window) || window < 0) {
    throw new ConfigError(
      `${what}: pointInTimeDays is ${window}; give 0 (no point-in-time recovery) or a positive number of days.`,
    );
  }
  const timing = props.rules.timing ?? LifecycleTiming.S3;
  const canRaise = props.raiseBaseTiers ?? timing === LifecycleTiming.S3;
  const startMs = Math.floor((props.start ?? new Date(Date.UTC(2026, 0, 1))).getTime() / DAY_MS) * DAY_MS;
  const endMs = startMs + (props.days ?? 731) * DAY_MS;
  const tierDays = props.rules.tierDays;
  const logDays = logRuleDays(props, window, what);

  // Every run, in time order; at the same minute a full runs before its dependants.
  const order = [BackupType.FULL, BackupType.DIFFERENTIAL, BackupType.INCREMENTAL];
  const events: { at: number; type: BackupType }[] = [];
  for (const type of order) {
    const crons = props.schedules.filter((s) => s.type === type).map((s) => s.cron);
    for (const at of scheduleRuns(crons, startMs, endMs, props.timeZone)) events.push({ at, type });
  }
  events.sort((a, b) => a.at - b.at || order.indexOf(a.type) - order.indexOf(b.type));

  interface Sim {
    id: string;
    type: BackupType;
    at: number;
    tier: RetentionTier;
    writtenTier: RetentionTier;
    chain: Sim[];
  }
  const backups: Sim[] = [];
  const fulls: Sim[] = [];
  const monthly = props.retention.monthly > 0;
  const weekly = props.retention.weekly > 0;
  let last: Sim | undefined;
  for (const e of events) {
    const id = `${new Date(e.at).toISOString().slice(0, 16)}Z-${e.type}`;
    if (e.type === BackupType.FULL) {
      // The runner counts committed fulls of this month and the last 8 days.
      const recent = fulls.filter((f) => e.at - f.at < 40 * DAY_MS).map((f) => new Date(f.at));
      const tier = assignTier(new Date(e.at), recent, monthly, weekly);
      const b: Sim = { id, type: e.type, at: e.at, tier, writtenTier: tier, chain: [] };
      fulls.push(b);
      backups.push(b);
      last = b;
      continue;
    }
    const full = fulls[fulls.length - 1];
    if (full === undefined || last === undefined) continue; // the runner refuses a dependant without a full
    const chain = e.type === BackupType.DIFFERENTIAL ? [full] : [...last.chain, last];
    const plan = planChainTiers(
      new Date(e.at),
      chain.map((c) => ({ id: c.id, tier: c.tier, startedAt: new Date(c.at) })),
      { tierDays, canRaise, timing },
    );
    for (const r of plan.raise) chain.find((c) => c.id === r.id)!.tier = r.to;
    const b: Sim = { id, type: e.type, at: e.at, tier: plan.tier, writtenTier: plan.tier, chain };
    backups.push(b);
    last = b;
  }

  const expiry = (b: Sim) =>
    tierDays[b.tier] === undefined ? undefined : expiryWindow(b.at, tierDays[b.tier]!, timing);
  const breaks: { at: number; brk: SimulationBreak }[] = [];
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

  // 1. Chains: a dependant that may still be stored needs each base surely stored.
  for (const b of backups) {
    const mine = expiry(b);
    for (const base of b.chain) {
      const theirs = expiry(base);
      if (theirs === undefined || theirs.earliest >= endMs) continue;
      if (mine !== undefined && mine.latest <= theirs.earliest) continue;
      breaks.push({
        at: theirs.earliest,
        brk: {
          day: day(theirs.earliest),
          backup: b.id,
          reason:
            `${b.id} (${b.tier}${mine === undefined ? ', never expired' : `, kept until ${day(mine.latest)}`}) needs ` +
            `${base.id} ` +
            `(${base.tier}, ${tierDays[base.tier]} days), which lifecycle removes on ${day(theirs.earliest)}`,
        },
      });
      break;
    }
  }

  // 2. The window: at each moment something expires (and each midnight), its oldest moment must be reachable.
  let longestFullGap = 0;
  for (let i = 1; i < fulls.length; i++) longestFullGap = Math.max(longestFullGap, fulls[i].at - fulls[i - 1].at);
  if (window > 0 && fulls.length > 0) {
    const logGone = (b: Sim) => (logDays === undefined ? Infinity : expiryWindow(b.at, logDays, timing).earliest);
    const instants = new Set<number>();
    for (let d = startMs; d < endMs; d += DAY_MS) instants.add(d);
    for (const f of fulls) {
      const e = expiry(f);
      if (e !== undefined) instants.add(e.earliest);
      if (logGone(f) !== Infinity) instants.add(logGone(f));
    }
    const fullAt = fulls.map((f) => f.at);
    for (const now of [...instants].filter((t) => t < endMs).sort((a, b) => a - b)) {
      const oldest = Math.max(now - window * DAY_MS, fulls[0].at);
      if (oldest > now) continue;
      let i = upperBound(fullAt, oldest) - 1;
      const newest = fulls[i];
      let found = false;
      for (; i >= 0 && logGone(fulls[i]) > now; i--) {
        const e = expiry(fulls[i]);
        if (e === undefined || e.earliest > now) {
          found = true;
          break;
        }
      }
      if (found) continue;
      const gone = expiry(newest);
      const cause =
        logGone(newest) <= now
          ? `the logs since it (${logDays} days under ${logPrefixOf(props)}) are gone`
          : `it (${newest.tier}, ${tierDays[newest.tier]} days) was removed on ${day(gone!.earliest)} and no older ` +
            'full with logs remains';
      breaks.push({
        at: now,
        brk: {
          day: day(now),
          backup: newest.id,
          reason:
            `${new Date(oldest).toISOString()}, inside the ${window}-day window, replays from ${newest.id}, ` +
            `but ${cause}`,
        },
      });
      break; // the first is what matters; later ones repeat it
    }
  }
  breaks.sort((a, b) => a.at - b.at);

  // 3. What is stored at the end.
  const sizes = props.sizes ?? {};
  const sizeOf = (t: BackupType) =>
    (t === BackupType.FULL ? sizes.full : t === BackupType.INCREMENTAL ? sizes.incremental : sizes.differential) ?? 0;
  const backupsPerTier = { [RetentionTier.DAILY]: 0, [RetentionTier.WEEKLY]: 0, [RetentionTier.MONTHLY]: 0 };
  const bytesPerTier = { [RetentionTier.DAILY]: 0, [RetentionTier.WEEKLY]: 0, [RetentionTier.MONTHLY]: 0 };
  for (const b of backups) {
    const e = expiry(b);
    if (e !== undefined && e.latest <= endMs) continue;
    backupsPerTier[b.tier]++;
    bytesPerTier[b.tier] += sizeOf(b.type);
  }
  const walked = (endMs - startMs) / DAY_MS;
  const keptLogDays = window === 0 ? 0 : logDays === undefined ? walked : Math.min(walked, logDays + 1);
  const logBytes = keptLogDays * (sizes.logPerDay ?? 0);
  const requiredLogDays = requiredLogArchiveDays(window, longestFullGap / MINUTE_MS);
  return {
    ok: breaks.length === 0,
    firstBreak: breaks[0]?.brk,
    breaks: breaks.slice(0, 20).map((b) => b.brk),
    backups: backups.map((b) => {
      const e = expiry(b);
      return {
        id: b.id,
        type: b.type,
        at: new Date(b.at),
        tier: b.tier,
        writtenTier: b.writtenTier,
        chain: b.chain.map((c) => c.id),
        expires: e === undefined ? undefined : { earliest: new Date(e.earliest), latest: new Date(e.latest) },
      };
    }),
    longestFullGapMinutes: longestFullGap / MINUTE_MS,
    requiredLogDays,
    steadyState: {
      backupsPerTier,
      bytesPerTier,
      logDays: keptLogDays,
      logBytes,
      totalBytes: TIERS_BY_LIFETIME.reduce((s, t) => s + bytesPerTier[t], 0) + logBytes,
      logsUnbounded: window > 0 && logDays === undefined,
    },
  };
}

/** Simulate, and throw a ConfigError naming the first day and backup that would break. */
export function assertRetentionKeepsChains(props: SimulateProps): SimulationResult {
  const r = simulateRetention(props);
  if (r.firstBreak !== undefined) {
    const what = props.what ?? 'retention';
    const fix =
      (props.pointInTimeDays ?? 0) > 0 && r.firstBreak.reason.includes('window')
        ? `keep full backups (their tier) and logs at least ${r.requiredLogDays} days, shorten the window, or take ` +
          'full backups more often'
        : 'keep full backups in a tier that outlives their dependants (one full per ISO week keeps it weekly), take ' +
          'differential instead of incremental backups, or raise the daily retention';
    throw new ConfigError(
      `${what}: on ${r.firstBreak.day} backup ${r.firstBreak.backup} would break: ${r.firstBreak.reason}. Fix: ${fix}.`,
    );
  }
  return r;
}

function logRuleDays(props: SimulateProps, window: number, what: string): number | undefined {
  const rules = props.rules.logPrefixDays ?? {};
  if (window === 0) return undefined;
  const prefix = props.logPrefix ?? (Object.keys(rules).length === 1 ? Object.keys(rules)[0] : undefined);
  if (prefix === undefined) {
    if (Object.keys(rules).length > 1)
      throw new ConfigError(
        `${what}: several log prefixes have rules (${Object.keys(rules).join(', ')}); say which one the window ` +
          'replays (logPrefix).',
      );
    return undefined;
  }
  return rules[prefix];
}

function logPrefixOf(props: SimulateProps): string {
  return props.logPrefix ?? Object.keys(props.rules.logPrefixDays ?? {})[0] ?? 'the log prefix';
}

function upperBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const formats = new Map<string, Intl.DateTimeFormat>();

function checkZone(zone: string): void {
  try {
    formatFor(zone);
  } catch {
    throw new ConfigError(`time zone '${zone}' is not an IANA time zone; give one like 'Europe/Berlin' or 'UTC'.`);
  }
}

function formatFor(zone: string): Intl.DateTimeFormat {
  let f = formats.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
    formats.set(zone, f);
  }
  return f;
}

/** The zone's offset from UTC at a UTC instant, in ms (local = utc + offset). */
export function zoneOffsetMs(zone: string, utcMs: number): number {
  if (zone === 'UTC' || zone === 'Etc/UTC') return 0;
  const p: Record<string, number> = {};
  for (const part of formatFor(zone).formatToParts(new Date(utcMs)))
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  const local = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute);
  return local - Math.floor(utcMs / MINUTE_MS) * MINUTE_MS;
}

/**
 * The UTC instant of a wall-clock time in a zone (`localMs`: the wall clock read as UTC):
 * undefined when the clock skips it (spring forward), the earlier one when it repeats (autumn).
 */
export function localToUtc(zone: string, localMs: number): number | undefined {
  if (zone === 'UTC' || zone === 'Etc/UTC') return localMs;
  const offsets = new Set([zoneOffsetMs(zone, localMs - DAY_MS), zoneOffsetMs(zone, localMs + DAY_MS)]);
  const valid = [...offsets].map((o) => localMs - o).filter((utc) => utc + zoneOffsetMs(zone, utc) === localMs);
  return valid.length === 0 ? undefined : Math.min(...valid);
}

/** What `logArchiveExpiry` needs. */
export interface LogArchiveExpiryProps {
  readonly retention: Retention;
  readonly fullSchedules: readonly CronSpec[];
  /** The promised window in days. @default - none: logs serve any kept full */
  readonly pointInTimeDays?: number;
  /** @default 'UTC' */
  readonly timeZone?: string;
}

/**
 * The days of the lifecycle rule on a log archive prefix, one rule for every flavour. With a
 * window: window + the longest gap between fulls (laid out over two years in the time zone) +
 * `LOG_RULE_SLACK_DAYS`. Without one, a log is kept as long as the longest-kept full that may
 * replay it: the longest tier + the gap + the slack. Undefined when no full is scheduled by cron.
 */
export function logArchiveExpiry(
  props: LogArchiveExpiryProps,
): { days: number; longestFullGapMinutes: number } | undefined {
  if (props.fullSchedules.length === 0) return undefined;
  const start = Date.UTC(2026, 0, 1);
  const runs = scheduleRuns(props.fullSchedules, start, start + 731 * DAY_MS, props.timeZone);
  if (runs.length === 0) return undefined;
  let gap = runs.length === 1 ? 731 * DAY_MS : 0;
  for (let i = 1; i < runs.length; i++) gap = Math.max(gap, runs[i] - runs[i - 1]);
  const gapMinutes = gap / MINUTE_MS;
  const window = props.pointInTimeDays ?? 0;
  const days =
    window > 0
      ? logArchiveRuleDays(window, gapMinutes)
      : requiredLogArchiveDays(props.retention.maxDays, gapMinutes) + LOG_RULE_SLACK_DAYS;
  return { days, longestFullGapMinutes: gapMinutes };
}
