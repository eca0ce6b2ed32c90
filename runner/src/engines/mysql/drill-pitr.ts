/**
 * The point-in-time part of a MySQL/MariaDB restore drill: a random moment T inside the binary
 * log archive's recoverable window is restored into the drill's target database as
 * `restore --to-time T` does (the newest full backup of the database that ended before T, then
 * the archived binary logs replayed up to T; binlog-restore.ts), and checked:
 *
 * - the restore succeeds: the replay plan refuses a moment the archive does not reach (a gap, or
 *   events that end before T), so a restore that would stop short of T fails the drill;
 * - every table the full backup recorded exists after the replay, and its rows are counted.
 *
 * Row counts are reported, not compared: rows deleted after the full backup legitimately make a
 * table smaller at T, so no count at T follows from the backup's. Binary logs record whole
 * seconds, so what is reached is the end of T's second.
 */
import { Manifest } from '../../../../lib/core/manifest';
import { BackupMethod } from '../../../../lib/core/model';
import { RunnerCommand } from '../../../../lib/core/contract';
import { readCatalog } from '../../catalog';
import { ConfigError } from '../../../../lib/core/errors';
import { BackupError } from '../../errors';
import { log } from '../../log';
import { openStorage } from '../../storage';
import { EngineDriver, RestoreBackup, TimeDrillRequest, TimeDrillResult } from '../shared/engine';
import { binlogBases } from './binlog-archive';
import { runBinlogRestore } from './binlog-restore';
import { drillMysqlPhysical } from './physical-restore';

/** Tables of `recorded` missing from `restored` (schema.name). */
export function missingTables(
  recorded: readonly { schema: string; name: string }[],
  restored: readonly { schema: string; name: string }[],
): string[] {
  const have = new Set(restored.map((t) => `${t.schema}.${t.name}`));
  return recorded.map((t) => `${t.schema}.${t.name}`).filter((k) => !have.has(k));
}

export async function mysqlDrillToTime(
  request: TimeDrillRequest,
  signal: AbortSignal,
  restoreBackup: RestoreBackup,
  driver: EngineDriver,
): Promise<TimeDrillResult> {
  const { window } = request;
  const t = request.pick(new Date(window.earliest!), new Date(window.latest!));
  const storage = openStorage(request.from);
  const catalog = await readCatalog(storage);
  const all = binlogBases(catalog.backups);
  const names = [...new Set(all.map((m) => m.database))];
  const database = request.database ?? (names.length === 1 ? names[0] : undefined);
  if (database === undefined) {
    throw new BackupError(
      `${storage.url.display} holds full backups of several databases (${names.join(', ')}); ` +
        'give the drill --database NAME to say whose point in time to restore.',
    );
  }
  const before = all.filter((m) => (m.database === database || m.databaseId === database) && new Date(m.endedAt) <= t);
  const base: Manifest | undefined = before[before.length - 1];
  if (base === undefined)
    throw new BackupError(`no full backup of ${database} ended before ${t.toISOString()}, inside the window`);
  if (base.method === BackupMethod.PHYSICAL) return physicalToTime(request, t, base, database, signal);
  if (await driver.databaseExists!(request.target)) {
    throw new ConfigError(
      `the drill's target database ${request.target.database} already exists on ${request.target.display}; ` +
        'a drill restores into a database it creates and drops. Name a database that does not exist.',
    );
  }
  const started = Date.now();
  try {
    return await restoreAndCheck(request, t, base, signal, restoreBackup, driver, started);
  } finally {
    await driver.dropDatabase!(request.target).catch((e: Error) =>
      log.warn(`could not drop the drill database: ${e.message}`),
    );
  }
}

/**
 * A physical base (mariadb-backup): the newest physical chain before T is prepared in a scratch
 * directory, the binary logs are replayed up to T on a temporary server (as `restore --to-time
 * --target-dir` does), and the base's tables are checked present there; the drill's target
 * database is not used.
 */
async function physicalToTime(
  request: TimeDrillRequest,
  t: Date,
  base: Manifest,
  database: string,
  signal: AbortSignal,
): Promise<TimeDrillResult> {
  const started = Date.now();
  const restored = await drillMysqlPhysical(
    { from: request.from, identity: request.identity, check: request.check },
    base,
    signal,
    { toTime: t, database },
  );
  const recorded = base.tables ?? [];
  const problems = missingTables(recorded, restored).map(
    (k) => `table ${k} of the physical backup ${base.id} is missing after the restore to ${t.toISOString()}`,
  );
  return {
    base: base.id,
    target: t.toISOString(),
    reached: new Date(Math.floor(t.getTime() / 1000) * 1000 + 999).toISOString(),
    restoreSeconds: (Date.now() - started) / 1000,
    tablesChecked: recorded.length,
    rowsCounted: restored.reduce((s, x) => s + x.rows, 0),
    problems,
  };
}

async function restoreAndCheck(
  request: TimeDrillRequest,
  t: Date,
  base: Manifest,
  signal: AbortSignal,
  restoreBackup: RestoreBackup,
  driver: EngineDriver,
  started: number,
): Promise<TimeDrillResult> {
  await runBinlogRestore(
    {
      command: RunnerCommand.RESTORE,
      from: request.from,
      selector: { kind: 'id', id: base.id },
      toTime: t,
      target: request.target,
      identity: request.identity,
      withGlobals: false,
      clean: false,
      json: false,
    },
    signal,
    restoreBackup,
    driver,
    request.check,
  );
  const restoreSeconds = (Date.now() - started) / 1000;
  const restored = await driver.countTables!(request.target);
  const recorded = base.tables ?? [];
  const problems = missingTables(recorded, restored).map(
    (k) => `table ${k} of the full backup ${base.id} is missing after the restore to ${t.toISOString()}`,
  );
  return {
    base: base.id,
    target: t.toISOString(),
    reached: new Date(Math.floor(t.getTime() / 1000) * 1000 + 999).toISOString(),
    restoreSeconds,
    tablesChecked: recorded.length,
    rowsCounted: restored.reduce((s, x) => s + x.rows, 0),
    problems,
  };
}
