import { Token } from 'cdktf';
import { CronOptions, CronSpec, awsCronExpression, parseCron, unixCronExpression, validateTimeZone } from '../../core';

/** Options of `BackupSchedule.cron`. */
export interface BackupScheduleCronOptions extends CronOptions {
  /**
   * The IANA time zone the fields are read in.
   * @default 'UTC'
   */
  readonly timeZone?: string;
}

/**
 * When backups run: a cron schedule rendered for EventBridge Scheduler (AWS) and for Cloud
 * Scheduler (Google) from the same checked fields (`lib/core` `parseCron`).
 */
export class BackupSchedule {
  /** Run on a cron schedule, e.g. `BackupSchedule.cron({ hour: '2', minute: '30' })` (02:30 every day, UTC). */
  public static cron(options: BackupScheduleCronOptions): BackupSchedule {
    return new BackupSchedule(parseCron(options), options.timeZone ?? 'UTC');
  }

  /** Once a day at `hour`:`minute`. */
  public static daily(hour: number, minute = 0, timeZone = 'UTC'): BackupSchedule {
    return BackupSchedule.cron({ hour: String(hour), minute: String(minute), timeZone });
  }

  private constructor(
    /** The checked cron fields. */
    public readonly spec: CronSpec,
    /** The IANA time zone. */
    public readonly timeZone: string,
  ) {
    if (!Token.isUnresolved(timeZone)) validateTimeZone(timeZone, 'schedule timeZone');
  }

  /** `cron(m h d M w *)` for EventBridge Scheduler. */
  public get awsExpression(): string {
    return awsCronExpression(this.spec);
  }

  /** `m h d M w` for Cloud Scheduler. */
  public get unixExpression(): string {
    return unixCronExpression(this.spec);
  }
}
