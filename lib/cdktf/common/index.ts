export * from './duration';
export * from './schedule';
export * from './encryption';
