import { ConfigError } from './errors';
import { RetentionTier } from './model';

/** Properties of a grandfather-father-son retention. */
export interface GfsRetentionProps {
  /**
   * How many daily backups to keep: a daily backup lives this many days.
   * @default 7
   */
  readonly daily?: number;
  /**
   * How many weekly backups to keep: the first backup of each ISO week lives this many weeks.
   * @default 4
   */
  readonly weekly?: number;
  /**
   * How many monthly backups to keep: the first backup of each month lives this many times 31 days.
   * @default 12
   */
  readonly monthly?: number;
}

/** How long a tier's backups live, in whole days (storage lifecycle rules count in days). */
export interface TierLifetime {
  readonly tier: RetentionTier;
  readonly count: number;
  readonly days: number;
}

/**
 * How long backups are kept. The runner assigns each backup to a tier (the first backup of a
 * month is monthly, the first of an ISO week weekly, the others daily) and the storage's
 * lifecycle rules expire each tier: no process ever needs delete rights.
 */
export class Retention {
  /** Keep `daily` days, `weekly` ISO weeks and `monthly` months of backups. */
  public static gfs(props: GfsRetentionProps = {}): Retention {
    return new Retention(props.daily ?? 7, props.weekly ?? 4, props.monthly ?? 12);
  }

  /** Keep every backup for `days` days, in one tier. */
  public static days(days: number): Retention {
    return new Retention(days, 0, 0);
  }

  private constructor(
    public readonly daily: number,
    public readonly weekly: number,
    public readonly monthly: number,
  ) {
    for (const [name, value] of [['daily', daily], ['weekly', weekly], ['monthly', monthly]] as const) {
      if (!Number.isInteger(value) || value < 0) {
        throw new ConfigError(`retention ${name} is ${value}; it must be a whole number of backups, 0 or more.`);
      }
    }
    if (daily < 1) {
      throw new ConfigError(`retention daily is ${daily}; every backup is daily until it is promoted, so keep at least 1 (e.g. Retention.gfs({ daily: 7 })).`);
    }
  }

  /** Each tier that keeps backups, with its lifetime in days. */
  public get lifetimes(): TierLifetime[] {
    const all: TierLifetime[] = [
      { tier: RetentionTier.DAILY, count: this.daily, days: this.daily },
      { tier: RetentionTier.WEEKLY, count: this.weekly, days: this.weekly * 7 },
      { tier: RetentionTier.MONTHLY, count: this.monthly, days: this.monthly * 31 },
    ];
    return all.filter((t) => t.count > 0);
  }

  /** The longest any backup is kept, in days. */
  public get maxDays(): number {
    return Math.max(...this.lifetimes.map((t) => t.days));
  }

  /** The tier a backup made at `at` belongs to, given the start times of the backups already stored. */
  public assignTier(at: Date, existing: Date[]): RetentionTier {
    return assignTier(at, existing, this.monthly > 0, this.weekly > 0);
  }
}

/**
 * The tier of a backup made at `at` (UTC calendar): monthly if no stored backup started in
 * the same month, else weekly if none started in the same ISO week, else daily.
 */
export function assignTier(at: Date, existing: readonly Date[], monthly = true, weekly = true): RetentionTier {
  if (monthly && !existing.some((d) => monthKey(d) === monthKey(at))) return RetentionTier.MONTHLY;
  if (weekly && !existing.some((d) => isoWeekKey(d) === isoWeekKey(at))) return RetentionTier.WEEKLY;
  return RetentionTier.DAILY;
}

/** `YYYY-MM-DD` (UTC). */
export function dayKey(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** `YYYY-MM` (UTC). */
export function monthKey(d: Date): string {
  return d.toISOString().slice(0, 7);
}

/** `YYYY-Www`, the ISO-8601 week (UTC). */
export function isoWeekKey(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const dow = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - dow);
  const yearStart = new Date(Date.UTC(t.getUTCFullYear(), 0, 1));
  const week = Math.ceil(((t.getTime() - yearStart.getTime()) / 86400000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/** Tiers from the shortest-lived to the longest-lived (each tier's lifetime is longer than the one before). */
export const TIERS_BY_LIFETIME: readonly RetentionTier[] = [
  RetentionTier.DAILY,
  RetentionTier.WEEKLY,
  RetentionTier.MONTHLY,
];

/** Whether lifecycle can expire a backup of tier `base` while one of tier `dependant` (made later) still lives. */
export function tierOutlives(dependant: RetentionTier, base: RetentionTier): boolean {
  return TIERS_BY_LIFETIME.indexOf(dependant) > TIERS_BY_LIFETIME.indexOf(base);
}
