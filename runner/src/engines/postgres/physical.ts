/**
 * PostgreSQL physical backups: the base for point-in-time recovery.
 *
 * - `--type full --method physical`: `pg_basebackup -D - -Ft -X fetch` writes the whole cluster as
 *   one tar on stdout, with the WAL from its start to its stop point inside (pg_wal/), so the
 *   base is restorable on its own; a temporary replication slot held for the backup's length
 *   keeps that WAL on the server until pg_basebackup fetched it. The start and stop points and
 *   the timeline, from pg_basebackup's own report, go into the manifest.
 * - `--type incremental|differential` (PostgreSQL 15 and 16 have no block-level incremental
 *   backup): the WAL range since the previous backup / the last full, sealed from the WAL archive
 *   that `wal-push` fills: the server writes a restore point and switches to a new segment, the
 *   runner waits until every segment of the range is archived (a missing one fails the backup,
 *   naming it), and copies them into the backup's folder, so the range lives, and is verified,
 *   with its backup. Restoring one replays its chain up to its restore point.
 *
 * Laying a base down (`layDownBase`) reads the tar in this process into a directory it cannot
 * write outside of (pipeline/untar.ts), leaves out what the restore writes itself, and holds
 * global/pg_control back: the caller writes it last, so a lay-down that is killed half-way leaves
 * a directory PostgreSQL refuses to start on.
 */
import { Readable } from 'node:stream';
import { ConfigError } from '../../../../lib/core/errors';
import { LogPosition, ManifestEncryption } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { ENCRYPTION_EXT, EncryptionScheme, SourceUrl } from '../../../../lib/core/urls';
import { readCatalog } from '../../catalog';
import { BackupError, DamagedError } from '../../errors';
import { log } from '../../log';
import { COMPRESSION_EXT } from '../../pipeline/compress';
import { ArchivedObject, listArchive } from '../../archive/log-archive';
import { WAL_PREFIX } from './wal-archive';
import { parseLsn, segmentBefore, segmentName, segmentNumber } from './wal-names';
import { versionOutput } from '../../pipeline/stages';
import { Storage } from '../../storage';
import { ConfinedDir, extractTar } from '../../pipeline/untar';
import { TarKind } from '../../pipeline/tar';
import { chooseParent } from '../../archive/chain';
import { ArtifactCopy, BackupOpenOptions, BackupSession } from '../shared/engine';
import { PsqlSession } from './session';

/** How long an incremental backup waits for the archiver to deliver the end of its range. */
const ARCHIVE_WAIT_MS = 300_000;

export interface ServerInfo {
  readonly version: string;
  readonly num: number;
  readonly recovery: boolean;
}

async function toolVersion(tool: string): Promise<string> {
  const out = await versionOutput(tool).catch(() => '');
  return /(\d+(\.\d+)+)/.exec(out)?.[1] ?? 'unknown';
}

/** The start and stop points pg_basebackup reports with -v. */
export function parseBasebackupReport(stderr: string): { start?: string; stop?: string; timeline?: number } {
  const start = /write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/i.exec(stderr);
  const stop = /write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/i.exec(stderr);
  return { start: start?.[1], timeline: start ? Number(start[2]) : undefined, stop: stop?.[1] };
}

/** Open a physical backup (full, or a WAL range) on a session that holds the overlap lock. */
export async function openPhysicalBackup(
  session: PsqlSession,
  _source: SourceUrl,
  env: Record<string, string | undefined>,
  info: ServerInfo,
  options: BackupOpenOptions,
  pgTool: (name: string) => string,
): Promise<BackupSession> {
  if (options.type === BackupType.FULL) return openBaseBackup(session, env, info, pgTool);
  return openWalRange(session, info, options);
}

async function openBaseBackup(
  session: PsqlSession,
  env: Record<string, string | undefined>,
  info: ServerInfo,
  pgTool: (name: string) => string,
): Promise<BackupSession> {
  const tool = pgTool('pg_basebackup');
  const version = await toolVersion(tool);
  if (Number(version.split('.')[0]) < Math.floor(info.num / 10000)) {
    throw new BackupError(
      `pg_basebackup ${version} (${tool}) cannot back up a PostgreSQL ${info.version} ` +
        `server; install the client tools of version ${Math.floor(info.num / 10000)}.`,
    );
  }
  // Keep the WAL from here on until pg_basebackup fetched it (-X fetch reads it at the end).
  const slot = `dbbackup_${process.pid}_${Date.now().toString(36)}`;
  await session
    .query(`SELECT pg_create_physical_replication_slot('${slot}', true, true)`)
    .catch((e: Error) =>
      log.warn(
        'could not create a temporary replication slot to hold the WAL during the base backup; a ' +
          'busy server may recycle it before pg_basebackup fetches it (set wal_keep_size)',
        { error: e.message },
      ),
    );
  let report = '';
  const startPosition = (): LogPosition | undefined => {
    const r = parseBasebackupReport(report);
    return r.start === undefined ? undefined : { kind: 'lsn', lsn: r.start, timeline: r.timeline };
  };
  return {
    serverVersion: info.version,
    tools: { pg_basebackup: version },
    get position(): LogPosition | undefined {
      const r = parseBasebackupReport(report);
      return r.stop === undefined ? undefined : { kind: 'lsn', lsn: r.stop, timeline: r.timeline };
    },
    get startPosition(): LogPosition | undefined {
      return startPosition();
    },
    artifacts: [
      {
        name: 'base.tar',
        role: 'base',
        format: 'pg_basebackup-tar',
        neverEmpty: true,
        producer: {
          cmd: tool,
          args: ['-D', '-', '-F', 't', '-X', 'fetch', '-v', '--checkpoint=fast', '--no-password', '--label=dbbackup'],
          env: { ...env, PGDATABASE: undefined },
          label: 'pg_basebackup',
        },
        onStderr: (text) => {
          report = (report + text).slice(-16384);
        },
      },
    ],
    tables: async () => undefined,
    close: () => session.close(),
  };
}

async function openWalRange(
  session: PsqlSession,
  info: ServerInfo,
  options: BackupOpenOptions,
): Promise<BackupSession> {
  const storage = options.storage;
  if (storage === undefined) throw new Error('a WAL range backup needs the storage');
  const catalog = await readCatalog(storage);
  const parent = chooseParent(
    catalog.backups,
    options.type,
    options.databaseId,
    Engine.POSTGRES,
    BackupMethod.PHYSICAL,
  );
  if (parent === undefined) {
    throw new ConfigError(
      `there is no physical ${options.type === BackupType.DIFFERENTIAL ? 'full ' : ''}backup ` +
        `of ${options.databaseId} in ${storage.url.display} for this ${options.type} backup to build on; ` +
        `take one first with: dbbackup backup --engine postgres --method physical --type full …`,
    );
  }
  if (parent.position?.lsn === undefined || parent.position.timeline === undefined) {
    throw new BackupError(
      `backup ${parent.id} records no WAL stop point and timeline; take a new full physical backup.`,
    );
  }
  const base = parent.type === BackupType.FULL ? parent.id : parent.base;
  if (base === undefined)
    throw new BackupError(
      `backup ${parent.id} names no full backup at the start of its chain; take a new full physical backup.`,
    );
  if (info.recovery)
    throw new ConfigError(
      `${options.type} backups of PostgreSQL are taken on the primary (a ` +
        `standby cannot write the restore point that ends the WAL range).`,
    );

  const settings = await session.json<{ mode: string; command: string | null }>(
    `SELECT json_build_object('mode', current_setting('archive_mode'), ` +
      `'command', current_setting('archive_command', true))`,
  );
  if (settings.mode === 'off') {
    throw new ConfigError(
      `${options.type} backups of PostgreSQL 15 are WAL ranges taken from the WAL archive, but ` +
        `archive_mode is off on this server. Set archive_mode = on and archive_command = 'dbbackup wal-push ` +
        `%p --to ${storage.url.display}' (then restart), take a full physical backup, and ` +
        `then ${options.type} ones.`,
    );
  }
  // The end of the range: a restore point (its LSN is where a restore of this backup stops), then
  // a switch to a new segment so the archiver delivers the segment holding it now.
  const end = await session
    .json<{ lsn: string; file: string }>(
      `SELECT json_build_object('lsn', l, 'file', pg_walfile_name(l)) FROM ` +
        `(SELECT pg_create_restore_point('dbbackup') AS l) s`,
    )
    .catch((e: Error) => {
      throw new BackupError(
        `could not write the restore point that ends the WAL range ` +
          `(pg_create_restore_point needs a superuser or EXECUTE on it): ${e.message}`,
      );
    });
  await session.query('SELECT pg_switch_wal()');
  const timeline = parseInt(end.file.slice(0, 8), 16);
  if (timeline !== parent.position.timeline) {
    throw new BackupError(
      `the server is on timeline ${timeline}, but backup ${parent.id} ended on ` +
        `timeline ${parent.position.timeline} (the server was restored or promoted ` +
        `since); a WAL range cannot cross that. Take a new full physical backup.`,
    );
  }
  const tlHex = end.file.slice(0, 8);
  const segmentSize = Number(await session.query(`SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'`));
  const first = segmentBefore(parseLsn(parent.position.lsn), segmentSize);
  const last = segmentNumber(end.file, segmentSize);
  log.info(`waiting for the archiver to deliver WAL up to ${end.file}`, {
    from: segmentName(timeline, first, segmentSize),
    to: end.file,
  });
  const segments = await waitForRange(storage, tlHex, timeline, first, last, segmentSize, settings.command);

  const kinds = new Set(segments.map((o) => `${o.compression}|${o.encryption}|${o.keyRef ?? ''}`));
  if (kinds.size > 1) {
    throw new BackupError(
      `the WAL segments from ${segments[0].file} to ${segments[segments.length - 1].file} were ` +
        `archived with different compression or encryption settings (${[...kinds].join('; ')}); a backup ` +
        `has one pipeline. Take a full physical backup now; later ranges will be uniform.`,
    );
  }
  const o = segments[0];
  let encryption: ManifestEncryption = { scheme: o.encryption };
  if (o.encryption === EncryptionScheme.KMS) {
    encryption = (
      JSON.parse((await storage.readBytes(`${WAL_PREFIX}/keys/${o.keyRef}.json`)).toString('utf8')) as {
        encryption: ManifestEncryption;
      }
    ).encryption;
  }
  const copies: ArtifactCopy[] = segments.map((s) => ({
    name: `${s.file}${COMPRESSION_EXT[s.compression]}${ENCRYPTION_EXT[s.encryption]}`,
    role: 'wal',
    format: 'wal-segment',
    from: s.key,
    rawSize: s.size,
  }));
  return {
    serverVersion: info.version,
    tools: {},
    position: { kind: 'lsn', lsn: end.lsn, timeline },
    chain: { parent: parent.id, base, startPosition: parent.position },
    artifacts: [],
    copies,
    storedAs: { compression: o.compression, encryption },
    tables: async () => undefined,
    close: () => session.close(),
  };
}

/** Wait until the archive holds every segment from `first` to `last`; a hole below the newest one is a gap. */
async function waitForRange(
  storage: Storage,
  tlHex: string,
  timeline: number,
  first: bigint,
  last: bigint,
  segmentSize: number,
  archiveCommand: string | null,
): Promise<ArchivedObject[]> {
  const deadline = Date.now() + ARCHIVE_WAIT_MS;
  for (;;) {
    const listing = await listArchive(storage, WAL_PREFIX);
    const bySegno = new Map<bigint, ArchivedObject>();
    for (const objects of listing.values()) {
      const o = objects[0];
      if (o.group === tlHex && /^[0-9A-F]{24}$/.test(o.file)) bySegno.set(segmentNumber(o.file, segmentSize), o);
    }
    if (bySegno.has(last)) {
      const out: ArchivedObject[] = [];
      for (let n = first; n <= last; n++) {
        const o = bySegno.get(n);
        if (o === undefined) {
          let m = n;
          while (!bySegno.has(m + 1n)) m++;
          throw new DamagedError(
            `the WAL archive ${storage.url.display} has a ` +
              `gap: ${
                m === n
                  ? `segment ${segmentName(timeline, n, segmentSize)} is`
                  : `segments ${segmentName(timeline, n, segmentSize)} ` +
                    `to ${segmentName(timeline, m, segmentSize)} are`
              } missing, so the WAL range since the previous backup is incomplete. ` +
              'Take a full physical backup to start a new chain.',
          );
        }
        out.push(o);
      }
      return out;
    }
    if (Date.now() > deadline) {
      throw new BackupError(
        `segment ${segmentName(timeline, last, segmentSize)} did not reach the WAL ` +
          `archive ${storage.url.display} within ${ARCHIVE_WAIT_MS / 1000} s; archive_command ` +
          `is '${archiveCommand ?? '(not visible)'}'. It must be dbbackup wal-push %p ` +
          `--to ${storage.url.display}; see pg_stat_archiver for its failures.`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The file without which PostgreSQL does not start on a data directory: written last by a restore. */
export const PG_CONTROL = 'global/pg_control';

/** pg_control is 8 KiB (PG_CONTROL_FILE_SIZE); anything much larger is not one. */
const MAX_PG_CONTROL = 64 << 10;

/** Members a restore leaves out: it decides itself how the restored server starts. */
const SIGNAL_FILES = new Set(['recovery.signal', 'standby.signal']);

const NO_TABLESPACES =
  '--target-dir lays down the main data directory only and maps no tablespaces ' +
  '(pg_basebackup -D - cannot write them either). ' +
  "Extract the tar by hand (the manifest's manualRestore lines), put each tablespace's files in a " +
  'directory of your choice and link pg_tblspc/OID to it, then start PostgreSQL.';

/**
 * Lay the base tar `plaintext` (pg_basebackup -F t) down in `dir`. Returns pg_control's bytes,
 * which the caller writes (PG_CONTROL) after everything else. Links (tablespaces included),
 * devices and paths leading out are refused by extractTar; so is a tablespace_map that is not
 * empty, from which PostgreSQL itself would make links at startup.
 */
export async function layDownBase(plaintext: Readable, dir: ConfinedDir, backupId: string): Promise<Buffer> {
  const what = `the base tar of backup ${backupId}`;
  const done = await extractTar(plaintext, dir, {
    what,
    hold: new Set([PG_CONTROL]),
    maxHeld: MAX_PG_CONTROL,
    // pg_basebackup always writes a tablespace_map; it is empty unless the cluster has tablespaces.
    refuse: (m, rel) =>
      rel === 'tablespace_map' && m.size > 0
        ? 'a tablespace map that lists tablespaces (PostgreSQL makes links from it when it starts)'
        : undefined,
    skip: (_m, rel) => (SIGNAL_FILES.has(rel) ? 'the restore writes its own recovery settings' : undefined),
    advice: (m, rel) =>
      rel === 'tablespace_map' || (m.kind === TarKind.SYMLINK && rel !== undefined && /^pg_tblspc\/[^/]+$/.test(rel))
        ? NO_TABLESPACES
        : undefined,
  });
  const control = done.held.get(PG_CONTROL);
  if (control === undefined) {
    throw new DamagedError(`${what} holds no ${PG_CONTROL}: it is not a pg_basebackup backup of a data directory.`);
  }
  log.info(`laid down ${done.files} files and ${done.directories} directories (${done.bytes} bytes) from ${what}`, {
    event: 'base-laid-down',
    files: done.files,
    directories: done.directories,
    bytes: done.bytes,
    ...(done.skipped.length > 0 ? { skipped: done.skipped } : {}),
  });
  return control;
}
