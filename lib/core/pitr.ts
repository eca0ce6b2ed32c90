/**
 * Point-in-time recovery settings of every flavour's `PointInTimeRecovery`, checked once, and the
 * refusal of a source whose log cannot be streamed, from the engine's record (lib/core/engines.ts).
 */
import { AWS_MANAGED_SERVICE, ENGINE_CAPABILITIES, LogStreaming } from './engines';
import { ConfigError } from './errors';
import { Engine } from './model';

/** The defaults of `PointInTimeRecovery.enabled()`. */
export const PITR_DEFAULTS = {
  lagThresholdSeconds: 300,
  uploadIntervalSeconds: 60,
  partialSegmentIntervalSeconds: 5,
  replicationSlot: 'dbbackup',
} as const;

/**
 * Point-in-time recovery settings, in seconds; a setting that is not known at synth (a token) is
 * left out and not checked.
 */
export interface PointInTimeSettings {
  readonly lagThresholdSeconds?: number;
  readonly uploadIntervalSeconds?: number;
  readonly partialSegmentIntervalSeconds?: number;
  readonly replicationSlot?: string;
  /** The promised window, in minutes, when given. */
  readonly windowMinutes?: number;
}

const UNITS: readonly (readonly [string, number])[] = [
  ['days', 86_400_000],
  ['hours', 3_600_000],
  ['minutes', 60_000],
  ['seconds', 1000],
];

/**
 * A length of time as the messages of every flavour show it, in its two largest units, as
 * aws-cdk-lib's `Duration.toHumanString()` does: `5 minutes`, `1 minute 30 seconds`, `500 millis`.
 */
export function humanSeconds(seconds: number): string {
  const unit = (n: number, label: string) => `${n} ${n === 1 ? label.slice(0, -1) : label}`;
  if (seconds === 0) return unit(0, 'seconds');
  let millis = seconds * 1000;
  const parts: string[] = [];
  for (const [label, size] of UNITS) {
    const whole = Math.floor(millis / size);
    if (whole > 0) {
      parts.push(unit(whole, label));
      millis -= whole * size;
    }
  }
  if (millis > 1e-4) parts.push(unit(millis, 'millis'));
  return parts.slice(0, 2).join(' ');
}

/** Check the settings, with the value and the fix in the message. */
export function checkPointInTimeSettings(s: PointInTimeSettings): void {
  const p = s.partialSegmentIntervalSeconds;
  if (p !== undefined && (!Number.isInteger(p) || p < 1 || p > 3600)) {
    throw new ConfigError(
      `pointInTimeRecovery partialSegmentInterval is ${humanSeconds(p)}; ` +
        'use whole seconds from 1 second to 1 hour, e.g. Duration.seconds(5).',
    );
  }
  if (s.replicationSlot !== undefined && !/^[a-z0-9_]{1,63}$/.test(s.replicationSlot)) {
    throw new ConfigError(
      `pointInTimeRecovery replicationSlot is '${s.replicationSlot}'; use lower-case letters, digits and ` +
        "underscores (at most 63), e.g. 'dbbackup'.",
    );
  }
  const u = s.uploadIntervalSeconds;
  if (u !== undefined && (!Number.isInteger(u) || u < 10 || u > 3600)) {
    throw new ConfigError(
      `pointInTimeRecovery uploadInterval is ${humanSeconds(u)}; use whole seconds from 10 seconds to 1 hour, ` +
        'e.g. Duration.seconds(60).',
    );
  }
  const lag = s.lagThresholdSeconds;
  if (lag !== undefined && u !== undefined && lag < 2 * u) {
    throw new ConfigError(
      `pointInTimeRecovery logShippingLagThreshold is ${humanSeconds(lag)}, but the shipper uploads ` +
        `every ${humanSeconds(u)} (uploadInterval), so the lag alarm would fire in normal work. ` +
        'Set the threshold to at least twice the upload interval (e.g. Duration.minutes(5)) or upload more often.',
    );
  }
  if (s.windowMinutes !== undefined && s.windowMinutes <= 0) {
    throw new ConfigError(
      `pointInTimeRecovery window is ${humanSeconds(s.windowMinutes * 60)}; give a positive duration such as ` +
        'Duration.days(7), or leave it out.',
    );
  }
}

/**
 * How a source's log is streamed for point-in-time recovery (the engine's record), or a refusal
 * naming what to use: MongoDB ships no log; a PostgreSQL server on a managed service
 * (`service`, e.g. 'RDS or Aurora', 'Cloud SQL') gives no replication connection.
 */
export function logStreamingFor(engine: Engine, managed: boolean, service = AWS_MANAGED_SERVICE.name): LogStreaming {
  const { label, logStreaming: streaming } = ENGINE_CAPABILITIES[engine];
  if (streaming === undefined) {
    throw new ConfigError(
      `pointInTimeRecovery is set for a ${label} source, which the runner does not support (no log shipping); ` +
        'leave pointInTimeRecovery out and rely on the scheduled backups.',
    );
  }
  if (streaming.selfManagedOnly && managed) {
    throw new ConfigError(
      `pointInTimeRecovery is set for a ${label} source on ${service}, but its log shipper (dbbackup ` +
        `${streaming.command}) needs a replication connection, which ${service} does not give, nor does it ` +
        "archive the log anywhere else: use the service's own automated backups and point-in-time restore " +
        'beside these logical backups, and leave pointInTimeRecovery out.',
    );
  }
  return streaming;
}
