/**
 * Physical and point-in-time restores of PostgreSQL into a data directory:
 *
 *   restore --from URL --to-time ISO --target-dir DIR   newest base before the moment + WAL archive
 *   restore --from URL --id ID --target-dir DIR         a base (as it was when it ended), or an
 *                                                       incremental/differential (its chain, replayed
 *                                                       to its end)
 *
 * The base is laid down from its tar (read back through the shared, verified read path, and
 * written by this process into DIR only: see layDownBase and pipeline/untar.ts), then the
 * recovery settings: recovery.signal, and in postgresql.auto.conf a restore_command running
 * `dbbackup wal-fetch`, the recovery target and recovery_target_action = 'promote'. Starting
 * PostgreSQL on DIR then recovers to exactly that point and opens for writes.
 *
 * Before anything is written, the WAL the recovery needs is checked in the archive's listing: a
 * missing segment fails the restore with a message naming it, never a partial restore.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ConfigError } from '../../../../lib/core/errors';
import { Manifest } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { StorageUrl } from '../../../../lib/core/urls';
import { assertAuthentic, readCatalog, selectBackups } from '../../catalog';
import { RestoreConfig } from '../../config';
import { CheckBeforeWork } from '../shared/engine';
import { BackupError, DamagedError } from '../../errors';
import { log } from '../../log';
import { prepareDecryption } from '../../pipeline/encrypt';
import { ConfinedDir, Owner } from '../../pipeline/untar';
import { pgTool } from './tools';
import { layDownBase, PG_CONTROL } from './physical';
import { ArchivedObject, fetchObject } from '../../archive/log-archive';
import { Child } from '../../pipeline/stages';
import { planRecovery, readWalIndex, WAL_PREFIX, WalIndex } from './wal-archive';
import { parseHistory, parseLsn, segmentOf, TimelineStretch, timelinePath, TimelineSwitch } from './wal-names';
import { openStorage, Storage } from '../../storage';
import { chainOf } from '../../archive/chain';
import { readBack } from '../../pipeline/read-back';

export interface PhysicalRestoreResult {
  readonly id: string;
  readonly target: string;
  readonly seconds: number;
  readonly artifacts: string[];
  /** The backups laid down or replayed, base first. */
  readonly chain: string[];
  /** What recovery stops at: a moment, an LSN, or the base's consistent point. */
  readonly recoveryTarget: string;
  readonly timeline: number;
  /** WAL segments the archive must serve (a --to-time restore). */
  readonly walSegments?: number;
  /** How to start the restored server. */
  readonly next: string;
}

/** PostgreSQL writes this timestamp format for recovery_target_time. */
function pgTimestamp(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '+00');
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function confQuote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** The restore_command that runs this very program's wal-fetch. */
export function restoreCommand(from: StorageUrl, identity: string | undefined): string {
  const script = fs.realpathSync(process.argv[1]);
  const parts = [
    process.execPath,
    script,
    'wal-fetch',
    '%f',
    '%p',
    '--from',
    from.display,
    ...(identity !== undefined ? ['--identity', path.resolve(identity)] : []),
  ];
  return parts.map((p) => (p === '%f' || p === '%p' ? `"${p}"` : shellQuote(p))).join(' ');
}

function isPhysicalFull(m: Manifest): boolean {
  return m.engine === Engine.POSTGRES && m.method === BackupMethod.PHYSICAL && m.type === BackupType.FULL;
}

/** Where a physical restore writes, and how to leave it as it was. */
interface TargetDir {
  readonly dir: ConfinedDir;
  /** Whom the laid-down directory goes to at the end (running as root), if not root. */
  readonly owner?: Owner;
  /** Remove what the restore wrote; an existing directory gets its owner and mode back. */
  undo(): Promise<void>;
}

/**
 * Prepare DIR: it must be absent or empty. It is held open (see ConfinedDir) and, while the
 * restore writes, belongs to the running user with mode 0700, so nobody can plant a link in it.
 * Running as root, the result goes at the end to the owner of DIR (or of its parent, when the
 * restore makes DIR).
 */
async function prepareTargetDir(dir: string): Promise<TargetDir> {
  const before = await fs.promises.stat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new ConfigError(`--target-dir ${dir} cannot be used (${e.code ?? e.message}); give a new or empty one.`);
  });
  if (before !== undefined && !before.isDirectory()) {
    throw new ConfigError(`--target-dir ${dir} exists and is not a directory. Give a new or empty directory.`);
  }
  const notEmpty = (entries: string[]) =>
    new ConfigError(
      `--target-dir ${dir} is not empty (${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}); ` +
        'restore lays a whole data directory down and refuses to mix it with one. Give a new or empty directory ' +
        `(a restore that was killed leaves its directory behind without ${PG_CONTROL}, so PostgreSQL does not ` +
        'start on it: remove it and run again).',
    );
  if (before !== undefined) {
    const entries = await fs.promises.readdir(dir);
    if (entries.length > 0) throw notEmpty(entries);
  }
  const created = before === undefined ? await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 }) : undefined;
  const target = await ConfinedDir.open(await fs.promises.realpath(dir));
  const asRoot = process.getuid?.() === 0;
  let owner: Owner | undefined;
  if (asRoot) {
    const ref = before ?? (await fs.promises.stat(path.dirname(created ?? dir)));
    if (ref.uid !== 0) owner = { uid: ref.uid, gid: ref.gid };
  }
  const undo = async () => {
    log.info(`removing what the failed restore wrote in ${dir}`);
    if (before !== undefined) {
      await target.removeContents();
      target.restore(before, before.mode);
    } else {
      await fs.promises.rm(created ?? dir, { recursive: true, force: true });
    }
    target.close();
  };
  try {
    target.secure();
    // Checked again now that nobody else can write in it.
    const entries = await target.entries();
    if (entries.length > 0) {
      if (before !== undefined) target.restore(before, before.mode);
      throw notEmpty(entries);
    }
  } catch (e) {
    if (before === undefined) await fs.promises.rm(created ?? dir, { recursive: true, force: true });
    target.close();
    throw e;
  }
  return { dir: target, owner, undo };
}

/** The WAL segment an artifact of a WAL range carries (its name starts with the segment's). */
function segmentFile(a: { name: string }): string {
  const seg = a.name.slice(0, 24);
  if (!/^[0-9A-F]{24}$/.test(seg)) {
    throw new DamagedError(`WAL artifact '${a.name}' does not start with a WAL segment name`);
  }
  return `pg_wal/${seg}`;
}

/** When the transactions recorded in an archived segment ended (commit and abort records), read with pg_waldump. */
export async function transactionEnds(
  storage: Storage,
  segment: ArchivedObject,
  identity: string | undefined,
): Promise<Date[]> {
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-wal-'));
  try {
    const file = path.join(tmp, segment.file);
    await fetchObject(storage, WAL_PREFIX, segment, file, identity);
    // pg_waldump stops with an error where the segment's records end; what it printed before is what counts.
    const child = new Child({ cmd: pgTool('pg_waldump'), args: [file], env: { TZ: 'UTC' }, label: 'pg_waldump' }, [
      'ignore',
      'pipe',
      'pipe',
    ]);
    let out = '';
    child.process.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
    await child.done.catch(() => undefined);
    const ends: Date[] = [];
    for (const m of out.matchAll(/desc: (?:COMMIT|ABORT)\S* (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC/g))
      ends.push(new Date(m[1].replace(' ', 'T') + 'Z'));
    return ends;
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}

/** Timeline history files, read (and decrypted) from the archive. */
async function readHistories(
  storage: Storage,
  index: WalIndex,
  identity: string | undefined,
): Promise<Map<number, TimelineSwitch[]>> {
  const out = new Map<number, TimelineSwitch[]>();
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-history-'));
  try {
    for (const [name, o] of index.others) {
      const m = /^([0-9A-F]{8})\.history$/.exec(name);
      if (m === null) continue;
      const file = path.join(tmp, name);
      await fetchObject(storage, WAL_PREFIX, o, file, identity);
      out.set(parseInt(m[1], 16), parseHistory(await fs.promises.readFile(file, 'utf8')));
    }
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
  return out;
}

/**
 * The timeline a recovery from a base on `base` follows: a later timeline is followed only where
 * the earlier one ended at its switchpoint (the server was replaced by a promoted restore), never
 * to a fork (a restore that was promoted while the original server went on writing).
 */
export function chooseTimeline(
  base: number,
  index: WalIndex,
  histories: ReadonlyMap<number, readonly TimelineSwitch[]>,
): { timeline: number; history: readonly TimelineSwitch[] } {
  let best = { timeline: base, history: [] as readonly TimelineSwitch[] };
  for (const [tl, history] of [...histories].sort((a, b) => a[0] - b[0])) {
    const from = history.findIndex((h) => h.parent === base);
    if (tl <= base || from < 0) continue;
    const continued = history.slice(from).every((h) => {
      const segs = index.segments.get(h.parent);
      const switchSeg = segmentOf(h.switchpoint, index.segmentSize);
      // The switchpoint's own segment is complete on the old timeline; anything after it means the old timeline went on.
      return segs === undefined || ![...segs.keys()].some((n) => n > switchSeg);
    });
    if (continued) best = { timeline: tl, history };
  }
  return best;
}

export async function runPhysicalRestore(
  cfg: RestoreConfig,
  signal: AbortSignal,
  check: CheckBeforeWork,
): Promise<PhysicalRestoreResult> {
  const started = Date.now();
  if (cfg.targetDir === undefined)
    throw new ConfigError(
      `a PostgreSQL physical or point-in-time restore needs --target-dir DIR (the data directory to lay the backup down in).`,
    );
  if (cfg.target !== undefined)
    throw new ConfigError(
      `give --target-dir DIR or --target URL, not both: a physical restore lays down a data directory; start PostgreSQL on it.`,
    );
  const dir = path.resolve(cfg.targetDir);
  const storage = openStorage(cfg.from);
  const catalog = await readCatalog(storage);
  const byId = new Map(catalog.backups.map((m) => [m.id, m]));

  let chosen: Manifest;
  if (cfg.toTime !== undefined) {
    const t = cfg.toTime;
    if (cfg.selector.kind === 'id') {
      chosen = (await selectBackups(storage, cfg.selector))[0];
      if (!isPhysicalFull(chosen))
        throw new ConfigError(
          `--to-time starts from a full physical backup; ${chosen.id} is a ${chosen.type} ${chosen.method} backup. Leave --id out to pick the newest base before the moment.`,
        );
      if (new Date(chosen.endedAt) > t)
        throw new ConfigError(
          `backup ${chosen.id} ended at ${chosen.endedAt}, after ${t.toISOString()}; a base must end before the moment it is restored to.`,
        );
    } else {
      const bases = catalog.backups.filter(isPhysicalFull);
      const before = bases.filter((m) => new Date(m.endedAt) <= t);
      if (before.length === 0) {
        throw new BackupError(
          bases.length === 0
            ? `there is no physical base backup in ${storage.url.display} (dbbackup backup --engine postgres --method physical); point-in-time recovery starts from one.`
            : `no physical base backup in ${storage.url.display} ended before ${t.toISOString()}; the earliest restorable moment is ${bases[0].endedAt} (when ${bases[0].id} ended).`,
        );
      }
      chosen = before[before.length - 1];
    }
  } else {
    chosen = (await selectBackups(storage, cfg.selector))[0];
    if (chosen.engine !== Engine.POSTGRES || chosen.method !== BackupMethod.PHYSICAL) {
      throw new ConfigError(
        `backup ${chosen.id} is a ${chosen.engine} ${chosen.method} backup; --target-dir takes PostgreSQL physical backups. Restore it with --target URL.`,
      );
    }
  }
  const chain = chainOf(chosen, byId);
  // Every kms: manifest of the chain is authenticated (its HMAC) before anything is laid down.
  for (const m of chain) await assertAuthentic(m);
  // The programs that read the chain back (and, to a moment, the archived WAL) run, before any read.
  const walIndex = cfg.toTime === undefined ? undefined : await readWalIndex(storage);
  const wal = walIndex === undefined ? [] : [...walIndex.segments.values()].flatMap((s) => [...s.values()]);
  await check({ manifests: chain, objects: [...wal, ...(walIndex?.others.values() ?? [])] });
  const base = chain[0];
  const baseArtifact = base.artifacts.find((a) => a.role === 'base');
  if (baseArtifact === undefined || base.startPosition?.lsn === undefined || base.position?.timeline === undefined) {
    throw new BackupError(
      `backup ${base.id} has no base tar or records no WAL start point and timeline; it cannot be the base of a physical restore.`,
    );
  }

  // Plan first: nothing is written before the archive is known to hold what recovery needs.
  let settings: Record<string, string>;
  let recoveryTarget: string;
  let timeline = base.position.timeline;
  let walSegments: number | undefined;
  if (cfg.toTime !== undefined) {
    const index = walIndex!;
    const histories = await readHistories(storage, index, cfg.identity);
    const tl = chooseTimeline(base.position.timeline, index, histories);
    const startSegno = segmentOf(parseLsn(base.startPosition.lsn), index.segmentSize);
    const walPath: TimelineStretch[] | undefined = timelinePath(
      base.position.timeline,
      tl.timeline,
      tl.history,
      startSegno,
      index.segmentSize,
    );
    if (walPath === undefined)
      throw new BackupError(
        `timeline ${tl.timeline} does not descend from timeline ${base.position.timeline} of ${base.id}`,
      );
    const plan = planRecovery(index, walPath, cfg.toTime, storage.url.display);
    if (plan.following !== 'present') {
      // The segment after the last one is missing: recovery can stop only if a transaction ended after the moment in the last one.
      const last = plan.segments[plan.segments.length - 1];
      const ends = last === undefined ? [] : await transactionEnds(storage, last, cfg.identity);
      if (!ends.some((e) => e > cfg.toTime!)) throw plan.missing!;
    }
    timeline = tl.timeline;
    walSegments = plan.segments.length;
    recoveryTarget = cfg.toTime.toISOString();
    settings = {
      recovery_target_time: pgTimestamp(cfg.toTime),
      recovery_target_timeline: String(tl.timeline),
      recovery_target_action: 'promote',
    };
    log.info(
      `restoring to ${recoveryTarget}: base ${base.id}, then ${plan.segments.length} WAL segment(s) up to ${plan.segments[plan.segments.length - 1]?.file ?? '(none)'}`,
      {
        event: 'pitr-plan',
        base: base.id,
        timeline,
        segments: plan.segments.length,
      },
    );
  } else if (chosen.type === BackupType.FULL) {
    recoveryTarget = `the end of ${base.id} (${base.position.lsn})`;
    settings = {
      recovery_target: 'immediate',
      recovery_target_action: 'promote',
      recovery_target_timeline: String(base.position.timeline),
    };
  } else {
    if (chosen.position?.lsn === undefined) throw new BackupError(`backup ${chosen.id} records no end LSN`);
    timeline = chosen.position.timeline ?? timeline;
    recoveryTarget = `the end of ${chosen.id} (${chosen.position.lsn})`;
    settings = {
      recovery_target_lsn: chosen.position.lsn,
      recovery_target_inclusive: 'false',
      recovery_target_timeline: String(timeline),
      recovery_target_action: 'promote',
    };
  }

  const target = await prepareTargetDir(dir);
  const artifacts: string[] = [];
  try {
    const dec = await prepareDecryption(base.pipeline.encryption, cfg.identity, base.id);
    let control: Buffer | undefined;
    try {
      const layDown = async (p: Readable) => {
        control = await layDownBase(p, target.dir, base.id);
      };
      await readBack(storage, base, baseArtifact, dec, layDown, signal);
      artifacts.push(`${base.id}/${baseArtifact.name}`);
    } finally {
      await dec.cleanup();
    }
    // The WAL ranges of an incremental/differential chain go into pg_wal, where recovery finds them.
    const walRanges = chosen.type === BackupType.DIFFERENTIAL ? [chosen] : chain.slice(1);
    if (cfg.toTime === undefined) {
      for (const m of walRanges) {
        const mdec = await prepareDecryption(m.pipeline.encryption, cfg.identity, m.id);
        try {
          for (const a of m.artifacts.filter((x) => x.role === 'wal')) {
            const file = segmentFile(a);
            // The base's copy of its last segment is replaced by the whole archived one.
            const write = async (p: Readable) =>
              void (await target.dir.writeFile(file, p.iterator({ destroyOnReturn: false }), { replace: true }));
            await readBack(storage, m, a, mdec, write, signal);
            artifacts.push(`${m.id}/${a.name}`);
          }
        } finally {
          await mdec.cleanup();
        }
      }
    }
    if (signal.aborted) throw signal.reason;
    await target.dir.writeFile('recovery.signal', Buffer.alloc(0));
    const lines = [
      '',
      `# Added by dbbackup restore of ${chosen.id} at ${new Date().toISOString()}: recover to ${recoveryTarget}, then promote.`,
      `restore_command = ${confQuote(restoreCommand(cfg.from, cfg.identity))}`,
      ...Object.entries(settings).map(([k, v]) => `${k} = ${confQuote(v)}`),
      '',
    ];
    await target.dir.appendFile('postgresql.auto.conf', Buffer.from(lines.join('\n')));
    // Last: until pg_control is there, PostgreSQL refuses to start on the directory.
    await target.dir.writeFile(PG_CONTROL, control!);
    if (target.owner !== undefined) await target.dir.chownAll(target.owner);
    else if (process.getuid?.() === 0) {
      log.warn(
        `${dir} belongs to root, as its parent does, and PostgreSQL does not run as root: hand it to the ` +
          `database user (e.g. chown -R postgres:postgres ${dir}) before starting it`,
      );
    }
    target.dir.close();
  } catch (e) {
    await target.undo().catch((d: Error) => log.warn(`could not clean ${dir} up: ${d.message}`));
    throw e;
  }
  const seconds = (Date.now() - started) / 1000;
  log.info(
    `laid down ${chain.map((m) => m.id).join(' + ')} in ${dir}; starting PostgreSQL on it recovers to ${recoveryTarget} and promotes`,
    {
      event: 'restore-done',
      id: chosen.id,
      seconds,
    },
  );
  return {
    id: chosen.id,
    target: dir,
    seconds,
    artifacts,
    chain: chain.map((m) => m.id),
    recoveryTarget,
    timeline,
    walSegments,
    next: `pg_ctl -D ${dir} start   (as the database's OS user; recovery replays the WAL, then the server opens for writes)`,
  };
}
