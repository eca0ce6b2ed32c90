import { RUNNER_ENV, RunnerCommand } from '../../../lib/core/contract';
import { ConfigError } from '../../../lib/core/errors';
import { Manifest, TableStat } from '../../../lib/core/manifest';
import { METRICS } from '../../../lib/core/metrics';
import { notDrillable, selectBackups } from '../catalog';
import { DrillConfig } from '../config';
import { driverFor } from '../engines';
import { DamagedError } from '../errors';
import { log } from '../log';
import { emitMetrics } from '../metrics';
import { openStorage } from '../storage';
import { runRestore } from './restore';

export interface DrillResult {
  readonly id: string;
  readonly ok: boolean;
  readonly restoreSeconds: number;
  readonly tablesChecked: number;
  readonly rowsChecked: number;
  readonly problems: string[];
}

/** The database id a drill reports under: the task's, else the one recorded at backup time. */
function databaseIdOfManifest(m: Manifest): string {
  return process.env[RUNNER_ENV.DATABASE_ID] ?? m.databaseId;
}

/** Compare restored row counts with the counts recorded at backup time. */
export function compareTables(recorded: readonly TableStat[], restored: readonly TableStat[]): string[] {
  const got = new Map(restored.map((t) => [`${t.schema}.${t.name}`, t.rows]));
  const problems: string[] = [];
  for (const t of recorded) {
    const key = `${t.schema}.${t.name}`;
    const rows = got.get(key);
    if (rows === undefined) problems.push(`table ${key} is missing after the restore`);
    else if (t.estimated !== true && rows !== t.rows)
      problems.push(`table ${key} has ${rows} rows after the restore; the backup recorded ${t.rows}`);
  }
  return problems;
}

/**
 * A restore drill: restore the newest backup into a throwaway database, check every table and
 * its row count against the figures recorded in the manifest at backup time (so it checks the
 * backup, not the live database), report the restore time, and drop the database again.
 */
export async function runDrill(cfg: DrillConfig, signal: AbortSignal): Promise<DrillResult> {
  const storage = openStorage(cfg.from);
  const latest = { kind: 'latest', database: cfg.database } as const;
  const [manifest] = await selectBackups(storage, latest, { missingIsDamage: true, accept: notDrillable });
  const driver = driverFor(manifest.engine);
  const databaseId = databaseIdOfManifest(manifest);
  if (driver.countTables === undefined || driver.dropDatabase === undefined || driver.databaseExists === undefined) {
    throw new ConfigError(`restore drills are not available for ${manifest.engine} in this release.`);
  }
  if (await driver.databaseExists(cfg.target)) {
    throw new ConfigError(
      `the drill's target database ${cfg.target.database} already exists on ${cfg.target.display}; a drill restores into a database it creates and drops. Name a database that does not exist (on a scratch server).`,
    );
  }
  log.info(`restore drill of backup ${manifest.id} into ${cfg.target.display}`, {
    event: 'drill-start',
    id: manifest.id,
    databaseId,
  });
  const started = Date.now();
  let problems: string[] = [];
  let restoreSeconds = 0;
  let tablesChecked = 0;
  let rowsChecked = 0;
  try {
    await runRestore(
      {
        command: RunnerCommand.RESTORE,
        from: cfg.from,
        selector: { kind: 'id', id: manifest.id },
        target: cfg.target,
        identity: cfg.identity,
        withGlobals: false,
        clean: false,
        jobs: cfg.jobs,
        json: false,
      },
      signal,
    );
    restoreSeconds = (Date.now() - started) / 1000;
    const restored = await driver.countTables(cfg.target);
    const recorded = manifest.tables ?? [];
    problems = compareTables(recorded, restored);
    if (recorded.length === 0) {
      log.warn('the backup recorded no table row counts; the drill checked only that it restores', { id: manifest.id });
    }
    tablesChecked = recorded.length;
    rowsChecked = recorded.reduce((s, t) => s + t.rows, 0);
  } catch (e) {
    problems = [(e as Error).message];
    if ((e as Error).name === 'ConfigError') throw e;
    if ((e as Error).name !== 'DamagedError') {
      emitMetrics(databaseId, { [METRICS.DRILL_FAILED]: 1, [METRICS.DRILL_SUCCEEDED]: 0 });
      throw e;
    }
  } finally {
    await driver
      .dropDatabase(cfg.target)
      .catch((e: Error) => log.warn(`could not drop the drill database: ${e.message}`));
  }
  const ok = problems.length === 0;
  emitMetrics(
    databaseId,
    {
      [METRICS.DRILL_SUCCEEDED]: ok ? 1 : 0,
      [METRICS.DRILL_FAILED]: ok ? 0 : 1,
      ...(ok ? { [METRICS.RESTORE_TIME]: restoreSeconds } : {}),
    },
    { [METRICS.RESTORE_TIME]: 'Seconds' },
  );
  const result = { id: manifest.id, ok, restoreSeconds, tablesChecked, rowsChecked, problems };
  if (!ok) {
    log.error(`restore drill of backup ${manifest.id} failed`, { event: 'drill-failed', id: manifest.id, problems });
    throw Object.assign(new DamagedError(`restore drill of backup ${manifest.id} failed: ${problems.join('; ')}`), {
      result,
    });
  }
  log.info(
    `restore drill of backup ${manifest.id} passed: ${tablesChecked} tables, ${rowsChecked} rows, restored in ${restoreSeconds.toFixed(1)} s`,
    {
      event: 'drill-ok',
      ...result,
    },
  );
  return result;
}
