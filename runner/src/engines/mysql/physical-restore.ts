/**
 * Restores of MySQL/MariaDB physical backups into a data directory:
 *
 *   restore --from URL --id ID --target-dir DIR         a full, or an incremental/differential
 *                                                       (its chain: the full, then each incremental)
 *   restore --from URL --to-time T --target-dir DIR     the newest physical backup that ended by T
 *                                                       (its chain), then the archived binary logs
 *                                                       replayed from its position up to T
 *
 * 1. Plan: the chain from the manifests (a missing parent is a broken chain: exit 3), each link's
 *    LSNs continuing the one before (an incremental starts at the LSN its parent ended at), every
 *    kms: manifest authenticated; for --to-time the binary logs the replay needs, from the archive
 *    `binlog-stream` fills (a gap fails here, before anything is written).
 * 2. Fetch every artifact through the verified read path (stored bytes against the manifest,
 *    decryption, decompression) and unpack each with `mbstream -x` into its own scratch
 *    directory inside DIR (`DIR/.dbbackup-restore-*`), every chunk checked first (mbstream.ts: no
 *    path outside the scratch directory, CRC-32 of each payload). Its xtrabackup_checkpoints must
 *    say what its manifest says.
 * 3. `mariadb-backup --prepare` on the full, then `--prepare --incremental-dir` for each
 *    incremental in order (XtraBackup: `--apply-log-only` on every step but the last).
 * 4. --to-time: a temporary server on the prepared files (physical-server.ts: socket only, no
 *    network, no grant tables, no binary log) replays `mariadb-binlog --start-position P
 *    --stop-datetime T+1s` of the archived logs, then is shut down cleanly.
 * 5. The prepared files are moved (renamed, same file system) into DIR and the scratch directory
 *    is removed. DIR must be new or empty; any failure before step 5 removes the scratch
 *    directory (and DIR, with any parent the restore made for it), so DIR is left as it was.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ConfigError } from '../../../../lib/core/errors';
import { RunnerCommand } from '../../../../lib/core/contract';
import { Manifest, TableStat } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { chainOf } from '../../archive/chain';
import { assertAuthentic, readCatalog, selectBackups } from '../../catalog';
import { RestoreConfig } from '../../config';
import { BackupError, DamagedError } from '../../errors';
import { log } from '../../log';
import { prepareDecryption } from '../../pipeline/encrypt';
import { readBack } from '../../pipeline/read-back';
import { Child, findTool } from '../../pipeline/stages';
import { openStorage, Storage } from '../../storage';
import { CheckBeforeWork, PhysicalDrillConfig, RestoreResult, ToolNeed } from '../shared/engine';
import { countRows } from './client';
import { MysqlSession } from './session';
import { binlogBase, fetchBinlog, planBinlogReplay, readBinlogIndexes } from './binlog-archive';
import { replayBinlogs, replayTool } from './binlog-restore';
import { Checkpoints, MbstreamSummary, parseCheckpoints, unpackStream } from './mbstream';
import { checkPhysicalTools, physicalToolsOf, PhysicalTools } from './physical';
import { chownTree, serverUser, startTempServer } from './physical-server';

export interface MysqlPhysicalRestoreResult extends RestoreResult {
  /** The backups laid down, full first. */
  readonly chain: string[];
  readonly recoveryTarget: string;
  /** The binary logs replayed (a --to-time restore). */
  readonly binlogs: string[];
  /** How to start the restored server. */
  readonly next: string;
}

/** Whether a manifest is a physical MySQL/MariaDB backup. */
export function isMysqlPhysical(m: Manifest): boolean {
  return m.engine === Engine.MYSQL && m.method === BackupMethod.PHYSICAL;
}

/** The chain of `chosen`, base first, as it is laid down: a differential needs only its full. */
export function physicalChain(chosen: Manifest, byId: ReadonlyMap<string, Manifest>): Manifest[] {
  const chain = chainOf(chosen, byId);
  const steps = chosen.type === BackupType.DIFFERENTIAL ? [chain[0], chosen] : chain;
  for (const m of steps) {
    if (!isMysqlPhysical(m)) {
      throw new DamagedError(
        `backup ${chosen.id} depends on ${m.id}, which is a ${m.engine} ${m.method} backup, not a MySQL/MariaDB ` +
          'physical one: the chain is broken. Restore a newer full physical backup.',
      );
    }
  }
  // Each incremental starts where the step before ended (the LSNs its manifest records).
  for (let i = 1; i < steps.length; i++) {
    const prev = steps[i - 1];
    const cur = steps[i];
    if (cur.startPosition?.lsn === undefined || cur.startPosition.lsn !== prev.position?.lsn) {
      throw new DamagedError(
        `backup ${cur.id} starts at LSN ${cur.startPosition?.lsn ?? '(unrecorded)'}, but ${prev.id} before it in the ` +
          `chain ends at LSN ${prev.position?.lsn ?? '(unrecorded)'}: the chain is out of order or broken. ` +
          'Restore a newer full physical backup.',
      );
    }
  }
  return steps;
}

/** The physical artifact of a backup. */
function physicalArtifact(m: Manifest) {
  const a = m.artifacts.find((x) => x.role === 'physical');
  if (a === undefined) throw new DamagedError(`backup ${m.id} holds no physical artifact (role physical)`);
  return a;
}

/** Check a step's unpacked xtrabackup_checkpoints against its manifest. */
function checkCheckpoints(m: Manifest, summary: MbstreamSummary): Checkpoints {
  const cp = parseCheckpoints(summary.kept.get('xtrabackup_checkpoints') ?? '');
  if (cp === undefined) {
    throw new DamagedError(`the stream of backup ${m.id} holds no readable xtrabackup_checkpoints`);
  }
  const wantFrom = m.type === BackupType.FULL ? '0' : m.startPosition?.lsn;
  if (cp.toLsn !== m.position?.lsn || cp.fromLsn !== wantFrom) {
    throw new DamagedError(
      `the stream of backup ${m.id} covers LSN ${cp.fromLsn} to ${cp.toLsn}, but its manifest says ` +
        `${wantFrom ?? '?'} to ${m.position?.lsn ?? '?'}: it is not the backup the chain needs.`,
    );
  }
  if ((m.type === BackupType.FULL) !== (cp.backupType === 'full-backuped')) {
    throw new DamagedError(
      `the stream of backup ${m.id} is a ${cp.backupType} backup, but its manifest says ${m.type}`,
    );
  }
  return cp;
}

/**
 * Fetch, check and unpack every step of `steps` into `scratch/<n>`; returns the directories in
 * order. Nothing outside `scratch` is written.
 */
export async function unpackChain(
  storage: Storage,
  steps: readonly Manifest[],
  scratch: string,
  identity: string | undefined,
  signal: AbortSignal,
): Promise<string[]> {
  const dirs: string[] = [];
  for (const [i, m] of steps.entries()) {
    const a = physicalArtifact(m);
    const tools = physicalToolsOf(a.format);
    const dir = path.join(scratch, `${i}-${m.type}`);
    await fs.promises.mkdir(dir, { mode: 0o700 });
    const dec = await prepareDecryption(m.pipeline.encryption, identity, m.id);
    let summary: MbstreamSummary | undefined;
    try {
      const what = `the physical backup ${m.id}`;
      const unpack = async (p: Readable) => {
        summary = await unpackStream(p, dir, tools.extract, what);
      };
      await readBack(storage, m, a, dec, unpack, signal);
    } finally {
      await dec.cleanup();
    }
    checkCheckpoints(m, summary!);
    log.info(`unpacked ${m.id}/${a.name}: ${summary!.files} files, ${summary!.payloadBytes} bytes`, {
      event: 'physical-unpacked',
      id: m.id,
      files: summary!.files,
      bytes: summary!.payloadBytes,
    });
    dirs.push(dir);
  }
  return dirs;
}

/** `--prepare` the full in dirs[0], then apply each incremental in order. */
export async function prepareChain(tools: PhysicalTools, dirs: readonly string[], signal: AbortSignal): Promise<void> {
  const run = async (args: string[], what: string) => {
    if (signal.aborted) throw signal.reason;
    log.info(`${path.basename(tools.backup)} ${what}`, { event: 'physical-prepare' });
    const child = new Child({ cmd: tools.backup, args, label: `${path.basename(tools.backup)} --prepare` }, [
      'ignore',
      'ignore',
      'pipe',
    ]);
    const onAbort = () => child.kill();
    signal.addEventListener('abort', onAbort);
    try {
      await child.done;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  };
  const last = dirs.length - 1;
  const applyOnly = (i: number) => (tools.applyLogOnly && i < last ? ['--apply-log-only'] : []);
  await run(['--prepare', ...applyOnly(0), `--target-dir=${dirs[0]}`], 'prepares the full backup');
  for (let i = 1; i < dirs.length; i++) {
    await run(
      ['--prepare', ...applyOnly(i), `--target-dir=${dirs[0]}`, `--incremental-dir=${dirs[i]}`],
      `applies incremental ${i} of ${last}`,
    );
    await fs.promises.rm(dirs[i], { recursive: true, force: true });
  }
}

/** A target directory: new or empty; `undo` puts it back as it was. */
async function openTarget(dir: string): Promise<{ real: string; made?: string }> {
  const st = await fs.promises.lstat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new ConfigError(`--target-dir ${dir} cannot be used (${e.code ?? e.message}); give a new or empty one.`);
  });
  if (st !== undefined && !st.isDirectory()) {
    throw new ConfigError(`--target-dir ${dir} exists and is not a directory (or is a link); give a new or empty one.`);
  }
  if (st !== undefined) {
    const entries = await fs.promises.readdir(dir);
    if (entries.length > 0) {
      throw new ConfigError(
        `--target-dir ${dir} is not empty (${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}); ` +
          'a physical restore lays a whole data directory down and refuses to mix it with one. ' +
          'Give a new or empty directory' +
          (entries.some((e) => e.startsWith('.dbbackup-restore-'))
            ? ' (a .dbbackup-restore-* directory is what a killed restore left: remove it and run again).'
            : '.'),
      );
    }
  }
  // The first directory this restore makes (DIR or a missing parent): a failed restore removes it.
  let made: string | undefined;
  if (st === undefined) {
    made = dir;
    while (!fs.existsSync(path.dirname(made)) && path.dirname(made) !== made) made = path.dirname(made);
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  }
  return { real: await fs.promises.realpath(dir), made };
}

/** The owner the restored files get when this program runs as root. */
async function ownerFor(real: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const st = await fs.promises.stat(real);
  if (st.uid !== 0) return { uid: st.uid, gid: st.gid };
  const user = serverUser();
  return user === undefined ? undefined : { uid: user.uid, gid: user.gid };
}

/** Choose the backup a restore starts from. */
async function choose(cfg: RestoreConfig, storage: Storage, backups: readonly Manifest[]): Promise<Manifest> {
  if (cfg.toTime === undefined || cfg.selector.kind === 'id') {
    const accept = (m: Manifest) => (isMysqlPhysical(m) ? undefined : 'not a MySQL/MariaDB physical backup');
    const chosen = (await selectBackups(storage, cfg.selector, { accept }))[0];
    if (!isMysqlPhysical(chosen)) {
      throw new ConfigError(
        `backup ${chosen.id} is a ${chosen.engine} ${chosen.method} backup; --target-dir takes physical backups. ` +
          'Restore it with --target URL.',
      );
    }
    if (cfg.toTime !== undefined && new Date(chosen.endedAt) > cfg.toTime) {
      throw new ConfigError(
        `backup ${chosen.id} ended at ${chosen.endedAt}, after ${cfg.toTime.toISOString()}; the backup a ` +
          'point-in-time restore starts from must end before the moment.',
      );
    }
    return chosen;
  }
  const t = cfg.toTime;
  const database = cfg.selector.kind === 'latest' ? cfg.selector.database : undefined;
  const all = backups.filter(
    (m) => isMysqlPhysical(m) && (database === undefined || m.database === database || m.databaseId === database),
  );
  const ids = [...new Set(all.map((m) => m.databaseId))];
  if (ids.length > 1) {
    throw new ConfigError(
      `${storage.url.display} holds physical backups of several servers (${ids.join(', ')}); name one with ` +
        '--database NAME or start from a backup with --id ID.',
    );
  }
  const before = all.filter((m) => new Date(m.endedAt) <= t && m.position?.file !== undefined);
  if (before.length === 0) {
    throw new BackupError(
      all.length === 0
        ? `there is no MySQL/MariaDB physical backup in ${storage.url.display}; point-in-time recovery starts from one.`
        : `no physical backup with a binary log position in ${storage.url.display} ended before ${t.toISOString()}; ` +
            `the earliest restorable moment is ${all[0].endedAt} (when ${all[0].id} ended).`,
    );
  }
  return before[before.length - 1];
}

/** `restore --target-dir DIR` of a MySQL/MariaDB physical backup (see the file's comment). */
export async function runMysqlPhysicalRestore(
  cfg: RestoreConfig,
  signal: AbortSignal,
  check: CheckBeforeWork,
): Promise<MysqlPhysicalRestoreResult> {
  const started = Date.now();
  if (cfg.targetDir === undefined) throw new ConfigError('a physical restore needs --target-dir DIR.');
  if (cfg.target !== undefined) {
    throw new ConfigError(
      'give --target-dir DIR or --target URL, not both: a physical restore lays down a data directory; start ' +
        'mariadbd on it.',
    );
  }
  const dir = path.resolve(cfg.targetDir);
  const storage = openStorage(cfg.from);
  const catalog = await readCatalog(storage);
  const byId = new Map(catalog.backups.map((m) => [m.id, m]));
  const chosen = await choose(cfg, storage, catalog.backups);
  const steps = physicalChain(chosen, byId);
  for (const m of steps) await assertAuthentic(m);
  const tools = physicalToolsOf(physicalArtifact(steps[0]).format);
  checkPhysicalTools(tools, `restoring ${chosen.id}`);
  const last = steps[steps.length - 1];

  // The binary logs a --to-time restore replays: planned before anything is written.
  let replayPlan: ReturnType<typeof planBinlogReplay> = [];
  if (cfg.toTime !== undefined) {
    const where = `${storage.url.display}/binlog`;
    if (last.position?.file === undefined || last.position.pos === undefined) {
      throw new BackupError(
        `backup ${last.id} records no binary log position; it cannot start a point-in-time restore.`,
      );
    }
    const index = (await readBinlogIndexes(storage)).find((i) => i.base === binlogBase(last.position!.file!));
    if (index === undefined) {
      throw new BackupError(
        `the binary log archive ${where} holds no logs of ${binlogBase(last.position.file)}.*; run dbbackup ` +
          `binlog-stream --source … --to ${storage.url.display} to archive them.`,
      );
    }
    replayPlan = planBinlogReplay(index, last, cfg.toTime, where);
    log.info(
      `restoring to ${cfg.toTime.toISOString()}: ${steps.map((m) => m.id).join(' + ')}, then ` +
        `${replayPlan.map((f) => f.name).join(', ') || 'no binary log'} from position ${last.position.pos}`,
      { event: 'pitr-plan', base: steps[0].id, binlogs: replayPlan.length },
    );
  }

  // Every program the plan runs (read-back stages, the stream extractor and backup tool; to a
  // moment the temporary server and the replay) is checked before anything is read or written.
  const need = (cmd: string, why: string, fix: string, versionArgs?: string[]): ToolNeed => ({
    cmd,
    label: path.basename(cmd),
    why,
    fix,
    versionArgs,
  });
  await check({
    manifests: steps,
    objects: replayPlan.flatMap((f) => f.chunks),
    tools: [
      // mbstream/xbstream have no --version; --help prints and exits 0.
      need(tools.extract, `unpacking the ${tools.stream} stream`, tools.fix, ['--help']),
      need(tools.backup, 'preparing the physical backup (--prepare)', tools.fix),
      ...(cfg.toTime === undefined
        ? []
        : [
            need(
              findTool(['mariadbd', 'mysqld'], ['/usr/sbin']) ?? 'mariadbd',
              'the temporary server a restore to a moment replays the binary logs on',
              'install the MariaDB server binary (Debian: mariadb-server-core)',
            ),
            replayTool(),
          ]),
    ],
  });

  // A missing or wrong key is refused before the target is touched (each step's key, once).
  for (const m of steps) await (await prepareDecryption(m.pipeline.encryption, cfg.identity, m.id)).cleanup();

  const target = await openTarget(dir);
  const was = await fs.promises.stat(target.real);
  const scratch = await fs.promises.mkdtemp(path.join(target.real, '.dbbackup-restore-'));
  const moved: string[] = [];
  try {
    // Run as root, the files go to the target's owner (or the mysql user): the temporary server
    // runs as that user and must reach them.
    const owner = await ownerFor(target.real);
    if (owner !== undefined) {
      await fs.promises.chown(target.real, owner.uid, owner.gid);
      await fs.promises.chown(scratch, owner.uid, owner.gid);
    }
    const dirs = await unpackChain(storage, steps, scratch, cfg.identity, signal);
    const binlogFiles: string[] = [];
    if (replayPlan.length > 0) {
      const binDir = path.join(scratch, 'binlogs');
      await fs.promises.mkdir(binDir, { mode: 0o700 });
      for (const f of replayPlan) {
        const file = path.join(binDir, path.basename(f.name));
        await fetchBinlog(storage, f, file, cfg.identity, signal);
        binlogFiles.push(file);
      }
    }
    await prepareChain(tools, dirs, signal);
    const data = dirs[0];
    if (cfg.toTime !== undefined && binlogFiles.length > 0) {
      const run = path.join(scratch, 'run');
      await fs.promises.mkdir(run, { mode: 0o700 });
      const server = await startTempServer(data, run);
      try {
        // The whole server's events; FLUSH PRIVILEGES first: the grant tables are loaded, so
        // GRANT/CREATE USER events replay too.
        await replayBinlogs(
          { files: binlogFiles, startPosition: last.position!.pos!, stop: { time: cfg.toTime } },
          {
            connArgs: server.clientArgs,
            args: ['--init-command=FLUSH PRIVILEGES'],
            label: 'mariadb (binlog replay)',
          },
          signal,
        );
      } finally {
        await server.stop();
      }
    }
    if (signal.aborted) throw signal.reason;
    if (owner !== undefined) await chownTree(data, owner.uid, owner.gid);
    for (const name of await fs.promises.readdir(data)) {
      await fs.promises.rename(path.join(data, name), path.join(target.real, name));
      moved.push(name);
    }
    await fs.promises.rm(scratch, { recursive: true, force: true });
  } catch (e) {
    log.info(`removing what the failed restore wrote in ${dir}`);
    await fs.promises.rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    for (const name of moved) {
      await fs.promises.rm(path.join(target.real, name), { recursive: true, force: true }).catch(() => undefined);
    }
    if (target.made !== undefined)
      await fs.promises.rm(target.made, { recursive: true, force: true }).catch(() => undefined);
    else await fs.promises.chown(target.real, was.uid, was.gid).catch(() => undefined);
    throw e;
  }
  const seconds = (Date.now() - started) / 1000;
  const recoveryTarget =
    cfg.toTime !== undefined
      ? cfg.toTime.toISOString()
      : `the end of ${last.id} (${last.position?.file ?? 'LSN'}:${last.position?.pos ?? last.position?.lsn})`;
  log.info(`laid down ${steps.map((m) => m.id).join(' + ')} in ${dir}, prepared to ${recoveryTarget}`, {
    event: 'restore-done',
    id: chosen.id,
    seconds,
  });
  const serverBin = path.basename(findTool(['mariadbd', 'mysqld'], ['/usr/sbin']) ?? 'mariadbd');
  return {
    id: chosen.id,
    target: dir,
    seconds,
    artifacts: steps.map((m) => `${m.id}/${physicalArtifact(m).name}`),
    chain: steps.map((m) => m.id),
    recoveryTarget,
    binlogs: replayPlan.map((f) => f.name),
    next: `${serverBin} --datadir=${dir}   (as the database's OS user; the files are prepared, no recovery is left)`,
  };
}

/**
 * A restore drill of a physical backup: its chain laid down and prepared in a scratch directory
 * under TMPDIR (as `restore --target-dir` does), a temporary server started on it (socket only,
 * no network, no grant tables), the row counts of the backup's database read, the server shut
 * down and the directory removed, whatever the outcome.
 */
export async function drillMysqlPhysical(
  cfg: PhysicalDrillConfig,
  manifest: Manifest,
  signal: AbortSignal,
  /** A point-in-time drill: the newest physical chain of `database` before `toTime`, replayed up to it. */
  moment?: { readonly toTime: Date; readonly database: string },
): Promise<TableStat[]> {
  const scratch = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-drill-'));
  try {
    const user = serverUser();
    if (user !== undefined) await fs.promises.chown(scratch, user.uid, user.gid);
    const data = path.join(scratch, 'data');
    await runMysqlPhysicalRestore(
      {
        command: RunnerCommand.RESTORE,
        from: cfg.from,
        selector:
          moment === undefined ? { kind: 'id', id: manifest.id } : { kind: 'latest', database: moment.database },
        ...(moment === undefined ? {} : { toTime: moment.toTime }),
        targetDir: data,
        identity: cfg.identity,
        withGlobals: false,
        clean: false,
        json: false,
      },
      signal,
      cfg.check,
    );
    const run = path.join(scratch, 'run');
    await fs.promises.mkdir(run, { mode: 0o700 });
    const server = await startTempServer(data, run);
    try {
      const client = findTool(['mariadb', 'mysql']) ?? 'mariadb';
      const session = new MysqlSession({ cmd: client, args: [...server.clientArgs], label: 'mariadb (drill)' });
      try {
        return await countRows(session, manifest.database);
      } finally {
        await session.close();
      }
    } finally {
      await server.stop();
    }
  } finally {
    await fs.promises.rm(scratch, { recursive: true, force: true });
  }
}
