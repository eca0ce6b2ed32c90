import * as assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
import {
  Retention,
  longestScheduleGapMinutes,
  parseCron,
  validateDatabaseId,
  validateLockRetention,
  resolveRpo,
  validateStoragePrefix,
  validateTimeZone,
} from '../../lib/core';
import { Duration } from '../../lib/cdktf';

describe('lib/core deployment checks (shared by CDK and CDKTF)', () => {
  it('works out the longest gap between runs of one or more cron schedules', () => {
    assert.equal(longestScheduleGapMinutes([parseCron({ hour: '2' })]), 1440);
    assert.equal(longestScheduleGapMinutes([parseCron({ minute: '*/15', hour: '*' })]), 15);
    assert.equal(longestScheduleGapMinutes([parseCron({ hour: '2,14' })]), 720);
    assert.equal(longestScheduleGapMinutes([parseCron({ hour: '1', weekDay: 'SUN' })]), 7 * 1440);
    assert.equal(longestScheduleGapMinutes([parseCron({ hour: '3', weekDay: 'MON-FRI' })]), 3 * 1440);
    assert.equal(
      longestScheduleGapMinutes([
        parseCron({ hour: '2', weekDay: 'SUN' }),
        parseCron({ hour: '2', weekDay: 'MON-SAT' }),
      ]),
      1440,
    );
    assert.equal(longestScheduleGapMinutes([parseCron({ hour: '2', day: '1' })]), 31 * 1440);
    assert.equal(longestScheduleGapMinutes([parseCron({ hour: '2', day: 'L' })]), undefined, 'L is not evaluated');
    assert.equal(
      resolveRpo({ schedules: [{ cron: parseCron({ hour: '2' }) }], timeoutMinutes: 240 }).rpoMinutes,
      28 * 60,
      'gap + timeout',
    );
  });

  it(
    'refuses an RPO below the gap, warns below gap + timeout, ' + 'caps at a cloud ceiling (one rule, lib/core/rpo)',
    () => {
      const daily = [{ cron: parseCron({ hour: '2' }) }];
      assert.throws(
        () => resolveRpo({ schedules: daily, timeoutMinutes: 240, rpoMinutes: 12 * 60 }),
        new RegExp(
          /^ConfigError: rpo is 12 hours, shorter than the longest gap between/.source +
            / scheduled backups \(1 day: cron\(0 2 \* \* \? \*\)\).*at least 28 hours/.source,
        ),
      );
      const tight = resolveRpo({ schedules: daily, timeoutMinutes: 240, rpoMinutes: 25 * 60 });
      assert.equal(tight.rpoMinutes, 25 * 60);
      assert.match(tight.warnings[0], /leaves less than the backup timeout \(4 hours\)/);
      assert.throws(
        () => resolveRpo({ schedules: daily, timeoutMinutes: 240, rpoMinutes: 0 }),
        /rpo is 0 minutes; give a positive duration/,
      );
      const capped = resolveRpo({ schedules: daily, timeoutMinutes: 240, ceilingMinutes: 25 * 60 });
      assert.equal(capped.rpoMinutes, 25 * 60);
      assert.equal(capped.warnings.length, 1);
      assert.throws(
        () =>
          resolveRpo({
            schedules: [{ cron: parseCron({ hour: '2', weekDay: 'SUN' }) }],
            timeoutMinutes: 240,
            ceilingMinutes: 1500,
          }),
        /at most 25 hours/,
      );
    },
  );

  it('checks database ids, prefixes and time zones', () => {
    for (const ok of ['orders', 'a', 'orders-prod-eu1']) assert.doesNotThrow(() => validateDatabaseId(ok), ok);
    for (const bad of ['Orders', 'orders_prod', '-x', 'x-', '1db', 'a'.repeat(41), '']) {
      assert.throws(() => validateDatabaseId(bad), new RegExp(`databaseId '${bad}' is not a valid database id`), bad);
    }
    for (const ok of ['', 'orders', 'postgres/orders', 'a.b/c_d-e'])
      assert.doesNotThrow(() => validateStoragePrefix(ok), ok);
    for (const bad of ['/orders', 'orders/', 'a//b', 'a/../b', 'a b', 'a*'])
      assert.throws(() => validateStoragePrefix(bad), /is not a valid storage prefix/, bad);
    assert.doesNotThrow(() => validateTimeZone('Europe/Berlin'));
    assert.doesNotThrow(() => validateTimeZone('UTC'));
    assert.throws(() => validateTimeZone('CEST'), /timeZone 'CEST' is (not a time zone|an abbreviation)/);
    assert.throws(() => validateTimeZone('Mars/Base'), /timeZone 'Mars\/Base' is not a time zone\. Use an IANA name/);
  });

  it('refuses a lock that outlives a tier', () => {
    const r = Retention.gfs({ daily: 7, weekly: 4, monthly: 12 });
    assert.doesNotThrow(() => validateLockRetention(7, r));
    assert.throws(() => validateLockRetention(30, r, 'objectLock'), {
      name: 'ConfigError',
      message:
        'objectLock of 30 days outlives the retention of daily (7 days), weekly (28 ' +
        'days): the lifecycle rules could not remove those backups before the lock ends. ' +
        'Lower objectLock to at most 7 days or keep those tiers longer.',
    });
  });

  it('Duration renders in its largest whole unit', () => {
    assert.equal(String(Duration.minutes(1500)), '25 hours');
    assert.equal(String(Duration.hours(48)), '2 days');
    assert.equal(String(Duration.seconds(90)), '90 seconds');
    assert.equal(Duration.days(1).toSeconds(), 86400);
    assert.throws(() => Duration.hours(-1), /a Duration of -1 hours is not valid/);
  });
});
