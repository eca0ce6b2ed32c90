import { RUNNER_ENV, RunnerCommand } from '../../../lib/core/contract';
import { ConfigError } from '../../../lib/core/errors';
import { Manifest, TableStat } from '../../../lib/core/manifest';
import { METRICS } from '../../../lib/core/metrics';
import * as crypto from 'node:crypto';
import { BackupMethod } from '../../../lib/core/model';
import { ArchiveWindow } from '../archive/window';
import { backupsOfDatabase, notDrillable, readCatalog, selectBackups } from '../catalog';
import { DrillConfig } from '../config';
import { archiveWindows, driverFor, EngineDriver, TimeDrillResult } from '../engines';
import { BackupError, DamagedError } from '../errors';
import { log } from '../log';
import { emitMetrics } from '../metrics';
import { checkBeforeWork } from '../preflight';
import { openStorage } from '../storage';
import { runRestore } from './restore';

export interface DrillResult {
  readonly id: string;
  readonly ok: boolean;
  readonly restoreSeconds: number;
  readonly tablesChecked: number;
  readonly rowsChecked: number;
  readonly problems: string[];
  /** The point-in-time part, where the store holds a log archive with a recoverable window. */
  readonly pointInTime?: PointInTimeDrill;
}

/** What the point-in-time part of a drill did. */
export interface PointInTimeDrill extends TimeDrillResult {
  readonly engine: string;
  /** The seed the moment was drawn with (--drill-seed, or a new one): give it back to draw the same moment. */
  readonly seed: string;
}

/**
 * A moment drawn from a seed: the fraction sha256(seed) gives, laid over [from, to] without the
 * window's holes, so the same seed and window give the same moment.
 */
export function pickMoment(
  seed: string,
  from: Date,
  to: Date,
  holes: readonly { readonly from: string; readonly to: string }[] = [],
): Date {
  const u = crypto.createHash('sha256').update(seed).digest().readUIntBE(0, 6) / 2 ** 48;
  const spans: [number, number][] = [];
  let at = from.getTime();
  const end = to.getTime();
  for (const h of [...holes].sort((a, b) => Date.parse(a.from) - Date.parse(b.from))) {
    const hf = Date.parse(h.from);
    const ht = Date.parse(h.to);
    if (ht <= at || hf >= end) continue;
    if (hf > at) spans.push([at, hf]);
    at = Math.max(at, ht);
  }
  if (at < end) spans.push([at, end]);
  const total = spans.reduce((s, [a, b]) => s + (b - a), 0);
  if (total <= 0) return new Date(Math.min(at, end));
  let offset = Math.floor(u * total);
  for (const [a, b] of spans) {
    if (offset <= b - a) return new Date(a + offset);
    offset -= b - a;
  }
  return new Date(end);
}

/** Why a backup is skipped by the drill: a physical one is drilled by its engine when it can (drillPhysical). */
function whyNotDrillable(m: Manifest): string | undefined {
  return m.method === BackupMethod.PHYSICAL && driverFor(m.engine).drillPhysical !== undefined
    ? undefined
    : notDrillable(m);
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

/** The logical part's outcome. */
interface LogicalDrill {
  readonly id: string;
  readonly restoreSeconds: number;
  readonly tablesChecked: number;
  readonly rowsChecked: number;
  readonly problems: string[];
}

/**
 * A restore drill: restore the newest backup into a throwaway database, check every table and
 * its row count against the figures recorded in the manifest at backup time (so it checks the
 * backup, not the live database), report the restore time, and drop the database again.
 *
 * Where the store holds a log archive with a recoverable window (point-in-time recovery), the
 * drill also restores a random moment of that window (drawn from --drill-seed, or a new seed it
 * prints) through the engine's drillToTime, which checks that the restore reaches the moment. A
 * store with only physical bases and a WAL archive gets the point-in-time part alone.
 */
export async function runDrill(cfg: DrillConfig, signal: AbortSignal): Promise<DrillResult> {
  const storage = openStorage(cfg.from);
  const catalog = await readCatalog(storage);
  const windows = (await archiveWindows(storage, catalog)).filter(
    (w) => w.earliest !== undefined && w.latest !== undefined,
  );
  const drillable = catalog.backups.filter((m) => whyNotDrillable(m) === undefined);
  const mine = drillable.length > 0 ? backupsOfDatabase(drillable, cfg.database, storage.url.display) : [];
  let logical: LogicalDrill | undefined;
  let engine = mine[0]?.engine;
  if (mine.length > 0 || windows.length === 0) {
    const r = await drillLogical(cfg, signal);
    logical = r.result;
    engine = r.engine;
  } else {
    log.info(
      `${storage.url.display} holds no logical backup to restore into a ` +
        `database; the drill restores a moment of its log archive only`,
    );
  }
  const window = windows.find((w) => w.engine === engine) ?? (logical === undefined ? windows[0] : undefined);
  // The database the point-in-time part reports a failure under: the logical backup's, else the newest of the engine's.
  const reportAs =
    process.env[RUNNER_ENV.DATABASE_ID] ??
    catalog.backups.filter((m) => m.id === logical?.id || (logical === undefined && m.engine === window?.engine)).pop()
      ?.databaseId ??
    'unknown';
  const pointInTime = window === undefined ? undefined : await drillPointInTime(cfg, window, signal, reportAs);
  if (logical === undefined && pointInTime?.skipped !== undefined) {
    // A drill that checked nothing has not passed: the machine lacks what it needs (exit 1).
    emitMetrics(reportAs, { [METRICS.DRILL_FAILED]: 1, [METRICS.DRILL_SUCCEEDED]: 0 });
    throw new BackupError(`the restore drill of ${cfg.from.display} checked nothing: ${pointInTime.skipped}`);
  }
  const problems = [...(logical?.problems ?? []), ...(pointInTime?.problems ?? [])];
  const ok = problems.length === 0;
  const result: DrillResult = {
    id: logical?.id ?? (pointInTime!.base || '(point in time)'),
    ok,
    restoreSeconds: logical?.restoreSeconds ?? pointInTime!.restoreSeconds,
    tablesChecked: logical?.tablesChecked ?? pointInTime!.tablesChecked,
    rowsChecked: logical?.rowsChecked ?? 0,
    problems,
    ...(pointInTime !== undefined ? { pointInTime } : {}),
  };
  const databaseId = process.env[RUNNER_ENV.DATABASE_ID] ?? databaseIdOfStore(catalog.backups, result.id);
  emitMetrics(
    databaseId,
    {
      [METRICS.DRILL_SUCCEEDED]: ok ? 1 : 0,
      [METRICS.DRILL_FAILED]: ok ? 0 : 1,
      ...(ok ? { [METRICS.RESTORE_TIME]: result.restoreSeconds } : {}),
      ...(ok && pointInTime !== undefined ? { [METRICS.PITR_RESTORE_TIME]: pointInTime.restoreSeconds } : {}),
    },
    { [METRICS.RESTORE_TIME]: 'Seconds', [METRICS.PITR_RESTORE_TIME]: 'Seconds' },
  );
  if (!ok) {
    log.error(`restore drill of backup ${result.id} failed`, { event: 'drill-failed', id: result.id, problems });
    throw Object.assign(new DamagedError(`restore drill of backup ${result.id} failed: ${problems.join('; ')}`), {
      result,
    });
  }
  const pit =
    pointInTime === undefined
      ? ''
      : pointInTime.skipped !== undefined
        ? '; point in time skipped (see the warning)'
        : `; point in time ${pointInTime.target} (seed ${pointInTime.seed}) ` +
          `reached ${pointInTime.reached ?? 'the target'}, restored ` +
          `in ${pointInTime.restoreSeconds.toFixed(1)} s`;
  log.info(
    `restore drill of backup ${result.id} passed: ${result.tablesChecked} tables, ${result.rowsChecked} rows, ` +
      `restored in ${result.restoreSeconds.toFixed(1)} s${pit}`,
    { event: 'drill-ok', ...result },
  );
  return result;
}

/** The database id of the backup a drill reports on. */
function databaseIdOfStore(backups: readonly Manifest[], id: string): string {
  return backups.find((m) => m.id === id)?.databaseId ?? 'unknown';
}

/** The logical part: the newest logical backup restored into the target database and compared. */
async function drillLogical(
  cfg: DrillConfig,
  signal: AbortSignal,
): Promise<{ result: LogicalDrill; engine: Manifest['engine'] }> {
  const storage = openStorage(cfg.from);
  const latest = { kind: 'latest', database: cfg.database } as const;
  const [manifest] = await selectBackups(storage, latest, { missingIsDamage: true, accept: whyNotDrillable });
  const driver = driverFor(manifest.engine);
  const databaseId = databaseIdOfManifest(manifest);
  const physical = manifest.method === BackupMethod.PHYSICAL;
  if (
    !physical &&
    (driver.countTables === undefined || driver.dropDatabase === undefined || driver.databaseExists === undefined)
  ) {
    throw new ConfigError(`restore drills are not available for ${manifest.engine} in this release.`);
  }
  if (!physical) await refuseExisting(driver, cfg);
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
    let restored: TableStat[];
    if (physical) {
      restored = await driver.drillPhysical!({ ...cfg, check: checkBeforeWork(cfg.identity) }, manifest, signal);
    } else {
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
      restored = await driver.countTables!(cfg.target);
    }
    restoreSeconds = (Date.now() - started) / 1000;
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
    if (!physical) {
      await driver.dropDatabase!(cfg.target).catch((e: Error) =>
        log.warn(`could not drop the drill database: ${e.message}`),
      );
    }
  }
  return { result: { id: manifest.id, restoreSeconds, tablesChecked, rowsChecked, problems }, engine: manifest.engine };
}

async function refuseExisting(driver: EngineDriver, cfg: DrillConfig): Promise<void> {
  if (await driver.databaseExists!(cfg.target)) {
    throw new ConfigError(
      `the drill's target database ${cfg.target.database} already exists ` +
        `on ${cfg.target.display}; a drill restores into a database it creates and ` +
        `drops. Name a database that does not exist (on a scratch server).`,
    );
  }
}

/**
 * The point-in-time part: a seeded random moment of the window, restored and checked by the
 * engine. A restore that fails or stops short of the moment fails the drill.
 */
async function drillPointInTime(
  cfg: DrillConfig,
  window: ArchiveWindow,
  signal: AbortSignal,
  databaseId: string,
): Promise<PointInTimeDrill | undefined> {
  const driver = driverFor(window.engine);
  if (driver.drillToTime === undefined) return undefined;
  const seed = cfg.seed ?? crypto.randomBytes(8).toString('hex');
  let chosen: Date | undefined;
  const pick = (from: Date, to: Date) => {
    chosen = pickMoment(seed, from, to, window.holes);
    log.info(
      `point-in-time drill: restoring ${window.engine} to ${chosen.toISOString()}, drawn ` +
        `with seed ${seed} from ${from.toISOString()} .. ${to.toISOString()}`,
      { event: 'drill-pitr-start', engine: window.engine, moment: chosen.toISOString(), seed },
    );
    return chosen;
  };
  try {
    const r = await driver.drillToTime(
      {
        from: cfg.from,
        target: cfg.target,
        identity: cfg.identity,
        database: cfg.database,
        window,
        pick,
        check: checkBeforeWork(cfg.identity),
      },
      signal,
      runRestore,
    );
    if (r.skipped !== undefined) {
      log.warn(`point-in-time drill skipped: ${r.skipped}`, { event: 'drill-pitr-skipped', engine: window.engine });
      return { ...r, engine: window.engine, seed };
    }
    return { ...r, engine: window.engine, seed };
  } catch (e) {
    if ((e as Error).name === 'ConfigError' || signal.aborted) throw e;
    const moment = chosen?.toISOString() ?? '(not drawn)';
    const problem =
      chosen === undefined
        ? `the point-in-time drill (seed ${seed}) failed before it drew a moment: ${(e as Error).message}`
        : `the point-in-time restore to ${moment} (seed ${seed}) failed: ${(e as Error).message}`;
    if ((e as Error).name !== 'DamagedError') {
      log.error(problem, { event: 'drill-failed', seed });
      emitMetrics(databaseId, {
        [METRICS.DRILL_FAILED]: 1,
        [METRICS.DRILL_SUCCEEDED]: 0,
      });
      throw Object.assign(e as Error, { message: problem });
    }
    return {
      engine: window.engine,
      seed,
      base: '',
      target: moment,
      restoreSeconds: 0,
      tablesChecked: 0,
      rowsCounted: 0,
      problems: [problem],
    };
  }
}
