/**
 * Defaults every flavour uses, so a database described in AWS CDK and in CDKTF (AWS or Google)
 * gets the same schedule, timeouts and sizes.
 */
import { CronOptions } from './schedule';

/** The backup schedule when none is given: a full backup every night at 03:00 UTC. */
export const DEFAULT_BACKUP_CRON: CronOptions = { minute: '0', hour: '3' };

/** The restore drill schedule when none is given: weekly, Sunday 05:00 UTC. */
export const DEFAULT_DRILL_CRON: CronOptions = { minute: '0', hour: '5', weekDay: 'SUN' };

/** The longest a backup may run, in minutes (4 hours). */
export const DEFAULT_BACKUP_TIMEOUT_MINUTES = 240;

/** The recovery time objective, in minutes (4 hours): the drill alarm fires on a slower restore. */
export const DEFAULT_RTO_MINUTES = 240;

/** A drill may run the RTO plus this, in minutes (2 hours), before it is stopped. */
export const DRILL_TIMEOUT_BEYOND_RTO_MINUTES = 120;

/** How often the freshness check publishes the backup age, in minutes. */
export const DEFAULT_FRESHNESS_INTERVAL_MINUTES = 15;

/** Backup task size on Fargate (CPU units, MiB). */
export const DEFAULT_BACKUP_FARGATE = { cpu: 1024, memoryMiB: 2048 } as const;

/** Drill task size on Fargate (CPU units, MiB) and its scratch disk (GiB). */
export const DEFAULT_DRILL_FARGATE = { cpu: 1024, memoryMiB: 4096, ephemeralStorageGiB: 50 } as const;

/** Backup job size on Cloud Run (vCPUs, MiB). */
export const DEFAULT_BACKUP_CLOUD_RUN = { cpu: 1, memoryMiB: 2048 } as const;

/** Drill job size on Cloud Run (vCPUs, MiB): the scratch database runs beside the runner. */
export const DEFAULT_DRILL_CLOUD_RUN = { cpu: 2, memoryMiB: 4096 } as const;

/** How long logs are kept, in days. */
export const DEFAULT_LOG_RETENTION_DAYS = 365;
