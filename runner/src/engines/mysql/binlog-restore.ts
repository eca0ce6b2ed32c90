/**
 * MySQL/MariaDB restores that replay binary logs after a full backup:
 *
 *   restore --from URL --to-time ISO --target mysql://…   the newest full backup before the moment,
 *                                                          then the archived binary logs from the
 *                                                          position it recorded up to the moment
 *   restore --from URL --id INC --target mysql://…        an incremental/differential: its full, then
 *                                                          the binary log ranges of its chain
 *
 * Replay is `mariadb-binlog --start-position … [--stop-datetime … | --stop-position …]` piped
 * to the client, limited to the backup's database (`--database`) and renamed to the target's
 * (`--rewrite-db`). Binary logs record time in whole seconds: a restore to T replays every
 * transaction the server logged in or before the second of T (UTC).
 *
 * `replayBinlogs` is that replay, once, for these restores and for a physical restore's temporary
 * server (physical-restore.ts), which replays the whole server instead of one database.
 *
 * Everything the replay needs is planned and fetched (and checked) before the target is touched;
 * a gap fails the restore with a message naming the missing log. If the replay itself fails, a
 * database the restore created is dropped again.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SECRET_ENV } from '../../../../lib/core/contract';
import { ConfigError } from '../../../../lib/core/errors';
import { Manifest } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { SourceUrl } from '../../../../lib/core/urls';
import { ConfinedDir, extractTar } from '../../pipeline/untar';
import { assertAuthentic, readCatalog, selectBackups } from '../../catalog';
import { RestoreConfig } from '../../config';
import { BackupError } from '../../errors';
import { log } from '../../log';
import { prepareDecryption } from '../../pipeline/encrypt';
import { binlogBase, binlogBases, fetchBinlog, planBinlogReplay, readBinlogIndexes } from './binlog-archive';
import { guarded } from '../../pipeline/abort';
import { findTool, Pipeline } from '../../pipeline/stages';
import { openStorage } from '../../storage';
import { chainOf } from '../../archive/chain';
import { readBack } from '../../pipeline/read-back';
import { CheckBeforeWork, EngineDriver, RestoreBackup, RestoreResult, ToolNeed } from '../shared/engine';
import { clientTool, mysqlConnArgs, mysqlEnv } from './client';

export interface BinlogRestoreResult extends RestoreResult {
  /** The backups restored and replayed, full first. */
  readonly chain: string[];
  readonly recoveryTarget: string;
  /** The binary logs replayed. */
  readonly binlogs: string[];
}

/** `2026-11-25 04:15:01` (UTC): the first second after the moment's, where replay stops. */
export function stopDatetime(t: Date): string {
  return new Date((Math.floor(t.getTime() / 1000) + 1) * 1000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '');
}

/** The program that turns binary logs into statements (the client that applies them is a restore tool). */
export function replayTool(): ToolNeed {
  const cmd = findTool(['mariadb-binlog', 'mysqlbinlog']) ?? 'mariadb-binlog';
  return {
    cmd,
    label: path.basename(cmd),
    why: 'replaying MySQL/MariaDB binary logs',
    fix: 'install the MariaDB or MySQL client (Debian: mariadb-client), which has mariadb-binlog/mysqlbinlog',
  };
}

/** What a replay reads: archived binary logs, from a position in the first to a stop. */
export interface BinlogReplay {
  readonly files: readonly string[];
  /** The position in the first file where replay starts (the base's recorded position). */
  readonly startPosition: number;
  /**
   * Where replay stops: in the second after a moment (`--stop-datetime`, a restore to a time) or at
   * a position in the last file (`--stop-position`, the end of a binary log range).
   */
  readonly stop: { readonly time: Date } | { readonly position: number };
  /**
   * Only this database's events, renamed to `to` (a logical restore into one database); absent:
   * every event (a physical restore, whose temporary server is the whole server).
   */
  readonly database?: { readonly from: string; readonly to: string };
}

/** Where a replay's statements go: the client's connection and what it runs first. */
export interface ReplayClient {
  /** The connection arguments (before `--binary-mode`). */
  readonly connArgs: readonly string[];
  /** Arguments after `--binary-mode`: the database to use, an `--init-command`. */
  readonly args: readonly string[];
  /** The client's environment (a password, as mysqlEnv makes it). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly label: string;
}

/**
 * Replay binary logs into a server: `mariadb-binlog` (or `mysqlbinlog`) piped to the client, every
 * stage awaited, killed when `signal` aborts. The one replay of every MySQL/MariaDB restore: a
 * logical restore to a moment, a binary log chain, and a physical restore's temporary server.
 */
export async function replayBinlogs(r: BinlogReplay, client: ReplayClient, signal: AbortSignal): Promise<void> {
  const tool = replayTool().cmd;
  const stop = 'time' in r.stop ? `--stop-datetime=${stopDatetime(r.stop.time)}` : `--stop-position=${r.stop.position}`;
  const db = r.database;
  const pipeline = new Pipeline([
    {
      cmd: tool,
      args: [
        '--no-defaults',
        `--start-position=${r.startPosition}`,
        stop,
        ...(db !== undefined ? [`--database=${db.from}`] : []),
        ...(db !== undefined && db.to !== db.from ? [`--rewrite-db=${db.from}->${db.to}`] : []),
        ...r.files,
      ],
      env: { TZ: 'UTC' },
      label: path.basename(tool),
    },
    {
      cmd: clientTool(),
      args: [...client.connArgs, '--binary-mode', ...client.args],
      ...(client.env !== undefined ? { env: client.env } : {}),
      label: client.label,
    },
  ]);
  pipeline.stdout.resume();
  await guarded({ signal, pipeline }, () => pipeline.wait());
  if (signal.aborted) throw signal.reason;
}

/** The target database of a logical restore, as a replay's client. */
function targetClient(target: SourceUrl): ReplayClient {
  return {
    connArgs: mysqlConnArgs(target, '--target'),
    args: [target.database],
    env: mysqlEnv(process.env[SECRET_ENV.TARGET_PASSWORD]),
    label: 'mariadb',
  };
}

/** Restore the full backup, then run `after`; drop the database again when `after` fails and the restore created it. */
async function fullThen(
  cfg: RestoreConfig,
  full: Manifest,
  signal: AbortSignal,
  restoreBackup: RestoreBackup,
  driver: EngineDriver,
  after: () => Promise<void>,
): Promise<void> {
  const target = cfg.target!;
  const existed = (await driver.databaseExists?.(target)) ?? true;
  await restoreBackup({ ...cfg, toTime: undefined, selector: { kind: 'id', id: full.id } }, signal);
  try {
    await after();
  } catch (e) {
    if (!existed && driver.dropDatabase !== undefined) {
      log.error(
        `replaying the binary logs failed; dropping ${target.database}, ` +
          `which this restore created, so no partial restore is left`,
      );
      await driver.dropDatabase(target).catch((d: Error) => log.warn(`could not drop it: ${d.message}`));
    } else {
      log.error(
        `replaying the binary logs failed; ${target.database} holds the full ` +
          `backup ${full.id} and part of the replay: do not use it`,
      );
    }
    throw e;
  }
}

/** `restore --to-time T --target mysql://…`. */
export async function runBinlogRestore(
  cfg: RestoreConfig,
  signal: AbortSignal,
  restoreBackup: RestoreBackup,
  driver: EngineDriver,
  check: CheckBeforeWork,
): Promise<BinlogRestoreResult> {
  const started = Date.now();
  const t = cfg.toTime!;
  const target = cfg.target!;
  const storage = openStorage(cfg.from);
  const catalog = await readCatalog(storage);
  let base: Manifest;
  if (cfg.selector.kind === 'id') {
    base = (await selectBackups(storage, cfg.selector))[0];
    if (binlogBases([base]).length === 0)
      throw new ConfigError(
        `--to-time starts from a full MySQL/MariaDB backup that recorded its binlog position; ${base.id} is not one.`,
      );
  } else {
    // The backups of one database: the target's name, else the only database stored here.
    // A physical full is restored with --target-dir (physical-restore.ts), never into a database.
    const all = binlogBases(catalog.backups).filter((m) => m.method !== BackupMethod.PHYSICAL);
    const names = [...new Set(all.map((m) => m.database))];
    const same = all.filter((m) => m.database === target.database);
    if (same.length === 0 && names.length > 1) {
      throw new ConfigError(
        `${storage.url.display} holds full backups of several databases ` +
          `(${names.join(', ')}); name the one to restore from with --id (dbbackup list shows them).`,
      );
    }
    const bases = same.length > 0 ? same : all;
    const before = bases.filter((m) => new Date(m.endedAt) <= t);
    if (before.length === 0) {
      throw new BackupError(
        bases.length === 0
          ? `there is no full MySQL/MariaDB logical backup with a binlog position ` +
              `in ${storage.url.display}; point-in-time recovery into --target URL starts from one` +
              (binlogBases(catalog.backups).length > 0
                ? ' (the physical backups here restore to a moment with --target-dir DIR instead).'
                : '.')
          : `no full backup in ${storage.url.display} ended before ${t.toISOString()}; the ` +
              `earliest restorable moment is ${bases[0].endedAt} (when ${bases[0].id} ended).`,
      );
    }
    base = before[before.length - 1];
  }
  // A kms: manifest's HMAC is checked before anything is read or written, as for any restore.
  await assertAuthentic(base);
  if (target.engine !== Engine.MYSQL)
    throw new ConfigError(`backup ${base.id} is a mysql backup; --target must be a mysql:// URL.`);
  const where = `${storage.url.display}/binlog`;
  const index = (await readBinlogIndexes(storage)).find((i) => i.base === binlogBase(base.position!.file!));
  if (index === undefined) {
    throw new BackupError(
      `the binary log archive ${where} holds no logs of ${base.position!.file!.replace(/\.\d+$/, '')}.*; ` +
        `run dbbackup binlog-stream --source … --to ${storage.url.display} to archive them.`,
    );
  }
  const plan = planBinlogReplay(index, base, t, where);
  // The replay's programs, the full's restore tools and every log's read-back stages, before any read.
  await check({ manifests: [base], objects: plan.flatMap((f) => f.chunks), tools: [replayTool()], target });
  log.info(
    `restoring to ${t.toISOString()}: ${base.id}, ` +
      `then ${plan.map((f) => f.name).join(', ')} from position ${base.position!.pos}`,
    { event: 'pitr-plan', base: base.id, binlogs: plan.length },
  );

  // Fetch (and check) every log before the target is touched.
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-replay-'));
  try {
    const files: string[] = [];
    for (const f of plan) {
      const file = path.join(tmp, f.name);
      await fetchBinlog(storage, f, file, cfg.identity, signal);
      files.push(file);
    }
    await fullThen(cfg, base, signal, restoreBackup, driver, () =>
      replayBinlogs(
        {
          files,
          startPosition: base.position!.pos!,
          stop: { time: t },
          database: { from: base.database, to: target.database },
        },
        targetClient(target),
        signal,
      ),
    );
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
  const seconds = (Date.now() - started) / 1000;
  log.info(`restored ${target.display} to ${t.toISOString()} in ${seconds.toFixed(1)} s`, {
    event: 'restore-done',
    id: base.id,
    seconds,
  });
  return {
    id: base.id,
    target: target.display,
    seconds,
    artifacts: base.artifacts.map((a) => a.name),
    chain: [base.id],
    recoveryTarget: t.toISOString(),
    binlogs: plan.map((f) => f.name),
  };
}

/** `restore --id INC --target mysql://…` of an incremental or differential backup. */
export async function runBinlogChainRestore(
  cfg: RestoreConfig,
  manifest: Manifest,
  signal: AbortSignal,
  restoreBackup: RestoreBackup,
  driver: EngineDriver,
  check: CheckBeforeWork,
): Promise<BinlogRestoreResult> {
  const started = Date.now();
  const target = cfg.target!;
  const storage = openStorage(cfg.from);
  const catalog = await readCatalog(storage);
  const chain = chainOf(manifest, new Map(catalog.backups.map((m) => [m.id, m])));
  for (const m of chain) await assertAuthentic(m);
  await check({ manifests: chain, tools: [replayTool()], target });
  const full = chain[0];
  const ranges = manifest.type === BackupType.DIFFERENTIAL ? [manifest] : chain.slice(1);
  // Read every range back (checked against its manifest) before the target is touched.
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-replay-'));
  const binlogs: string[] = [];
  try {
    const dirs: { m: Manifest; dir: string; files: string[] }[] = [];
    for (const m of ranges) {
      const a = m.artifacts.find((x) => x.role === 'binlog');
      if (a === undefined || m.startPosition?.pos === undefined || m.position?.pos === undefined)
        throw new BackupError(`backup ${m.id} holds no binary log range`);
      const dir = path.join(tmp, m.id);
      await fs.promises.mkdir(dir);
      const dec = await prepareDecryption(m.pipeline.encryption, cfg.identity, m.id);
      try {
        // Laid down by the runner's own confined extractor (regular files only, nothing outside
        // the folder, no links followed), as a physical base is: never `tar -x` of stored bytes.
        const confined = await ConfinedDir.open(dir);
        try {
          const what = `the binary log range of backup ${m.id}`;
          await readBack(storage, m, a, dec, async (p) => void (await extractTar(p, confined, { what })), signal);
        } finally {
          confined.close();
        }
      } finally {
        await dec.cleanup();
      }
      const files = (await fs.promises.readdir(dir)).sort();
      if (files[0] !== m.startPosition.file || files[files.length - 1] !== m.position.file) {
        throw new BackupError(
          `backup ${m.id} should hold the binary logs ${m.startPosition.file} ` +
            `to ${m.position.file}, but holds ${files.join(', ')}`,
        );
      }
      dirs.push({ m, dir, files: files.map((f) => path.join(dir, f)) });
      binlogs.push(...files);
    }
    await fullThen(cfg, full, signal, restoreBackup, driver, async () => {
      for (const d of dirs)
        await replayBinlogs(
          {
            files: d.files,
            startPosition: d.m.startPosition!.pos!,
            stop: { position: d.m.position!.pos! },
            database: { from: full.database, to: target.database },
          },
          targetClient(target),
          signal,
        );
    });
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
  const seconds = (Date.now() - started) / 1000;
  log.info(
    `restored ${manifest.type} backup ${manifest.id} ` +
      `(${chain.map((m) => m.id).join(' + ')}) into ${target.display} in ${seconds.toFixed(1)} s`,
    { event: 'restore-done', id: manifest.id, seconds },
  );
  return {
    id: manifest.id,
    target: target.display,
    seconds,
    artifacts: chain.flatMap((m) => m.artifacts.map((a) => `${m.id}/${a.name}`)),
    chain: chain.map((m) => m.id),
    recoveryTarget: `the end of ${manifest.id} (${manifest.position?.file}:${manifest.position?.pos})`,
    binlogs,
  };
}
