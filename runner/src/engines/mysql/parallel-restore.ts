/**
 * The restore of a parallel MySQL/MariaDB dump (engines/mysql/parallel-dump.ts), loaded while the
 * archive streams: the archive (stored bytes against the manifest, decryption, decompression) is
 * laid down file by file by the confined extractor in a scratch directory, and as files become
 * whole they are handed to at most N `myloader --threads=1` processes at a time, each given a
 * directory of its own holding about a 1/N share (in bytes, at least one file) of the files ready
 * when it starts: the tables' definitions first (`-schema.sql`, in batches of their own, shared
 * among the free loaders), a
 * table's row files (`.sql`, `.NNNNN.sql`) only once its definition is in, and the views
 * (`-schema-view.sql`, which replace their placeholder tables) after every row, once the archive
 * ended. Each file is deleted once loaded, so the scratch directory holds only the files waiting
 * for a loader. Everything goes into the database the restore plan chose (restore-plan.ts: the
 * target itself when it does not exist or is empty, else a scratch database whose tables move in
 * by RENAME TABLE only once all of it loaded), as a single-stream restore's statements do: a
 * damaged backup, a wrong key or a failing load are undone by the plan's rollback.
 *
 * A table's first row file loads alone (a batch holds at most that one file of its table, and the
 * table's other row files wait until it is in): myloader 0.10 loads with UNIQUE_CHECKS=0 and
 * FOREIGN_KEY_CHECKS=0, and MariaDB 10.6+ then takes the first insert into an empty InnoDB table as
 * a bulk load that locks the whole table, so two loaders starting on the same empty table deadlock
 * (8 of 60 such inserts on MariaDB 10.11, none with UNIQUE_CHECKS=1; `myloader -t 2` on a one-table
 * dump meets it too). Once that file is in, the table holds rows (mydumper writes no file for an
 * empty chunk) and its other row files load side by side.
 *
 * mydumper 0.10 names its files `<database>.<table>[.<chunk>].sql`; a row file whose name ends in
 * `.NNNNN` waits for the definition of the table without that suffix (a table literally named
 * `t.00001` next to a table `t` is the one case it could start early: its load then fails, and
 * the restore is undone).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ManifestArtifact } from '../../../../lib/core/manifest';
import { SourceUrl } from '../../../../lib/core/urls';
import { DamagedError } from '../../errors';
import { log } from '../../log';
import { diesWithRunner } from '../../pipeline/stages';
import { ConfinedDir, extractTar } from '../../pipeline/untar';
import { RestoreStep } from '../shared/engine';
import { BatchLoads, LoaderGroup, shareOf } from '../shared/loaders';
import { MYDUMPER_TOP, mydumperConnection, mydumperTool } from './parallel-dump';

export interface MyloaderRestore {
  /** The database step: the archive loaded into `loadInto` as it streams. */
  readonly step: RestoreStep;
  /** Stop the loaders and remove the scratch directory (idempotent). */
  cleanup(): void;
}

export interface MyloaderRestoreOptions {
  readonly target: SourceUrl;
  readonly password: string | undefined;
  readonly database: ManifestArtifact;
  readonly backupId: string;
  /** The source database's name: mydumper's file names start with it. */
  readonly sourceDatabase: string;
  /** The database the rows go into (the restore plan's). */
  readonly loadInto: string;
  readonly jobs: number;
  readonly signal?: AbortSignal;
}

/** What a file of a mydumper directory is, by its name. */
export type MydumperFile =
  | { readonly kind: 'metadata' }
  | { readonly kind: 'database' }
  | { readonly kind: 'schema'; readonly table: string }
  /** `table`: the name without a chunk suffix (`.NNNNN`); `exact`: the name as the file has it. */
  | { readonly kind: 'rows'; readonly table: string; readonly exact: string }
  /** Loaded after every row: views, triggers, routines (and anything myloader knows that we do not). */
  | { readonly kind: 'last' };

/** Classify a file of mydumper 0.10's output directory for `database` (see the module comment). */
export function classifyMydumperFile(name: string, database: string): MydumperFile {
  if (name === 'metadata' || name === 'metadata.partial') return { kind: 'metadata' };
  if (name === `${database}-schema-create.sql`) return { kind: 'database' };
  const prefix = `${database}.`;
  if (!name.startsWith(prefix) || !name.endsWith('.sql')) return { kind: 'last' };
  const rest = name.slice(prefix.length);
  if (/-schema-(view|triggers|post)\.sql$/.test(rest)) return { kind: 'last' };
  if (rest.endsWith('-schema.sql')) return { kind: 'schema', table: rest.slice(0, -'-schema.sql'.length) };
  const exact = rest.slice(0, -'.sql'.length);
  return { kind: 'rows', table: exact.replace(/\.\d{5}$/, ''), exact };
}

/** Prepare the restore of a mydumper backup (see the module comment). */
export function openMyloaderRestore(o: MyloaderRestoreOptions): MyloaderRestore {
  const cmd = mydumperTool('myloader');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-restore-'));
  const input = path.join(scratch, MYDUMPER_TOP);
  // Every myloader of this restore: stopped together when the run is interrupted or one fails.
  const group = new LoaderGroup(o.signal);
  let conn: ReturnType<typeof mydumperConnection> | undefined;
  const cleanup = () => {
    group.stopAll();
    group.close();
    conn?.remove();
    conn = undefined;
    fs.rmSync(scratch, { recursive: true, force: true });
  };

  let batches = 0;
  /** Load `files` (names in `input`) with one myloader, from a directory of their own. */
  const load = async (files: readonly string[]): Promise<void> => {
    const dir = path.join(scratch, `batch-${++batches}`);
    fs.mkdirSync(dir, { mode: 0o700 });
    // myloader 0.10 takes a directory as a dump only when it holds a metadata file; it reads nothing from it.
    fs.writeFileSync(path.join(dir, 'metadata'), '', { mode: 0o600, flag: 'wx' });
    for (const f of files) fs.renameSync(path.join(input, f), path.join(dir, f));
    conn ??= mydumperConnection(o.target, o.password, '--target');
    try {
      await group.run(
        diesWithRunner({
          cmd,
          args: [
            ...conn.args,
            `--directory=${dir}`,
            `--database=${o.loadInto}`,
            '--threads=1',
            // Written to the binary log, as a single-stream restore is (replicas and PITR see it).
            '--enable-binlog',
            '--verbose=2',
          ],
          label: 'myloader',
        }),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  const consume = async (plaintext: Readable): Promise<void> => {
    log.info(`myloader into ${o.loadInto} as the archive streams, up to ${o.jobs} at a time`, {
      jobs: o.jobs,
      database: o.loadInto,
    });
    const defined = new Set<string>();
    const schemas: { name: string; table: string }[] = [];
    const rows: { name: string; table: string; exact: string; size: number }[] = [];
    const last: string[] = [];
    let metadata = false;
    // Once the archive ended every definition has come: a row file may then go by its exact name too.
    let ended = false;
    const tableOf = (r: { table: string; exact: string }) => (defined.has(r.table) ? r.table : r.exact);
    const loadable = (r: { table: string; exact: string }) => defined.has(r.table) || (ended && defined.has(r.exact));
    // The tables whose first row file is loading, and those with a row file in (see the module comment).
    const filling = new Set<string>();
    const filled = new Set<string>();
    let loadedFiles = 0;
    const start = (files: string[], bytes: number, then: () => void) => {
      log.debug(`myloader: ${files.length} file(s) into ${o.loadInto}`, { files: files.length, bytes });
      loads.start(
        () => load(files),
        () => {
          loadedFiles += files.length;
          then();
        },
      );
    };
    const pump = () => {
      while (loads.free > 0) {
        if (schemas.length > 0) {
          // The definitions ready, shared among the free loaders (CREATE TABLE waits for its own flush).
          const batch = schemas.splice(0, Math.ceil(schemas.length / loads.free));
          start(
            batch.map((f) => f.name),
            0,
            () => {
              for (const f of batch) defined.add(f.table);
            },
          );
          continue;
        }
        // Of a table without rows yet, only its first row file: the others wait for it, not for a batch.
        const seen = new Set<string>();
        const candidates = rows.filter((r) => {
          if (!loadable(r)) return false;
          const t = tableOf(r);
          if (filled.has(t)) return true;
          if (filling.has(t) || seen.has(t)) return false;
          seen.add(t);
          return true;
        });
        const batch = shareOf(candidates, o.jobs);
        if (batch.length === 0) break;
        const taken = new Set(batch);
        rows.splice(0, rows.length, ...rows.filter((r) => !taken.has(r)));
        const first = [...new Set(batch.map(tableOf))].filter((t) => !filled.has(t));
        for (const t of first) filling.add(t);
        start(
          batch.map((r) => r.name),
          batch.reduce((n, r) => n + r.size, 0),
          () => {
            for (const t of first) {
              filling.delete(t);
              filled.add(t);
            }
          },
        );
      }
    };
    const loads = new BatchLoads(o.jobs, group, pump);
    const dir = await ConfinedDir.open(scratch);
    try {
      const done = await extractTar(plaintext, dir, {
        what: `the parallel dump of backup ${o.backupId}`,
        onFile: (rel, size) => {
          loads.check();
          if (path.dirname(rel) !== MYDUMPER_TOP) return;
          const name = path.basename(rel);
          const file = classifyMydumperFile(name, o.sourceDatabase);
          switch (file.kind) {
            case 'metadata':
              metadata = true;
              fs.rmSync(path.join(input, name), { force: true });
              return;
            case 'database':
              // The plan made the database the rows go into.
              fs.rmSync(path.join(input, name), { force: true });
              return;
            case 'schema':
              schemas.push({ name, table: file.table });
              break;
            case 'rows':
              rows.push({ name, table: file.table, exact: file.exact, size });
              break;
            case 'last':
              last.push(name);
              return;
          }
          pump();
        },
      });
      log.info('the parallel dump streamed in whole', { files: done.files, bytes: done.bytes });
      if (!metadata) {
        throw new DamagedError(`${o.database.name} holds no ${MYDUMPER_TOP}/metadata: it is not a mydumper dump`);
      }
      ended = true;
      pump();
    } catch (e) {
      await loads.abandon(e);
    } finally {
      dir.close();
    }
    await loads.drain();
    // Every definition is in: rows still waiting name a table the archive does not define.
    const orphans = rows;
    if (orphans.length > 0) {
      throw new DamagedError(
        `${o.database.name} holds rows for ${orphans.map((r) => `'${r.table}'`).join(', ')} (${orphans[0].name}) ` +
          'but no definition of that table: it is not a whole mydumper dump',
      );
    }
    if (last.length > 0) await load(last);
    log.info(`myloader: ${loadedFiles + last.length} file(s) loaded into ${o.loadInto}`, {
      files: loadedFiles + last.length,
      jobs: o.jobs,
    });
  };

  const consumer = async (plaintext: Readable): Promise<void> => {
    try {
      await consume(plaintext);
    } finally {
      cleanup();
    }
  };
  return { step: { artifact: o.database, consumer, streamed: true }, cleanup };
}
