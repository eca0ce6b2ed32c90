/**
 * Point-in-time recovery settings of the CDKTF flavours, checked once (the values and limits of
 * the AWS CDK flavour's `PointInTimeRecovery`), and the refusal of a source whose log cannot be
 * streamed, from the engine's record (lib/core/engines.ts).
 */
import { ENGINE_CAPABILITIES, LogStreaming } from './engines';
import { ConfigError } from './errors';
import { Engine } from './model';

/** The defaults of `PointInTimeRecovery.enabled()`. */
export const PITR_DEFAULTS = {
  lagThresholdSeconds: 300,
  uploadIntervalSeconds: 60,
  partialSegmentIntervalSeconds: 5,
  replicationSlot: 'dbbackup',
} as const;

/** Literal point-in-time recovery settings, in seconds. */
export interface PointInTimeSettings {
  readonly lagThresholdSeconds: number;
  readonly uploadIntervalSeconds: number;
  readonly partialSegmentIntervalSeconds: number;
  readonly replicationSlot: string;
  /** The promised window, in minutes, when given. */
  readonly windowMinutes?: number;
}

/** Check the settings as the CDK flavour does, with the value and the fix in the message. */
export function checkPointInTimeSettings(s: PointInTimeSettings): void {
  const p = s.partialSegmentIntervalSeconds;
  if (!Number.isInteger(p) || p < 1 || p > 3600) {
    throw new ConfigError(
      `pointInTimeRecovery partialSegmentInterval is ${p} seconds; use whole seconds from 1 second to 1 hour, ` +
        'e.g. Duration.seconds(5).',
    );
  }
  if (!/^[a-z0-9_]{1,63}$/.test(s.replicationSlot)) {
    throw new ConfigError(
      `pointInTimeRecovery replicationSlot is '${s.replicationSlot}'; use lower-case letters, digits and ` +
        "underscores (at most 63), e.g. 'dbbackup'.",
    );
  }
  const u = s.uploadIntervalSeconds;
  if (!Number.isInteger(u) || u < 10 || u > 3600) {
    throw new ConfigError(
      `pointInTimeRecovery uploadInterval is ${u} seconds; use whole seconds from 10 seconds to 1 hour, ` +
        'e.g. Duration.seconds(60).',
    );
  }
  if (s.lagThresholdSeconds < 2 * u) {
    throw new ConfigError(
      `pointInTimeRecovery logShippingLagThreshold is ${s.lagThresholdSeconds} seconds, but the shipper uploads ` +
        `every ${u} seconds (uploadInterval), so the lag alarm would fire in normal work. Set the threshold to at ` +
        'least twice the upload interval (e.g. Duration.minutes(5)) or upload more often.',
    );
  }
  if (s.windowMinutes !== undefined && s.windowMinutes <= 0) {
    throw new ConfigError(
      `pointInTimeRecovery window is ${s.windowMinutes} minutes; give a positive duration such as ` +
        'Duration.days(7), or leave it out.',
    );
  }
}

/**
 * How a source's log is streamed for point-in-time recovery (the engine's record), or a refusal
 * naming what to use: MongoDB ships no log; a PostgreSQL server on a managed service
 * (`service`, e.g. 'RDS or Aurora', 'Cloud SQL') gives no replication connection.
 */
export function logStreamingFor(engine: Engine, managed: boolean, service = 'RDS or Aurora'): LogStreaming {
  const streaming = ENGINE_CAPABILITIES[engine].logStreaming;
  if (streaming === undefined) {
    throw new ConfigError(
      `pointInTimeRecovery is set for a ${engine} source, which the runner does not support (no log shipping); ` +
        'leave pointInTimeRecovery out and rely on the scheduled backups.',
    );
  }
  if (streaming.selfManagedOnly && managed) {
    throw new ConfigError(
      `pointInTimeRecovery is set for a ${service} ${engine} source, but its log shipper (dbbackup ` +
        `${streaming.command}) needs a replication connection, which ${service} does not give. Use the service's ` +
        'own automated backups and point-in-time restore beside these logical backups, and leave ' +
        'pointInTimeRecovery out.',
    );
  }
  return streaming;
}
