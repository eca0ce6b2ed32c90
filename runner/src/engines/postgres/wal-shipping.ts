/**
 * `dbbackup wal-push %p --to STORAGE_URL` (archive_command) and
 * `dbbackup wal-fetch %f %p --from STORAGE_URL` (restore_command).
 *
 * wal-push exits 0 only once the file is durably stored; the same file pushed again exits 0;
 * a different file under an archived name exits 1 with a message saying so. wal-fetch exits 0
 * with the file at %p (checked against the sha256 its archive name records), 1 only when the
 * archive does not hold it (what PostgreSQL expects at the end of the archive), 3 when it is
 * damaged or missing in the middle of the archive (a gap: later segments exist), 129 for a
 * runtime failure (storage unreachable, permission denied, a tool that failed) and 130 for a
 * misconfigured restore_command (no key for the archive): above 125, so PostgreSQL aborts
 * recovery instead of taking the failure for the end of the archive and promoting early
 * (WAL_FETCH_ABORT_BASE in lib/core/model says why damage keeps 3).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../../../lib/core/errors';
import { WalFetchConfig, WalPushConfig } from '../../config';
import { CheckBeforeWork } from '../shared/engine';
import { BackupError, DamagedError, exitCodeOf, RecoveryAbortError } from '../../errors';
import { ExitCode, WAL_FETCH_ABORT_BASE } from '../../../../lib/core/model';
import { log } from '../../log';
import { archiveEncryption, fetchObject, listFile, pushFile } from '../../archive/log-archive';
import { WAL_PREFIX } from './wal-archive';
import { parseWalFileName, WalFileKind } from './wal-names';
import { openStorage } from '../../storage';

export interface WalPushResult {
  readonly file: string;
  readonly status: 'stored' | 'present';
  readonly key: string;
  readonly seconds: number;
}

export async function runWalPush(cfg: WalPushConfig, signal: AbortSignal): Promise<WalPushResult> {
  const started = Date.now();
  const file = path.basename(cfg.file);
  const name = parseWalFileName(file);
  if (name === undefined) {
    throw new ConfigError(
      `wal-push '${cfg.file}': '${file}' is not a WAL file name PostgreSQL archives (segment, .partial, ` +
        `.history or .backup). Use archive_command = 'dbbackup wal-push %p --to STORAGE_URL'.`,
    );
  }
  try {
    await fs.promises.access(cfg.file, fs.constants.R_OK);
  } catch {
    throw new ConfigError(
      `wal-push '${cfg.file}' cannot be read (working directory ${process.cwd()}); ` +
        `PostgreSQL runs archive_command in the data directory with %p relative to it.`,
    );
  }
  const storage = openStorage(cfg.to);
  const result = await pushFile(storage, WAL_PREFIX, name.timelineHex, file, cfg.file, {
    compression: cfg.compression,
    encryption: () => archiveEncryption(storage, WAL_PREFIX, cfg.encryption),
    signal,
    what: 'WAL file',
    hint:
      'Two servers may be archiving to the same place (give each its own storage prefix), or a ' +
      'server restored from a backup kept the old timeline; check archive_command.',
  });
  const seconds = (Date.now() - started) / 1000;
  log.info(result.status === 'stored' ? `archived ${file}` : `${file} was already archived with the same content`, {
    event: 'wal-push',
    file,
    status: result.status,
    key: result.key,
    seconds,
  });
  return { file, status: result.status, key: result.key, seconds };
}

export interface WalFetchResult {
  readonly file: string;
  readonly key: string;
  readonly seconds: number;
}

/** The file is not in the archive: the normal end of recovery (exit 1). */
export class WalNotFoundError extends BackupError {
  public readonly name = 'WalNotFoundError';
}

export async function runWalFetch(
  cfg: WalFetchConfig,
  signal: AbortSignal,
  check: CheckBeforeWork,
): Promise<WalFetchResult> {
  try {
    return await fetchWal(cfg, signal, check);
  } catch (e) {
    // Not in the archive (the end of recovery) and damage keep their codes; a runtime failure or a
    // misconfigured restore_command (no key for the archive, %f and %p swapped) aborts recovery.
    // Without --abort-recovery (wal-fetch run by hand) the usual exit codes hold.
    const code = exitCodeOf(e);
    if (!cfg.abortRecovery || e instanceof WalNotFoundError || (code !== ExitCode.FAILED && code !== ExitCode.USAGE))
      throw e;
    const exitCode = WAL_FETCH_ABORT_BASE + code;
    throw new RecoveryAbortError(
      `wal-fetch ${cfg.file} from ${cfg.from.display}: ${(e as Error).message} ` +
        `(wal-fetch exits ${exitCode}, not 1: PostgreSQL aborts recovery instead of ` +
        'ending it here; fix the cause and start the server again, it resumes where it stopped)',
      exitCode,
    );
  }
}

async function fetchWal(cfg: WalFetchConfig, signal: AbortSignal, check: CheckBeforeWork): Promise<WalFetchResult> {
  const started = Date.now();
  const name = parseWalFileName(cfg.file);
  if (name === undefined) {
    throw new ConfigError(
      `wal-fetch '${cfg.file}' is not a WAL file name (segment, .partial, .history or .backup). Use ` +
        `restore_command = 'dbbackup wal-fetch %f %p --from STORAGE_URL --abort-recovery'.`,
    );
  }
  const storage = openStorage(cfg.from);
  const copies = await listFile(storage, WAL_PREFIX, name.timelineHex, name.name);
  if (copies.length === 0) {
    if (name.kind === WalFileKind.SEGMENT) {
      // Missing while later segments of the same timeline exist: a gap, never the end of the archive.
      const later = (await storage.listFolders(`${WAL_PREFIX}/${name.timelineHex}`)).filter(
        (f) => /^[0-9A-F]{24}$/.test(f) && f > name.name,
      );
      if (later.length > 0) {
        throw new DamagedError(
          `the WAL archive ${storage.url.display} has a gap: ${name.name} is missing but ${later.length} ` +
            `later segment(s) of timeline ${name.timelineHex} exist (the next is ${later[0]}). Recovery ` +
            `cannot continue past the gap; restore to a moment before it, or from a base backup taken after ` +
            `it.`,
        );
      }
    }
    throw new WalNotFoundError(`${name.name} is not in the WAL archive ${storage.url.display}`);
  }
  if (new Set(copies.map((c) => c.sha256)).size > 1) {
    throw new DamagedError(
      `${name.name} is archived twice with different content ` +
        `in ${storage.url.display} (${copies.map((c) => c.key).join(', ')}); two ` +
        `servers archive to the same place. Recovery refuses to guess which is right.`,
    );
  }
  // The programs that read it back (decompression, decryption) run, before %p is written.
  await check({ manifests: [], objects: [copies[0]] });
  await fetchObject(storage, WAL_PREFIX, copies[0], cfg.dest, cfg.identity, signal);
  const seconds = (Date.now() - started) / 1000;
  log.info(`restored ${name.name} from the archive`, {
    event: 'wal-fetch',
    file: name.name,
    key: copies[0].key,
    seconds,
  });
  return { file: name.name, key: copies[0].key, seconds };
}
