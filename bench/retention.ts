// Steady-state storage of the example configuration and a few variants, from the retention
// simulator (lib/core/simulate.ts): two years of backups walked, tiers assigned as the runner
// does, lifecycle rules applied. Run: npx tsx bench/retention.ts [fullGiB] [dependantGiB] [logGiBPerDay]
import { BackupType, RetentionTier } from '../lib/core/model';
import { LifecycleTiming, Retention } from '../lib/core/retention';
import { parseCron } from '../lib/core/schedule';
import { logArchiveRuleDays, simulateRetention, SimulatedSchedule } from '../lib/core/simulate';

const GiB = 1024 ** 3;
const [fullGiB, depGiB, logGiB] = [2, 3, 4].map((i, n) => Number(process.argv[i] ?? [10, 1, 2][n]));
const sizes = { full: fullGiB * GiB, incremental: depGiB * GiB, differential: depGiB * GiB, logPerDay: logGiB * GiB };
const retention = Retention.gfs({ daily: 7, weekly: 4, monthly: 12 });
const tierDays = Object.fromEntries(retention.lifetimes.map((l) => [l.tier, l.days]));
const nightlyFull: SimulatedSchedule = { type: BackupType.FULL, cron: parseCron({ hour: '2', minute: '30' }) };
const sundayFull: SimulatedSchedule = {
  type: BackupType.FULL,
  cron: parseCron({ hour: '2', minute: '30', weekDay: 'SUN' }),
};
const nightlyDiff: SimulatedSchedule = {
  type: BackupType.DIFFERENTIAL,
  cron: parseCron({ hour: '2', minute: '30', weekDay: 'MON-SAT' }),
};

const cases: { name: string; schedules: SimulatedSchedule[]; window: number; timing: LifecycleTiming }[] = [
  {
    name: 'example: nightly full, gfs 7/4/12, no PITR (S3)',
    schedules: [nightlyFull],
    window: 0,
    timing: LifecycleTiming.S3,
  },
  {
    name: 'example + 7-day PITR window (binlog/ rule)',
    schedules: [nightlyFull],
    window: 7,
    timing: LifecycleTiming.S3,
  },
  {
    name: 'Sunday full + nightly differential, 7-day PITR (S3)',
    schedules: [sundayFull, nightlyDiff],
    window: 7,
    timing: LifecycleTiming.S3,
  },
  {
    name: 'Sunday full + nightly differential, 7-day PITR (GCS)',
    schedules: [sundayFull, nightlyDiff],
    window: 7,
    timing: LifecycleTiming.GCS,
  },
];

const fmt = (bytes: number) => `${(bytes / GiB).toFixed(0)} GiB`;
console.log(
  `sizes: full ${fullGiB} GiB, incremental/differential ${depGiB} GiB, logs ${logGiB} GiB/day; retention gfs 7/4/12\n`,
);
for (const c of cases) {
  // The log rule the vaults emit: window + longest gap between fulls + a day of slack.
  const probe = simulateRetention({
    schedules: c.schedules,
    retention,
    rules: { tierDays, timing: c.timing },
    pointInTimeDays: c.window,
  });
  const logDays = logArchiveRuleDays(c.window, probe.longestFullGapMinutes);
  const r = simulateRetention({
    schedules: c.schedules,
    retention,
    rules: { tierDays, timing: c.timing, logPrefixDays: c.window > 0 ? { 'binlog/': logDays } : undefined },
    pointInTimeDays: c.window,
    sizes,
  });
  const s = r.steadyState;
  const tiers = [RetentionTier.DAILY, RetentionTier.WEEKLY, RetentionTier.MONTHLY].map(
    (t) => `${t} ${s.backupsPerTier[t]} (${fmt(s.bytesPerTier[t])})`,
  );
  console.log(c.name);
  console.log(
    `  verdict: ` +
      `${
        r.ok
          ? 'every chain whole, every moment of the window reachable'
          : `BREAKS: ${r.firstBreak!.day} ${r.firstBreak!.backup}: ${r.firstBreak!.reason}`
      }`,
  );
  console.log(`  backups kept: ${tiers.join(', ')}`);
  if (c.window > 0)
    console.log(
      `  log rule: ${logDays} days = ${c.window} window + ${(r.longestFullGapMinutes / 1440).toFixed(2)} ` +
        `longest gap, rounded up, + 1 slack; logs kept ${s.logDays} days (${fmt(s.logBytes)})`,
    );
  console.log(`  total at steady state: ${fmt(s.totalBytes)} (${(s.totalBytes / sizes.full).toFixed(1)}× one full)\n`);
}
