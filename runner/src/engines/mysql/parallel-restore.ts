/**
 * The restore of a parallel MySQL/MariaDB dump (engines/mysql/parallel-dump.ts): the artifact is
 * read back whole (stored bytes against the manifest, decryption, decompression) and laid down by
 * the confined extractor in a scratch directory; only when that succeeded does `myloader -t N`
 * load it, into the database the restore plan chose (restore-plan.ts: the target itself when it
 * does not exist or is empty, else a scratch database whose tables move in by RENAME TABLE only
 * once all of it loaded). A damaged backup or a wrong key therefore never reach the server, and
 * a failing load is undone by the plan's rollback as a single-stream restore's is.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ManifestArtifact } from '../../../../lib/core/manifest';
import { SourceUrl } from '../../../../lib/core/urls';
import { DamagedError } from '../../errors';
import { log } from '../../log';
import { Child } from '../../pipeline/stages';
import { ConfinedDir, extractTar } from '../../pipeline/untar';
import { RestoreStep } from '../shared/engine';
import { MYDUMPER_TOP, mydumperConnection, mydumperTool } from './parallel-dump';

export interface MyloaderRestore {
  /** The database step: the archive laid down in the scratch directory as it streams. */
  readonly step: RestoreStep;
  /** Load the laid-down dump into `database` with myloader (after every step succeeded). */
  load(database: string): Promise<void>;
  /** Remove the scratch directory (idempotent). */
  cleanup(): void;
}

export interface MyloaderRestoreOptions {
  readonly target: SourceUrl;
  readonly password: string | undefined;
  readonly database: ManifestArtifact;
  readonly backupId: string;
  readonly jobs: number;
  readonly signal?: AbortSignal;
}

/** Prepare the restore of a mydumper backup (see the module comment). */
export function openMyloaderRestore(o: MyloaderRestoreOptions): MyloaderRestore {
  const cmd = mydumperTool('myloader');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-restore-'));
  const input = path.join(scratch, MYDUMPER_TOP);
  const cleanup = () => fs.rmSync(scratch, { recursive: true, force: true });
  const layDown = async (plaintext: Readable): Promise<void> => {
    const dir = await ConfinedDir.open(scratch);
    try {
      const done = await extractTar(plaintext, dir, { what: `the parallel dump of backup ${o.backupId}` });
      log.info(`laid the parallel dump down in ${scratch}`, { files: done.files, bytes: done.bytes });
    } finally {
      dir.close();
    }
    // mydumper renames metadata.partial to metadata when it ends; the stream may have taken it first.
    if (!['metadata', 'metadata.partial'].some((n) => fs.existsSync(path.join(input, n)))) {
      throw new DamagedError(`${o.database.name} holds no ${MYDUMPER_TOP}/metadata: it is not a mydumper dump`);
    }
  };
  const load = async (database: string): Promise<void> => {
    if (o.signal?.aborted) throw o.signal.reason;
    const conn = mydumperConnection(o.target, o.password, '--target');
    log.info(`myloader -t ${o.jobs} into ${database}`, { jobs: o.jobs, database });
    try {
      const child = new Child(
        {
          cmd,
          args: [
            ...conn.args,
            `--directory=${input}`,
            `--database=${database}`,
            `--threads=${o.jobs}`,
            // Written to the binary log, as a single-stream restore is (replicas and PITR see it).
            '--enable-binlog',
            '--verbose=2',
          ],
          label: 'myloader',
        },
        ['ignore', 'ignore', 'pipe'],
      );
      const onAbort = () => child.kill();
      o.signal?.addEventListener('abort', onAbort);
      try {
        await child.done;
      } finally {
        o.signal?.removeEventListener('abort', onAbort);
      }
      if (o.signal?.aborted) throw o.signal.reason;
    } finally {
      conn.remove();
      cleanup();
    }
  };
  return { step: { artifact: o.database, consumer: layDown, streamed: true }, load, cleanup };
}
