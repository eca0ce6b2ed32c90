import { ConfigError } from './errors';

/** The fields of a cron schedule (EventBridge Scheduler / Cloud Scheduler style, UTC unless a timezone is set). */
export interface CronOptions {
  /** @default '0' */
  readonly minute?: string;
  /** @default '0' */
  readonly hour?: string;
  /** Day of the month; give it or `weekDay`, not both. @default - every day */
  readonly day?: string;
  /** @default '*' */
  readonly month?: string;
  /** Day of the week (`MON`-`SUN` or `1`-`7`, 1 = Sunday); give it or `day`, not both. @default - any */
  readonly weekDay?: string;
}

/** A checked cron schedule, renderable for AWS and for Google. */
export interface CronSpec {
  readonly minute: string;
  readonly hour: string;
  readonly day: string;
  readonly month: string;
  readonly weekDay: string;
  /** The shortest time between two runs, in minutes (a lower bound for day-level patterns). */
  readonly minIntervalMinutes: number;
}

/** Check cron fields and work out the shortest interval between two runs. */
export function parseCron(options: CronOptions): CronSpec {
  const minute = options.minute ?? '0';
  const hour = options.hour ?? '0';
  const month = options.month ?? '*';
  if (options.day !== undefined && options.weekDay !== undefined && options.day !== '?' && options.weekDay !== '?') {
    throw new ConfigError(`cron day '${options.day}' and weekDay '${options.weekDay}' are both set; give one of them.`);
  }
  const day = options.day ?? (options.weekDay !== undefined ? '?' : '*');
  const weekDay = options.weekDay ?? '?';
  const minutes = expand(minute, 0, 59, 'minute');
  const hours = expand(hour, 0, 23, 'hour');
  if (day !== '?') expand(day.replace(/^L$/, '31').replace(/W$/, ''), 1, 31, 'day');
  if (month !== '*')
    expand(
      month.toUpperCase().replace(/[A-Z]{3}/g, (m) => String(MONTHS.indexOf(m) + 1)),
      1,
      12,
      'month',
    );
  if (weekDay !== '?' && weekDay !== '*') {
    expand(
      weekDay
        .toUpperCase()
        .replace(/[A-Z]{3}/g, (d) => String(DAYS.indexOf(d) + 1))
        .replace(/[#L].*$/, ''),
      1,
      7,
      'weekDay',
    );
  }
  const times = hours.flatMap((h) => minutes.map((m) => h * 60 + m)).sort((a, b) => a - b);
  let min = 24 * 60 - times[times.length - 1] + times[0];
  for (let i = 1; i < times.length; i++) min = Math.min(min, times[i] - times[i - 1]);
  return { minute, hour, day, month, weekDay, minIntervalMinutes: min };
}

/** `cron(m h d M w *)` for EventBridge Scheduler. */
export function awsCronExpression(c: CronSpec): string {
  return `cron(${c.minute} ${c.hour} ${c.day} ${c.month} ${c.weekDay} *)`;
}

/** `m h d M w` (unix cron) for Google Cloud Scheduler. */
export function unixCronExpression(c: CronSpec): string {
  const dow = c.weekDay === '?' ? '*' : c.weekDay.toUpperCase().replace(/\d/g, (d) => String(Number(d) - 1));
  return `${c.minute} ${c.hour} ${c.day === '?' ? '*' : c.day} ${c.month} ${dow}`;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

function expand(field: string, lo: number, hi: number, name: string): number[] {
  const bad = () =>
    new ConfigError(
      `cron ${name} '${field}' is not valid; use a number ${lo}-${hi}, a list (1,15), a range (${lo}-${hi}), a step ` +
        `(*/15) or '*'.`,
    );
  const out = new Set<number>();
  for (const part of field.split(',')) {
    const m = /^(\*|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(part);
    if (m === null) throw bad();
    const start = m[1] === '*' ? lo : Number(m[1]);
    const end = m[2] !== undefined ? Number(m[2]) : m[1] === '*' || m[3] !== undefined ? hi : start;
    const step = m[3] !== undefined ? Number(m[3]) : 1;
    if (start < lo || end > hi || start > end || step < 1) throw bad();
    for (let v = start; v <= end; v += step) out.add(v);
  }
  return [...out];
}
