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
    for (const [name, value] of [
      ['daily', daily],
      ['weekly', weekly],
      ['monthly', monthly],
    ] as const) {
      if (!Number.isInteger(value) || value < 0) {
        throw new ConfigError(`retention ${name} is ${value}; it must be a whole number of backups, 0 or more.`);
      }
    }
    if (daily < 1) {
      throw new ConfigError(
        `retention daily is ${daily}; every backup is daily until it is promoted, so keep at least 1 (e.g. ` +
          'Retention.gfs({ daily: 7 })).',
      );
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

  /** The runner's `--tier-days` setting: the days each tier's lifecycle rule keeps a backup. */
  public get tierDaysSetting(): string {
    return this.lifetimes.map((l) => `${l.tier}=${l.days}`).join(',');
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

/**
 * When lifecycle rules remove objects. S3 adds the rule's days to the object's creation time
 * and rounds up to the next midnight UTC, all objects of that day at once. GCS deletes an
 * object once it is that many days old, asynchronously (up to a day later): no order within
 * that day is promised.
 */
export enum LifecycleTiming {
  S3 = 's3',
  GCS = 'gcs',
}

const DAY_MS = 86_400_000;

/**
 * The earliest and latest moments (ms since the epoch) a `days`-day lifecycle rule removes an
 * object created at `createdMs`.
 */
export function expiryWindow(
  createdMs: number,
  days: number,
  timing: LifecycleTiming,
): { earliest: number; latest: number } {
  if (timing === LifecycleTiming.S3) {
    const at = Math.floor(createdMs / DAY_MS) * DAY_MS + (days + 1) * DAY_MS;
    return { earliest: at, latest: at };
  }
  return { earliest: createdMs + days * DAY_MS, latest: createdMs + (days + 1) * DAY_MS };
}

/** A stored backup a new one depends on: its id, its tier (as tagged now) and when it started. */
export interface ChainLink {
  readonly id: string;
  readonly tier: RetentionTier;
  readonly startedAt: Date;
}

/** How a dependant backup's chain is kept whole: its own tier, and the bases whose tier must be raised. */
export interface ChainTierPlan {
  /** The dependant's tier: the shortest-lived tier the lifecycle rules have. */
  readonly tier: RetentionTier;
  /** Bases to re-tag with a longer-lived tier (S3: PutObjectTagging on each of their objects). */
  readonly raise: readonly { readonly id: string; readonly from: RetentionTier; readonly to: RetentionTier }[];
  /** Bases that would expire before the dependant and cannot be raised (GCS folders, or no tier lives long enough). */
  readonly unprotected: readonly { readonly id: string; readonly tier: RetentionTier; readonly expires: Date }[];
}

/** What `planChainTiers` needs to know about the storage. */
export interface ChainTierOptions {
  /** Days each tier's lifecycle rule keeps a backup; a tier without a rule is not used for a dependant or a raise. */
  readonly tierDays: Readonly<Partial<Record<RetentionTier, number>>>;
  /** Whether a base's tier can be raised after it was written (S3 tags: yes; GCS tier folders: no). */
  readonly canRaise: boolean;
  readonly timing: LifecycleTiming;
}

/**
 * The tier of an incremental or differential backup made at `at`, and what keeps its chain
 * whole: a dependant goes to the shortest-lived tier (so it expires first wherever it can);
 * each base (`chain`: every backup it needs, full included) that lifecycle would remove while
 * the dependant may still exist is raised to the shortest tier that outlives it, where the
 * storage allows raising, and is reported as unprotected otherwise.
 */
export function planChainTiers(at: Date, chain: readonly ChainLink[], options: ChainTierOptions): ChainTierPlan {
  const tiers = TIERS_BY_LIFETIME.filter((t) => options.tierDays[t] !== undefined).sort(
    (a, b) => options.tierDays[a]! - options.tierDays[b]!,
  );
  const tier = tiers[0] ?? RetentionTier.DAILY;
  const days = options.tierDays[tier];
  const raise: { id: string; from: RetentionTier; to: RetentionTier }[] = [];
  const unprotected: { id: string; tier: RetentionTier; expires: Date }[] = [];
  if (days === undefined) return { tier, raise, unprotected }; // no rules: nothing expires
  // Newest base first: each must outlive everything after it in the chain, raised ones included.
  let mustLast = expiryWindow(at.getTime(), days, options.timing).latest;
  for (const link of [...chain].sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())) {
    const have = options.tierDays[link.tier];
    if (have === undefined) {
      mustLast = Infinity; // never expired: its bases must never be either
      continue;
    }
    const created = link.startedAt.getTime();
    const keeps = (d: number) => expiryWindow(created, d, options.timing);
    if (keeps(have).earliest >= mustLast) {
      mustLast = Math.max(mustLast, keeps(have).latest);
      continue;
    }
    const to = options.canRaise
      ? tiers.find((t) => options.tierDays[t]! > have && keeps(options.tierDays[t]!).earliest >= mustLast)
      : undefined;
    if (to !== undefined) {
      raise.push({ id: link.id, from: link.tier, to });
      mustLast = Math.max(mustLast, keeps(options.tierDays[to]!).latest);
    } else {
      unprotected.push({ id: link.id, tier: link.tier, expires: new Date(keeps(have).earliest) });
      mustLast = Math.max(mustLast, keeps(have).latest);
    }
  }
  return { tier, raise, unprotected };
}

/**
 * Read a `--tier-days` setting (`daily=7,weekly=28,monthly=372`): the days each tier's lifecycle
 * rule keeps a backup.
 */
export function parseTierDays(text: string): Partial<Record<RetentionTier, number>> {
  const out: Partial<Record<RetentionTier, number>> = {};
  for (const part of text.split(',')) {
    const m = /^(daily|weekly|monthly)=(\d+)$/.exec(part.trim());
    if (m === null || Number(m[2]) < 1 || out[m[1] as RetentionTier] !== undefined) {
      throw new ConfigError(
        `--tier-days '${text}' is not valid at '${part}'; give each tier once with its days, e.g. ` +
          'daily=7,weekly=28,monthly=372.',
      );
    }
    out[m[1] as RetentionTier] = Number(m[2]);
  }
  return out;
}
