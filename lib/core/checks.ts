/**
 * Deployment checks shared by the AWS CDK constructs and the CDKTF constructs (AWS and Google),
 * so both report the same mistake with the same message: the value received and the fix.
 * Callers skip values that are unresolved tokens; these functions see literals only.
 */
import { ConfigError } from './errors';
import { Retention } from './retention';
import { CronSpec } from './schedule';

/**
 * Check a database identifier: it names the metric dimension (`DBBACKUP_DATABASE_ID`) and is
 * part of resource names (roles, jobs, schedules, alarms), so it is kept to a portable alphabet.
 */
export function validateDatabaseId(id: string, what = 'databaseId'): void {
  if (!/^[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$/.test(id)) {
    throw new ConfigError(
      `${what} '${id}' is not a valid database id. Use 1 to 40 lower-case letters, digits and hyphens, starting with ` +
        `a letter and not ending with a hyphen (e.g. 'orders-prod').`,
    );
  }
}

/**
 * Check the key prefix backups of one database are stored under (`--to s3://bucket/PREFIX`).
 * Empty is allowed (the bucket's top); otherwise `/`-separated segments of safe characters.
 */
export function validateStoragePrefix(prefix: string, what = 'prefix'): void {
  const fix =
    `Use '/'-separated segments of letters, digits, '.', '_' and '-', without a leading or trailing '/' ` +
    `(e.g. 'postgres/orders').`;
  if (prefix === '') return;
  if (prefix.length > 512)
    throw new ConfigError(
      `${what} '${prefix.slice(0, 40)}…' is ${prefix.length} characters long; keep it under 512. ${fix}`,
    );
  const segments = prefix.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..' || !/^[A-Za-z0-9._-]+$/.test(s))) {
    throw new ConfigError(`${what} '${prefix}' is not a valid storage prefix. ${fix}`);
  }
}

/** Check an IANA time zone name (`Europe/Berlin`, `UTC`) as schedulers take it. */
export function validateTimeZone(timeZone: string, what = 'timeZone'): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new ConfigError(
      `${what} '${timeZone}' is not a time zone. Use an IANA name such as 'UTC', 'Europe/Berlin' or ` +
        `'America/New_York'.`,
    );
  }
  if (!timeZone.includes('/') && timeZone !== 'UTC' && timeZone !== 'Etc/UTC') {
    throw new ConfigError(
      `${what} '${timeZone}' is an abbreviation, which schedulers reject. Use an IANA name such as 'UTC' or ` +
        `'Europe/Berlin'.`,
    );
  }
}

/** How `longestScheduleGapMinutes` lays the schedules out. */
export interface GapOptions {
  /** Calendar years to walk (UTC, from 2024). @default - two years (731 days) */
  readonly years?: number;
  /** Evaluate `L`, `LW`, `nW`, `n#k` and `nL` day patterns. @default false (such schedules give undefined) */
  readonly dayPatterns?: boolean;
}

/**
 * The longest time between two consecutive runs of the given cron schedules taken together,
 * in minutes, found by laying them out over calendar years (UTC). Undefined when no schedule
 * fires, or when a schedule uses a day pattern (`L`, `W`, `#`) and `dayPatterns` is off.
 */
export function longestScheduleGapMinutes(crons: readonly CronSpec[], options: GapOptions = {}): number | undefined {
  if (crons.length === 0) return undefined;
  const parsed = crons.map((c) => cronMatcher(c, options.dayPatterns === true));
  if (parsed.some((p) => p === undefined)) return undefined;
  const start = Date.UTC(2024, 0, 1);
  const days = options.years !== undefined ? options.years * 366 : 731;
  let last: number | undefined;
  let first: number | undefined;
  let longest = 0;
  for (let d = 0; d < days; d++) {
    const date = new Date(start + d * 86_400_000);
    const minutes = new Set<number>();
    for (const p of parsed) {
      if (p!.matchesDay(date)) for (const m of p!.times) minutes.add(m);
    }
    for (const m of [...minutes].sort((a, b) => a - b)) {
      const t = d * 1440 + m;
      if (last !== undefined) longest = Math.max(longest, t - last);
      first ??= t;
      last = t;
    }
  }
  if (last === undefined || first === undefined) return undefined;
  if (first === last) return days * 1440;
  return longest;
}

/**
 * Check a write lock (S3 Object Lock default retention, GCS bucket retention policy) against
 * the retention tiers: a lock longer than a tier's lifetime keeps that tier's backups (and
 * their cost) until the lock ends, which is not the retention asked for.
 */
export function validateLockRetention(lockDays: number, retention: Retention, what = 'lock'): void {
  const shortest = Math.min(...retention.lifetimes.map((t) => t.days));
  if (lockDays <= shortest) return;
  const tiers = retention.lifetimes.filter((t) => t.days < lockDays).map((t) => `${t.tier} (${t.days} days)`);
  throw new ConfigError(
    `${what} of ${lockDays} days outlives the retention of ${tiers.join(', ')}: the lifecycle rules could not remove ` +
      `those backups before the lock ends. Lower ${what} to at most ${shortest} days or keep those tiers longer.`,
  );
}

/** Check a write-lock period in days. */
export function validateLockDays(days: number, what = 'lock'): void {
  if (!Number.isInteger(days) || days < 1 || days > 36500) {
    throw new ConfigError(`${what} is ${days} days; give a whole number of days from 1 to 36500.`);
  }
}

/** `90 minutes`, `25 hours`, `7 days`. */
export function humanMinutes(minutes: number): string {
  if (minutes % 1440 === 0) return `${minutes / 1440} day${minutes === 1440 ? '' : 's'}`;
  if (minutes % 60 === 0) return `${minutes / 60} hour${minutes === 60 ? '' : 's'}`;
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

export interface CronMatcher {
  readonly times: readonly number[];
  matchesDay(date: Date): boolean;
}

/** Day matching for a checked spec (parseCron has already validated the fields); times are minutes of the day. */
export function cronMatcher(c: CronSpec, dayPatterns: boolean): CronMatcher | undefined {
  if (!dayPatterns && (/[LW#]/i.test(c.day) || /[LW#]/i.test(c.weekDay))) return undefined;
  const minutes = values(c.minute, 0, 59);
  const hours = values(c.hour, 0, 23);
  const times = hours.flatMap((h) => minutes.map((m) => h * 60 + m));
  const months =
    c.month === '*'
      ? undefined
      : new Set(
          values(
            c.month.toUpperCase().replace(/[A-Z]{3}/g, (m) => String(MONTHS.indexOf(m) + 1)),
            1,
            12,
          ),
        );
  return {
    times,
    matchesDay: (date) =>
      (months === undefined || months.has(date.getUTCMonth() + 1)) &&
      dayMatches(c.day, date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()) &&
      weekDayMatches(c.weekDay, date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()),
  };
}

function daysInMonth(y: number, m0: number): number {
  return new Date(Date.UTC(y, m0 + 1, 0)).getUTCDate();
}

/** Does the day-of-month field match this date? (`L`, `LW` and `nW` are taken as the day they name.) */
function dayMatches(field: string, y: number, m0: number, d: number): boolean {
  if (field === '*' || field === '?') return true;
  const last = daysInMonth(y, m0);
  return field.split(',').some((part) => {
    if (part === 'L' || part === 'LW') return d === last;
    const w = /^(\d+)W$/.exec(part);
    if (w) return d === Math.min(Number(w[1]), last);
    return values(part, 1, 31).includes(d);
  });
}

/** Does the day-of-week field (1 = Sunday) match this date? Handles `n#k` and `nL`. */
function weekDayMatches(field: string, y: number, m0: number, d: number): boolean {
  if (field === '*' || field === '?') return true;
  const dow = new Date(Date.UTC(y, m0, d)).getUTCDay() + 1;
  const upper = field.toUpperCase().replace(/[A-Z]{3}/g, (n) => String(DAYS.indexOf(n) + 1));
  return upper.split(',').some((part) => {
    const nth = /^(\d)#(\d)$/.exec(part);
    if (nth) return dow === Number(nth[1]) && Math.ceil(d / 7) === Number(nth[2]);
    const lastOf = /^(\d)L$/.exec(part);
    if (lastOf) return dow === Number(lastOf[1]) && d > daysInMonth(y, m0) - 7;
    if (part === 'L') return dow === 7;
    return values(part, 1, 7).includes(dow);
  });
}

function values(field: string, lo: number, hi: number): number[] {
  const out = new Set<number>();
  for (const part of field.split(',')) {
    const m = /^(\*|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(part);
    if (m === null) continue;
    const start = m[1] === '*' ? lo : Number(m[1]);
    const end = m[2] !== undefined ? Number(m[2]) : m[1] === '*' || m[3] !== undefined ? hi : start;
    const step = m[3] !== undefined ? Number(m[3]) : 1;
    for (let v = start; v <= end; v += step) out.add(v);
  }
  return [...out].sort((a, b) => a - b);
}
