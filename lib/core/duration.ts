/**
 * Durations given as text (`--max-replica-lag 30s`, `DBBACKUP_MAX_REPLICA_LAG=5m`): a whole
 * number followed by a unit, or several such parts (`1m30s`). Read the same way by the runner
 * and written the same way by the constructs (`formatDurationSeconds`).
 */
import { ConfigError } from './errors';

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Seconds in a duration such as `30s`, `5m`, `1h`, `1m30s` or `90` (a bare number is seconds).
 * Throws ConfigError naming the value (`what` says where it came from) and the accepted forms.
 */
export function parseDurationSeconds(raw: string, what: string): number {
  const text = raw.trim();
  const fix = 'use a whole number with a unit: s, m, h or d (e.g. 30s, 5m, 1h, 1m30s)';
  if (/^\d+$/.test(text)) return Number(text);
  if (!/^(\d+[smhd])+$/.test(text)) throw new ConfigError(`${what} is '${raw}', not a duration; ${fix}.`);
  let seconds = 0;
  for (const m of text.matchAll(/(\d+)([smhd])/g)) seconds += Number(m[1]) * UNIT_SECONDS[m[2]];
  return seconds;
}

/** A number of seconds as the runner reads it back (`45s`). */
export function formatDurationSeconds(seconds: number): string {
  if (!Number.isInteger(seconds) || seconds < 0)
    throw new ConfigError(`a duration of ${seconds} s is not whole seconds, 0 or more`);
  return `${seconds}s`;
}
