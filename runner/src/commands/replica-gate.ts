/**
 * backup --max-replica-lag: the gate a backup of a replica passes before and after the dump. The
 * engine measures (EngineDriver.replicaLag, engines/<engine>/replica-lag.ts); this only compares.
 */
import { Manifest } from '../../../lib/core/manifest';
import { SourceUrl } from '../../../lib/core/urls';
import { EngineDriver } from '../engines';
import { BackupError } from '../errors';
import { log } from '../log';

/** One reading: the lag in seconds, or undefined when the source is a primary (the gate is off). */
export async function replicaLagGate(
  driver: EngineDriver,
  source: SourceUrl,
  maxSeconds: number | undefined,
  when: 'before' | 'after',
): Promise<number | undefined> {
  if (maxSeconds === undefined) return undefined;
  if (driver.replicaLag === undefined) {
    log.info(`--max-replica-lag: ${driver.engine} reports no replication lag; the option has no effect`);
    return undefined;
  }
  const lag = await driver.replicaLag(source);
  if (!lag.replica) {
    if (when === 'before')
      log.info(`--max-replica-lag ${maxSeconds}s: ${source.display} is a primary, not a replica; nothing to check`, {
        event: 'replica-lag',
        replica: false,
      });
    return undefined;
  }
  const seconds = Math.round(lag.seconds * 10) / 10;
  log.info(`replica ${source.display} lags ${seconds} s ${when} the dump (limit ${maxSeconds} s; ${lag.how})`, {
    event: 'replica-lag',
    replica: true,
    when,
    seconds,
    maxSeconds,
  });
  if (lag.seconds > maxSeconds) {
    throw new BackupError(
      `replica ${source.display} lags ${seconds} s behind its primary ${when} the dump, above --max-replica-lag ` +
        `${maxSeconds}s (${lag.how}); the backup would miss recent writes. Back up when it has caught up, from ` +
        'another replica or from the primary, or raise the limit.',
    );
  }
  return seconds;
}

/** The manifest's record of both readings (absent for a primary). */
export function replicaLagRecord(
  before: number | undefined,
  after: number | undefined,
  maxSeconds: number | undefined,
): Manifest['replicaLag'] {
  if (before === undefined || after === undefined || maxSeconds === undefined) return undefined;
  return { beforeSeconds: before, afterSeconds: after, maxSeconds };
}
