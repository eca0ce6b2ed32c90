import type { CronSpec } from '../../core';

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** Numbers of a checked cron field (lists, ranges, steps, `*`). */
function values(field: string, lo: number, hi: number): Set<number> {
  const out = new Set<number>();
  for (const part of field.split(',')) {
    const m = /^(\*|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(part);
    if (m === null) continue;
    const start = m[1] === '*' ? lo : Number(m[1]);
    const end = m[2] !== undefined ? Number(m[2]) : m[1] === '*' || m[3] !== undefined ? hi : start;
    const step = m[3] !== undefined ? Number(m[3]) : 1;
    for (let v = start; v <= end; v += step) out.add(v);
  }
  return out;
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
    return values(part, 1, 31).has(d);
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
    return values(part, 1, 7).has(dow);
  });
}

/**
 * The longest time between two runs of a checked cron schedule, in minutes, found by walking
 * five calendar years (so month lengths, leap days and weekday patterns all occur). Returns
 * `undefined` when the schedule never fires in that time (e.g. day 31 of February).
 */
export function cronMaxIntervalMinutes(spec: CronSpec): number | undefined {
  const minutes = [...values(spec.minute, 0, 59)].sort((a, b) => a - b);
  const hours = [...values(spec.hour, 0, 23)].sort((a, b) => a - b);
  const months = spec.month === '*' ? values('*', 1, 12) : values(spec.month.toUpperCase().replace(/[A-Z]{3}/g, (n) => String(MONTHS.indexOf(n) + 1)), 1, 12);
  const inDay = hours.flatMap((h) => minutes.map((m) => h * 60 + m));
  if (inDay.length === 0) return undefined;
  const start = Date.UTC(2024, 0, 1);
  let previous: number | undefined;
  let first: number | undefined;
  let max = 0;
  for (let day = 0; day < 5 * 366; day++) {
    const date = new Date(start + day * 86_400_000);
    const y = date.getUTCFullYear();
    const m0 = date.getUTCMonth();
    const d = date.getUTCDate();
    if (!months.has(m0 + 1) || !dayMatches(spec.day, y, m0, d) || !weekDayMatches(spec.weekDay, y, m0, d)) continue;
    for (const t of inDay) {
      const at = day * 1440 + t;
      if (previous !== undefined) max = Math.max(max, at - previous);
      first ??= at;
      previous = at;
    }
  }
  if (previous === undefined || first === undefined) return undefined;
  // A schedule that fires once in five years has no interval we can trust: report the span.
  return max === 0 ? 5 * 366 * 1440 : max;
}
