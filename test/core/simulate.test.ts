/** The retention simulator (lib/core/simulate.ts) and the chain tier plan (lib/core/retention.ts). */
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import fc from 'fast-check';
import { BackupType, RetentionTier } from '../../lib/core/model';
import { LifecycleTiming, planChainTiers, Retention } from '../../lib/core/retention';
import { CronSpec, parseCron } from '../../lib/core/schedule';
import {
  localToUtc,
  scheduleRuns,
  SimulateProps,
  SimulationResult,
  simulateRetention,
  assertRetentionKeepsChains,
} from '../../lib/core/simulate';

const DAY = 86_400_000;
const HOUR = 3_600_000;

function tierDays(r: Retention): Partial<Record<RetentionTier, number>> {
  return Object.fromEntries(r.lifetimes.map((l) => [l.tier, l.days]));
}

/**
 * An independent check of a simulation's outcome: steps through the walk every `step` ms and
 * looks, with its own expiry arithmetic, for a stored backup whose chain is incomplete, or a
 * moment of the window that no stored full with its logs can reach.
 */
function oracleBreaks(props: SimulateProps, r: SimulationResult, step = 6 * HOUR): string | undefined {
  const timing = props.rules.timing ?? LifecycleTiming.S3;
  const start = (props.start ?? new Date(Date.UTC(2026, 0, 1))).getTime();
  const end = start + (props.days ?? 731) * DAY;
  const gone = (created: number, days: number | undefined, latest: boolean) => {
    if (days === undefined) return Infinity;
    if (timing === LifecycleTiming.S3) return Math.floor(created / DAY) * DAY + (days + 1) * DAY;
    return created + days * DAY + (latest ? DAY : 0);
  };
  const byId = new Map(r.backups.map((b) => [b.id, b]));
  const days = props.rules.tierDays;
  const logDays = Object.values(props.rules.logPrefixDays ?? {})[0];
  const window = (props.pointInTimeDays ?? 0) * DAY;
  const fulls = r.backups.filter((b) => b.type === BackupType.FULL);
  for (let now = start; now < end; now += step) {
    for (const b of r.backups) {
      const at = b.at.getTime();
      if (at > now || gone(at, days[b.tier], true) <= now) continue;
      for (const id of b.chain) {
        const base = byId.get(id)!;
        if (gone(base.at.getTime(), days[base.tier], false) <= now)
          return `${new Date(now).toISOString()}: ${b.id} lacks ${id}`;
      }
    }
    if (window > 0 && fulls.length > 0 && now >= fulls[0].at.getTime()) {
      const oldest = Math.max(now - window, fulls[0].at.getTime());
      const ok = fulls.some((f) => {
        const at = f.at.getTime();
        return at <= oldest && gone(at, days[f.tier], false) > now && gone(at, logDays, false) > now;
      });
      if (!ok) return `${new Date(now).toISOString()}: ${new Date(oldest).toISOString()} unreachable`;
    }
  }
  return undefined;
}

const cronArb: fc.Arbitrary<CronSpec> = fc.oneof(
  fc.record({ hour: fc.integer({ min: 0, max: 23 }) }).map((x) => parseCron({ hour: String(x.hour) })),
  fc
    .record({ hour: fc.integer({ min: 0, max: 23 }), day: fc.constantFrom('SUN', 'MON', 'WED', 'SAT', 'MON,THU') })
    .map((x) => parseCron({ hour: String(x.hour), weekDay: x.day })),
  fc
    .record({ hour: fc.integer({ min: 0, max: 23 }), dom: fc.constantFrom('1', '15', '1,15', 'L') })
    .map((x) => parseCron({ hour: String(x.hour), day: x.dom })),
  fc
    .record({ minute: fc.integer({ min: 0, max: 59 }), every: fc.constantFrom('*/6', '*/12') })
    .map((x) => parseCron({ minute: String(x.minute), hour: x.every })),
);

const propsArb: fc.Arbitrary<SimulateProps> = fc
  .record({
    daily: fc.integer({ min: 1, max: 21 }),
    weekly: fc.integer({ min: 0, max: 8 }),
    monthly: fc.integer({ min: 0, max: 6 }),
    full: cronArb,
    dependant: fc.option(
      fc.record({ type: fc.constantFrom(BackupType.INCREMENTAL, BackupType.DIFFERENTIAL), cron: cronArb }),
      { nil: undefined },
    ),
    window: fc.integer({ min: 0, max: 40 }),
    logDays: fc.option(fc.integer({ min: 1, max: 80 }), { nil: undefined }),
    timing: fc.constantFrom(LifecycleTiming.S3, LifecycleTiming.GCS),
    zone: fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Sydney'),
  })
  .map((x) => {
    const retention = Retention.gfs({ daily: x.daily, weekly: x.weekly, monthly: x.monthly });
    return {
      schedules: [{ type: BackupType.FULL, cron: x.full }, ...(x.dependant !== undefined ? [x.dependant] : [])],
      retention,
      rules: {
        tierDays: tierDays(retention),
        logPrefixDays: x.logDays !== undefined ? { 'binlog/': x.logDays } : undefined,
        timing: x.timing,
      },
      pointInTimeDays: x.window,
      timeZone: x.zone,
      days: 400,
    };
  });

describe('simulateRetention: properties', () => {
  test('when the simulator says OK, no moment of the walk breaks (and when one breaks, it says so)', () => {
    fc.assert(
      fc.property(propsArb, (props) => {
        const r = simulateRetention(props);
        const broken = oracleBreaks(props, r);
        if (r.ok) assert.equal(broken, undefined, `the simulator said OK but ${broken}`);
        else assert.ok(r.firstBreak !== undefined && r.breaks.length > 0);
        // The oracle samples every 6 hours; a break it sees the simulator must have seen.
        if (broken !== undefined) assert.equal(r.ok, false, `the oracle found ${broken}`);
      }),
      { numRuns: 40, seed: 15 },
    );
  });

  test('a window longer than the longest retention always fails', () => {
    fc.assert(
      fc.property(propsArb, fc.integer({ min: 1, max: 30 }), (props, extra) => {
        const longest = Math.max(...Object.values(props.rules.tierDays).map((d) => d!));
        const fullsOnly = props.schedules.filter((x) => x.type === BackupType.FULL);
        const r = simulateRetention({ ...props, schedules: fullsOnly, pointInTimeDays: longest + extra, days: 731 });
        assert.equal(r.ok, false);
        assert.match(r.firstBreak!.reason, /window/);
      }),
      { numRuns: 40, seed: 16 },
    );
  });

  test('differential backups under a weekly full whose tier outlives them never break', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 14 }),
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom(LifecycleTiming.S3, LifecycleTiming.GCS),
        (daily, extraWeeks, timing) => {
          const weekly = Math.ceil((daily + 8) / 7) + extraWeeks;
          const retention = Retention.gfs({ daily, weekly, monthly: 3 });
          const r = simulateRetention({
            schedules: [
              { type: BackupType.FULL, cron: parseCron({ hour: '1', weekDay: 'SUN' }) },
              { type: BackupType.DIFFERENTIAL, cron: parseCron({ hour: '*/6' }) },
            ],
            retention,
            rules: { tierDays: tierDays(retention), timing },
          });
          assert.equal(r.ok, true, r.firstBreak?.reason);
          assert.ok(
            r.backups.every((b) => b.tier === b.writtenTier),
            'no base had to be raised',
          );
        },
      ),
      { numRuns: 30, seed: 17 },
    );
  });

  test('with raising allowed, every stored dependant outlives none of its bases', () => {
    fc.assert(
      fc.property(propsArb, (props) => {
        const r = simulateRetention({
          ...props,
          pointInTimeDays: 0,
          rules: { ...props.rules, timing: LifecycleTiming.S3 },
          raiseBaseTiers: true,
        });
        const byId = new Map(r.backups.map((b) => [b.id, b]));
        for (const b of r.backups) {
          for (const id of b.chain) {
            const base = byId.get(id)!;
            if (base.expires === undefined || b.expires === undefined) continue;
            if (base.expires.earliest.getTime() < b.expires.latest.getTime()) {
              assert.equal(r.ok, false, `${b.id} outlives ${id} but the simulator said OK`);
            }
          }
        }
      }),
      { numRuns: 30, seed: 18 },
    );
  });
});

describe('simulateRetention: hand-written cases', () => {
  const gfs = Retention.gfs();

  test('Europe/Berlin: a 02:30 run does not happen on the spring-forward day and happens once in autumn', () => {
    const cron = parseCron({ minute: '30', hour: '2' });
    const runs = scheduleRuns([cron], Date.UTC(2026, 2, 27), Date.UTC(2026, 2, 31), 'Europe/Berlin').map((t) =>
      new Date(t).toISOString(),
    );
    assert.deepEqual(runs, ['2026-03-27T01:30:00.000Z', '2026-03-28T01:30:00.000Z', '2026-03-30T00:30:00.000Z']);
    const autumn = scheduleRuns([cron], Date.UTC(2026, 9, 24), Date.UTC(2026, 9, 27), 'Europe/Berlin').map((t) =>
      new Date(t).toISOString(),
    );
    assert.deepEqual(autumn, ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
    assert.equal(localToUtc('Europe/Berlin', Date.UTC(2026, 2, 29, 2, 30)), undefined);
  });

  test(
    'Europe/Berlin: the skipped run doubles the longest ' + 'gap between fulls, and the log archive must cover it',
    () => {
      const props: SimulateProps = {
        schedules: [{ type: BackupType.FULL, cron: parseCron({ minute: '30', hour: '2' }) }],
        retention: gfs,
        rules: { tierDays: tierDays(gfs), logPrefixDays: { 'binlog/': 3 } },
        pointInTimeDays: 2,
        timeZone: 'Europe/Berlin',
      };
      const r = simulateRetention(props);
      assert.equal(r.longestFullGapMinutes, 47 * 60, 'from 2026-03-28 02:30 CET to 2026-03-30 02:30 CEST');
      assert.equal(r.requiredLogDays, 4);
      assert.equal(r.ok, false, 'three days of logs do not cover a 2-day window plus a 47-hour gap');
      assert.match(r.firstBreak!.reason, /logs since it/);
      assert.equal(
        simulateRetention({ ...props, rules: { ...props.rules, logPrefixDays: { 'binlog/': 4 } } }).ok,
        true,
      );
      assert.equal(simulateRetention({ ...props, timeZone: 'UTC' }).longestFullGapMinutes, 24 * 60);
    },
  );

  test(
    'ISO week 53 of 2026: its Monday full is weekly, the first full ' +
      'of 2027 monthly, and 2027-W01 starts a new week',
    () => {
      const r = simulateRetention({
        schedules: [{ type: BackupType.FULL, cron: parseCron({ hour: '2' }) }],
        retention: gfs,
        rules: { tierDays: tierDays(gfs) },
        start: new Date(Date.UTC(2026, 11, 1)),
        days: 40,
      });
      const tier = (day: string) => r.backups.find((b) => b.id.startsWith(day))!.writtenTier;
      assert.equal(tier('2026-12-28'), RetentionTier.WEEKLY, 'Monday of 2026-W53');
      assert.equal(tier('2026-12-31'), RetentionTier.DAILY);
      assert.equal(tier('2027-01-01'), RetentionTier.MONTHLY);
      assert.equal(tier('2027-01-03'), RetentionTier.DAILY, 'Sunday of 2026-W53, which already has its weekly');
      assert.equal(tier('2027-01-04'), RetentionTier.WEEKLY, 'Monday of 2027-W01');
    },
  );

  test('a monthly full with daily incrementals breaks: the last incrementals need the first ones and the full', () => {
    const props: SimulateProps = {
      schedules: [
        { type: BackupType.FULL, cron: parseCron({ hour: '1', day: '1' }) },
        { type: BackupType.INCREMENTAL, cron: parseCron({ hour: '3' }) },
      ],
      retention: gfs,
      rules: { tierDays: tierDays(gfs), timing: LifecycleTiming.GCS },
    };
    const r = simulateRetention(props);
    assert.equal(r.ok, false);
    assert.equal(
      r.firstBreak!.day,
      '2026-01-08',
      'the first daily incremental (2026-01-01 03:00) is gone 7 days later',
    );
    assert.match(r.firstBreak!.backup, /^2026-01-02T03:00Z-incremental$/);
    assert.throws(
      () => assertRetentionKeepsChains({ ...props, what: 'Orders retention' }),
      new RegExp(
        /^ConfigError: Orders retention: on 2026-01-08 backup 2026-01-02T03:00Z-incremental/.source +
          / would break: .*needs 2026-01-01T03:00Z-incremental.*Fix: /.source,
      ),
    );
  });

  test('a monthly full with daily differentials keeps every chain, and the storage at steady state is counted', () => {
    const r = simulateRetention({
      schedules: [
        { type: BackupType.FULL, cron: parseCron({ hour: '1', day: '1' }) },
        { type: BackupType.DIFFERENTIAL, cron: parseCron({ hour: '3' }) },
      ],
      retention: gfs,
      rules: { tierDays: tierDays(gfs), timing: LifecycleTiming.GCS },
      sizes: { full: 100, differential: 10 },
    });
    assert.equal(r.ok, true, r.firstBreak?.reason);
    assert.equal(
      r.steadyState.backupsPerTier[RetentionTier.MONTHLY],
      13,
      '12 × 31 days cover 12 or 13 first-of-months',
    );
    assert.ok(
      r.steadyState.backupsPerTier[RetentionTier.DAILY] >= 7 && r.steadyState.backupsPerTier[RetentionTier.DAILY] <= 8,
    );
    assert.equal(r.steadyState.totalBytes, 13 * 100 + r.steadyState.backupsPerTier[RetentionTier.DAILY] * 10);
  });

  test('logs without a rule grow for ever, and the estimate says so', () => {
    const r = simulateRetention({
      schedules: [{ type: BackupType.FULL, cron: parseCron({ hour: '2', weekDay: 'SUN' }) }],
      retention: gfs,
      rules: { tierDays: tierDays(gfs) },
      pointInTimeDays: 7,
      sizes: { logPerDay: 5 },
    });
    assert.equal(r.ok, true);
    assert.equal(r.steadyState.logsUnbounded, true);
    assert.equal(r.steadyState.logBytes, 731 * 5);
    assert.equal(r.requiredLogDays, 14);
  });

  test('a bad time zone is refused naming it', () => {
    assert.throws(
      () =>
        simulateRetention({
          schedules: [{ type: BackupType.FULL, cron: parseCron({}) }],
          retention: gfs,
          rules: { tierDays: {} },
          timeZone: 'Mars/Olympus',
        }),
      /time zone 'Mars\/Olympus' is not an IANA time zone/,
    );
  });
});

describe('planChainTiers', () => {
  const at = new Date('2026-03-10T03:00:00Z');
  const days = { [RetentionTier.DAILY]: 7, [RetentionTier.WEEKLY]: 28, [RetentionTier.MONTHLY]: 372 };
  const dailyFull = { id: 'full', tier: RetentionTier.DAILY, startedAt: new Date('2026-03-09T02:00:00Z') };

  test('on S3 a daily base that would expire first is raised to the shortest tier that outlives the dependant', () => {
    const p = planChainTiers(at, [dailyFull], { tierDays: days, canRaise: true, timing: LifecycleTiming.S3 });
    assert.equal(p.tier, RetentionTier.DAILY);
    assert.deepEqual(p.raise, [{ id: 'full', from: RetentionTier.DAILY, to: RetentionTier.WEEKLY }]);
    assert.deepEqual(p.unprotected, []);
  });

  test('on GCS it cannot be raised and is reported with the day it goes', () => {
    const p = planChainTiers(at, [dailyFull], { tierDays: days, canRaise: false, timing: LifecycleTiming.GCS });
    assert.deepEqual(p.raise, []);
    assert.deepEqual(p.unprotected, [
      { id: 'full', tier: RetentionTier.DAILY, expires: new Date('2026-03-16T02:00:00Z') },
    ]);
  });

  test('a weekly base needs nothing; a base whose raise is still too short is unprotected', () => {
    const weekly = { ...dailyFull, tier: RetentionTier.WEEKLY };
    assert.deepEqual(
      planChainTiers(at, [weekly], { tierDays: days, canRaise: true, timing: LifecycleTiming.S3 }).raise,
      [],
    );
    const old = { id: 'old', tier: RetentionTier.DAILY, startedAt: new Date('2026-02-01T00:00:00Z') };
    const p = planChainTiers(at, [old], {
      tierDays: { [RetentionTier.DAILY]: 7, [RetentionTier.WEEKLY]: 14 },
      canRaise: true,
      timing: LifecycleTiming.S3,
    });
    assert.equal(p.raise.length, 0);
    assert.equal(p.unprotected[0].id, 'old');
  });

  test('raising an incremental makes its own bases outlive it too', () => {
    const chain = [
      { id: 'full', tier: RetentionTier.WEEKLY, startedAt: new Date('2026-03-08T02:00:00Z') },
      { id: 'inc1', tier: RetentionTier.DAILY, startedAt: new Date('2026-03-09T03:00:00Z') },
    ];
    const p = planChainTiers(at, chain, { tierDays: days, canRaise: true, timing: LifecycleTiming.S3 });
    assert.deepEqual(p.raise, [
      { id: 'inc1', from: RetentionTier.DAILY, to: RetentionTier.WEEKLY },
      { id: 'full', from: RetentionTier.WEEKLY, to: RetentionTier.MONTHLY },
    ]);
  });
});
