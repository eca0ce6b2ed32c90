import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SECRET_ENV } from '../../../../lib/core/contract';
import { ConfigError } from '../../../../lib/core/errors';
import { Manifest, ManifestArtifact } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { SourceUrl } from '../../../../lib/core/urls';
import { BackupError } from '../../errors';
import { log } from '../../log';
import { CommandSpec, findTool, versionOutput } from '../../pipeline/stages';
import {
  BackupOpenOptions,
  BackupSession,
  DeepCheck,
  EngineDriver,
  RestoreOptions,
  RestoreSession,
  ToolNeed,
  ToolPurpose,
} from '../shared/engine';
import { readArchive } from './archive';

/**
 * MongoDB: `mongodump --archive --oplog` and `mongorestore --archive`.
 *
 * Built against the MongoDB Database Tools' documented behaviour; no MongoDB server or tools
 * can run where this is tested, so every path that needs one is tested with stand-in tools
 * that check the arguments, the credentials file and the archive they are fed.
 *
 * - `--oplog` makes the dump consistent at one point in time, and mongodump accepts it only for
 *   a dump of the whole deployment (not with --db). A backup therefore holds every database of
 *   the deployment (and the admin database's users and roles); the URL's database names the
 *   backup and is the one a restore under another name brings back.
 * - Credentials: the connection string (without a password) and the password go into a YAML
 *   file given with `--config` (mongodump/mongorestore read `uri` and `password` from it),
 *   written 0600 in a private temporary directory and removed when the run ends. Nothing
 *   secret is on a command line.
 * - The runner compresses; mongodump's own --gzip is never used.
 */

/** Characters MongoDB does not allow in database names (and that would break namespace patterns). */
const BAD_DB_CHARS = /[/\\. "$*<>:|?]/;

/**
 * The connection string for the tools: the URL's hosts and options, without a database path (--oplog needs a
 * whole-deployment dump), never a password.
 */
export function mongoUri(url: SourceUrl): string {
  const srv = url.display.startsWith('mongodb+srv:');
  const user = url.user !== undefined ? `${encodeURIComponent(url.user)}@` : '';
  const host = url.socket !== undefined ? encodeURIComponent(url.socket) : srv ? url.host! : `${url.host}:${url.port}`;
  const params = new URLSearchParams(url.params);
  // In a MongoDB URI the path's database is where the user authenticates; keep that meaning.
  if (url.user !== undefined && !params.has('authSource')) params.set('authSource', url.database);
  const query = params.toString();
  return `mongodb${srv ? '+srv' : ''}://${user}${host}/${query ? `?${query}` : ''}`;
}

/** The YAML the tools read with --config: JSON strings are YAML double-quoted scalars. */
export function toolConfig(uri: string, password: string | undefined): string {
  return `uri: ${JSON.stringify(uri)}\n` + (password !== undefined ? `password: ${JSON.stringify(password)}\n` : '');
}

/** A 0600 --config file in a private (0700) temporary directory, and its removal. */
export function writeToolConfig(url: SourceUrl, password: string | undefined): { file: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-mongo-'));
  const file = path.join(dir, 'tool.yaml');
  fs.writeFileSync(file, toolConfig(mongoUri(url), password), { mode: 0o600, flag: 'wx' });
  return { file, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A database name as a literal in a mongorestore namespace pattern. */
function nsLiteral(db: string): string {
  return db.replace(/\\/g, '\\\\').replace(/\*/g, '\\*');
}

function checkDatabaseName(url: SourceUrl, what: string): void {
  if (BAD_DB_CHARS.test(url.database)) {
    throw new ConfigError(
      `${what} '${url.display}' names the database '${url.database}', which ` +
        `MongoDB does not allow (no / \\ . space " $ * < > : | ?).`,
    );
  }
}

function tool(name: string): string {
  return findTool([name]) ?? name;
}

async function toolVersion(cmd: string): Promise<string> {
  const out = await versionOutput(cmd).catch(() => '');
  return /version:?\s*r?(\d+(\.\d+)+)/i.exec(out)?.[1] ?? 'unknown';
}

/**
 * mongorestore's arguments for a restore of `manifest` into `target`:
 * - into a database of the same name: the whole archive with `--oplogReplay` (consistent at the
 *   end of the dump; mongorestore refuses namespace filters and renames with --oplogReplay, so
 *   every database of the archive is restored, with the admin database's users and roles);
 * - into another name: only the backed-up database, renamed with --nsFrom/--nsTo, without the
 *   oplog (the data is as the collections were read, not one point in time).
 * `--stopOnError` makes a failed insert fail the restore (mongorestore otherwise reports it and
 * exits 0); `--drop` (for --clean) drops each collection before restoring it.
 */
export function restoreArgs(
  configFile: string,
  source: string,
  target: string,
  options: RestoreOptions,
): { args: string[]; consistent: boolean } {
  const args = [`--config=${configFile}`, '--archive', '--stopOnError', ...(options.clean ? ['--drop'] : [])];
  if (source === target) return { args: [...args, '--oplogReplay'], consistent: true };
  const from = nsLiteral(source);
  return {
    args: [...args, `--nsInclude=${from}.*`, `--nsFrom=${from}.*`, `--nsTo=${nsLiteral(target)}.*`],
    consistent: false,
  };
}

export class MongoDriver implements EngineDriver {
  public readonly engine = Engine.MONGODB;
  /** mongorestore writes as it reads: every artifact is read whole and checked before it starts. */
  public readonly verifyBeforeRestore = true;

  public tools(purpose: ToolPurpose): readonly ToolNeed[] {
    const name = purpose === ToolPurpose.BACKUP ? 'mongodump' : 'mongorestore';
    return [{ cmd: tool(name), label: name, why: `a MongoDB ${purpose}`, fix: 'install the MongoDB Database Tools' }];
  }

  public async openBackup(source: SourceUrl, options: BackupOpenOptions): Promise<BackupSession> {
    if (options.method !== BackupMethod.LOGICAL || options.type !== BackupType.FULL) {
      throw new ConfigError(
        `--type ${options.type} --method ${options.method} is not available for ` +
          `MongoDB in this release; use --type full --method logical.`,
      );
    }
    checkDatabaseName(source, '--source');
    const mongodump = findTool(['mongodump']);
    if (mongodump === undefined) {
      throw new BackupError(
        'mongodump is not installed or not on PATH; install the MongoDB Database Tools (the runner image has them).',
      );
    }
    const version = await toolVersion(mongodump);
    log.warn(
      'MongoDB backups take no overlap lock in this release (the runner has no MongoDB ' +
        'client to hold one); schedule one run at a time per database and destination',
      {
        lockKey: options.lockKey,
      },
    );
    const config = writeToolConfig(source, process.env[SECRET_ENV.SOURCE_PASSWORD]);
    return {
      // The server's version is written into the archive's header (verify --deep reports it).
      serverVersion: 'unknown',
      tools: { mongodump: version },
      // mongodump does not report the oplog time its dump is consistent at; verify --deep reads
      // it from the archive's last oplog entry.
      position: undefined,
      artifacts: [
        {
          name: 'database.archive',
          role: 'database',
          format: 'mongodump-archive',
          neverEmpty: true,
          producer: {
            cmd: mongodump,
            args: [`--config=${config.file}`, '--archive', '--oplog'],
            label: 'mongodump',
          } satisfies CommandSpec,
        },
      ],
      tables: async () => undefined,
      close: async () => config.remove(),
    };
  }

  public async openRestore(target: SourceUrl, manifest: Manifest, options: RestoreOptions): Promise<RestoreSession> {
    checkDatabaseName(target, '--target');
    const database = manifest.artifacts.find((a) => a.role === 'database');
    if (database === undefined) throw new BackupError(`backup ${manifest.id} has no database artifact`);
    const same = target.database === manifest.database;
    if (options.withGlobals && !same) {
      throw new ConfigError(
        `--with-globals: a MongoDB backup's users and roles are in its admin database, ` +
          `which only a restore under the same database name (${manifest.database}) brings ` +
          `back; restore into ${manifest.database}, or without --with-globals.`,
      );
    }
    const config = writeToolConfig(target, process.env[SECRET_ENV.TARGET_PASSWORD]);
    const { args, consistent } = restoreArgs(config.file, manifest.database, target.database, options);
    if (consistent) {
      log.info(
        `restoring the whole archive of backup ${manifest.id} with its oplog (every ` +
          `database it holds, with the admin database's users and roles)`,
      );
    } else {
      log.warn(
        `restoring only ${manifest.database} as ${target.database}: mongorestore cannot replay the oplog ` +
          `into a renamed database, so the data is as mongodump read each collection, not one point in time`,
      );
    }
    if (!options.clean) {
      log.info(
        'without --clean, mongorestore inserts next to documents the ' +
          'target already has and stops at the first duplicate key',
      );
    }
    return {
      steps: [{ artifact: database, consumer: { cmd: tool('mongorestore'), args, label: 'mongorestore' } }],
      commit: async () => config.remove(),
      rollback: async () => {
        config.remove();
        log.warn(
          `mongorestore may have written part of the backup into ${target.display} ` +
            `before it failed; the runner has no MongoDB client to undo that`,
        );
      },
    };
  }

  public deepCheck(artifact: ManifestArtifact): DeepCheck {
    return {
      kind: 'reader',
      read: async (plaintext) => {
        const s = await readArchive(plaintext);
        log.info(
          `${artifact.name}: a complete mongodump archive from ` +
            `MongoDB ${s.serverVersion || 'unknown'} (mongodump ${s.toolVersion || 'unknown'})`,
          {
            namespaces: Object.keys(s.namespaces).length,
            documents: s.documents,
            oplogEntries: s.namespaces.oplog ?? 0,
            lastOplogTs: s.lastOplogTs,
          },
        );
      },
    };
  }
}
