export * from './duration';
export * from './schedule';
export * from './encryption';
export type { ScheduledBackup } from './scheduled';
export * from './pitr';
