import { Engine } from '../../core';
import { PITR_DEFAULTS, checkPointInTimeSettings } from '../../core/pitr';
import { Duration } from './duration';

/** Options of point-in-time recovery (`PointInTimeRecovery.enabled`), as in the AWS CDK flavour. */
export interface PointInTimeRecoveryOptions {
  /**
   * The log-shipping-lag alarm fires when the newest shipped log data is older than this, or
   * when the shipper publishes no lag at all (it stopped, or never started).
   * @default Duration.minutes(5)
   */
  readonly logShippingLagThreshold?: Duration;
  /**
   * MySQL/MariaDB: how often the shipper uploads the open binary log.
   * @default Duration.seconds(60)
   */
  readonly uploadInterval?: Duration;
  /**
   * PostgreSQL: how often `wal-receive` uploads the WAL segment it is receiving.
   * @default Duration.seconds(5)
   */
  readonly partialSegmentInterval?: Duration;
  /**
   * PostgreSQL: the physical replication slot `wal-receive` streams from (made when missing).
   * @default 'dbbackup'
   */
  readonly replicationSlot?: string;
  /**
   * The recovery window you promise: every moment this far back stays restorable. It sets the
   * log archive's lifecycle rule and is checked against the retention tiers at synth.
   * @default - no window: logs are kept as long as the longest-kept full that may replay them
   */
  readonly window?: Duration;
  /**
   * The shipper's CPU: Fargate CPU units on AWS (256 = 0.25 vCPU), vCPUs on Google Cloud.
   * @default - 256 on AWS, '1' on Google Cloud
   */
  readonly cpu?: number;
  /** @default 512 */
  readonly memoryLimitMiB?: number;
}

/**
 * Continuous point-in-time recovery beside the scheduled backups: a log shipper that runs all
 * the time (`dbbackup binlog-stream` for MySQL/MariaDB, `dbbackup wal-receive` for a
 * self-managed PostgreSQL server) with a lag alarm, and a lifecycle rule on the log archive.
 */
export class PointInTimeRecovery {
  /** Ship the database's logs continuously. */
  public static enabled(options: PointInTimeRecoveryOptions = {}): PointInTimeRecovery {
    return new PointInTimeRecovery(options);
  }

  public readonly logShippingLagThreshold: Duration;
  public readonly uploadInterval: Duration;
  public readonly partialSegmentInterval: Duration;
  public readonly replicationSlot: string;
  public readonly window?: Duration;
  public readonly cpu?: number;
  public readonly memoryLimitMiB: number;

  private constructor(options: PointInTimeRecoveryOptions) {
    this.logShippingLagThreshold =
      options.logShippingLagThreshold ?? Duration.seconds(PITR_DEFAULTS.lagThresholdSeconds);
    this.uploadInterval = options.uploadInterval ?? Duration.seconds(PITR_DEFAULTS.uploadIntervalSeconds);
    this.partialSegmentInterval =
      options.partialSegmentInterval ?? Duration.seconds(PITR_DEFAULTS.partialSegmentIntervalSeconds);
    this.replicationSlot = options.replicationSlot ?? PITR_DEFAULTS.replicationSlot;
    this.window = options.window;
    this.cpu = options.cpu;
    this.memoryLimitMiB = options.memoryLimitMiB ?? 512;
    checkPointInTimeSettings({
      lagThresholdSeconds: this.logShippingLagThreshold.toSeconds(),
      uploadIntervalSeconds: this.uploadInterval.toSeconds(),
      partialSegmentIntervalSeconds: this.partialSegmentInterval.toSeconds(),
      replicationSlot: this.replicationSlot,
      windowMinutes: this.window?.toMinutes(),
    });
  }

  /** How often the shipper of `engine` uploads what it has not uploaded yet (and publishes its lag). */
  public intervalFor(engine: Engine): Duration {
    return engine === Engine.POSTGRES ? this.partialSegmentInterval : this.uploadInterval;
  }

  /** The window in days (0 without one). */
  public get windowDays(): number {
    return this.window === undefined ? 0 : this.window.toSeconds() / 86400;
  }
}
