import { Readable } from 'node:stream';
import { LogPosition, Manifest, ManifestArtifact, TableStat } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { SourceUrl } from '../../../../lib/core/urls';
import { ArchiveWindow } from '../../archive/window';
import { Catalog } from '../../catalog';
import { BinlogStreamConfig, RestoreConfig, WalFetchConfig, WalPushConfig } from '../../config';
import { CommandSpec, StreamProducer } from '../../pipeline/stages';
import { Storage } from '../../storage';

/**
 * What an engine adds to the shared pipeline: producers for a backup, and consumers for a
 * restore and a deep check. Compression, encryption, hashing, storage, manifests, locking
 * policy and error handling are shared and never repeated per engine.
 */
export interface EngineDriver {
  readonly engine: Engine;
  /** Connect, take the overlap lock, pin a consistent snapshot where the engine can. */
  openBackup(source: SourceUrl, options: BackupOpenOptions): Promise<BackupSession>;
  /** Prepare a restore of `manifest` into `target`; checks the target before anything is written. */
  openRestore(target: SourceUrl, manifest: Manifest, options: RestoreOptions): Promise<RestoreSession>;
  /** How `verify --deep` reads an artifact back after decryption and decompression. */
  deepCheck(artifact: ManifestArtifact): DeepCheck;
  /**
   * The engine's restore tool writes as it reads and cannot take back what it wrote (MongoDB):
   * restore then reads every artifact whole through decryption, decompression and the deep
   * check before any step starts, so a damaged backup or a wrong key writes nothing.
   */
  readonly verifyBeforeRestore?: boolean;
  /** Row counts of the user tables of a database (restore drills compare them with the manifest's). */
  countTables?(target: SourceUrl): Promise<TableStat[]>;
  /** Drop a database (restore drills remove what they restored). */
  dropDatabase?(target: SourceUrl): Promise<void>;
  /** Whether a database exists. */
  databaseExists?(target: SourceUrl): Promise<boolean>;
  /** The programs a backup or restore runs, checked before any session opens (preflight.ts). */
  tools(purpose: ToolPurpose, method: BackupMethod): readonly ToolNeed[];
  /**
   * The server's major version, by a quick query, for tools that must be at least that
   * version (ToolNeed.atLeastServerMajor); undefined when the server cannot be asked.
   */
  serverMajor?(url: SourceUrl, purpose: ToolPurpose): Promise<number | undefined>;
  /**
   * Why `restore --target URL` cannot restore this backup (a PostgreSQL physical backup is a
   * data directory), checked before any tool runs; undefined when it can.
   */
  notRestorableToUrl?(manifest: Manifest): string | undefined;
  /**
   * `restore --to-time T --target URL`: the full backup before T, then the engine's log replayed
   * to T. `restoreBackup` restores one backup as `restore --id` does (the command passes it in,
   * so an engine never imports a command). Engines without it refuse --to-time with
   * `toTimeRefusal`.
   */
  restoreToTime?(cfg: RestoreConfig, signal: AbortSignal, restoreBackup: RestoreBackup): Promise<RestoreResult>;
  /** The message --to-time with --target URL fails with when the engine cannot do it that way. */
  readonly toTimeRefusal?: string;
  /** `restore --id` of an incremental or differential backup whose chain the engine replays itself. */
  restoreChain?(
    cfg: RestoreConfig,
    manifest: Manifest,
    signal: AbortSignal,
    restoreBackup: RestoreBackup,
  ): Promise<RestoreResult>;
  /** `restore --target-dir DIR`: lay a data directory down (PostgreSQL physical and point-in-time). */
  restoreToDirectory?(cfg: RestoreConfig, signal: AbortSignal): Promise<RestoreResult>;
  /** The recoverable window of the engine's log archive in a storage location, if it holds one. */
  archiveWindow?(storage: Storage, catalog: Catalog): Promise<ArchiveWindow | undefined>;
  /** `wal-push FILE` (PostgreSQL's archive_command), for engines that ship a WAL (lib/core/engines.ts). */
  walPush?(cfg: WalPushConfig, signal: AbortSignal): Promise<unknown>;
  /** `wal-fetch NAME DEST` (PostgreSQL's restore_command). */
  walFetch?(cfg: WalFetchConfig, signal: AbortSignal): Promise<unknown>;
  /** `binlog-stream`: follow the server's binary log into the archive until stopped. */
  binlogStream?(cfg: BinlogStreamConfig, signal: AbortSignal): Promise<LogStreamResult>;
}

/** What a log stream shipped before it was stopped. */
export interface LogStreamResult {
  readonly logs: number;
  readonly chunks: number;
  readonly bytes: number;
  readonly seconds: number;
}

/** The result `restore` prints. */
export interface RestoreResult {
  readonly id: string;
  readonly target: string;
  readonly seconds: number;
  readonly artifacts: string[];
}

/** Restore one backup into a database, as `restore --id` does. */
export type RestoreBackup = (cfg: RestoreConfig, signal: AbortSignal) => Promise<RestoreResult>;

/** What a tool is needed for. */
export enum ToolPurpose {
  BACKUP = 'backup',
  RESTORE = 'restore',
}

/** A program a plan runs; preflight.ts checks that it exists and runs (`cmd --version`). */
export interface ToolNeed {
  /** The program: a path, or a name looked up on PATH. */
  readonly cmd: string;
  /** Its name in messages. */
  readonly label: string;
  /** What it is needed for, e.g. `compression zstd`. */
  readonly why: string;
  /** How to get it, e.g. `install postgresql-client-17`. */
  readonly fix?: string;
  /** Its major version must be at least the server's (PostgreSQL's pg_dump and pg_restore). */
  readonly atLeastServerMajor?: boolean;
  /** The arguments that make it print its version and exit 0. @default ['--version'] */
  readonly versionArgs?: readonly string[];
}

export interface BackupOpenOptions {
  readonly type: BackupType;
  readonly method: BackupMethod;
  /** A string naming the database and the destination; overlapping runs with the same key never interleave. */
  readonly lockKey: string;
  /** How long to wait for an overlapping run to end (0: refuse at once). */
  readonly lockWaitSeconds: number;
  /** How long the dump waits for another session's lock on a table before it gives up. */
  readonly lockTimeoutSeconds?: number;
  /** Where the backup goes: incremental and differential backups find their parent (and log archive) there. */
  readonly storage?: Storage;
  /** The identifier of the database in metrics, lock names and chains. */
  readonly databaseId?: string;
  /** --jobs N of the dump tool (undefined: the engine applies lib/core/parallel.ts's rule). */
  readonly jobs?: number;
  /** Row counts for the manifest: exact (a count in the dump's snapshot) or the planner's estimates. */
  readonly rowCounts?: 'exact' | 'estimate';
}

export type { ProducedStream, StreamProducer } from '../../pipeline/stages';

/** One artifact to produce: a command whose stdout is the artifact's content. */
export interface ArtifactPlan {
  /** The stored name without compression/encryption extensions, e.g. `database.pgdump`. */
  readonly name: string;
  readonly role: string;
  readonly format: string;
  readonly producer: CommandSpec | StreamProducer;
  /**
   * Called when the producer failed: return a replacement producer to try (e.g. without
   * role passwords when the user may not read them), a warning to record and skip the
   * artifact, a message to fail the backup with (naming the cause), or undefined to fail it.
   */
  readonly onFailure?: (
    stderr: string,
  ) => { readonly retry?: CommandSpec; readonly skipWarning?: string; readonly fail?: string } | undefined;
  /**
   * Called with the producer's stderr as it arrives, e.g. to follow a dump tool's `--verbose`
   * messages (MySQL: release a brief commit block once the dump's snapshot is open).
   */
  readonly onStderr?: (text: string) => void;
}

/** An open backup: the snapshot (and lock) are held until close(). */
export interface BackupSession {
  readonly serverVersion: string;
  readonly tools: Readonly<Record<string, string>>;
  readonly position?: LogPosition;
  readonly artifacts: readonly ArtifactPlan[];
  /** Row counts per table in the backup's snapshot (computed while the dump runs). */
  tables(): Promise<TableStat[] | undefined>;
  close(): Promise<void>;
  /** Incremental/differential: the backup this one depends on, its chain's full, and where its log range starts. */
  readonly chain?: { readonly parent: string; readonly base: string; readonly startPosition: LogPosition };
  /** Where the backup's log range starts when it is not part of a chain (a physical full: its WAL start point). */
  readonly startPosition?: LogPosition;
  /**
   * Objects already stored (e.g. archived WAL segments) that become artifacts of this backup as
   * they are: copied byte for byte, hashed, no compression or encryption stage. `storedAs` then
   * says how they were compressed and encrypted when they were archived.
   */
  readonly copies?: readonly ArtifactCopy[];
  readonly storedAs?: Manifest['pipeline'];
}

/** A stored object copied into a backup's folder as one of its artifacts. */
export interface ArtifactCopy {
  /** The artifact's name in the backup's folder (with its extensions). */
  readonly name: string;
  readonly role: string;
  readonly format: string;
  /** The key of the object to copy, relative to the storage URL. */
  readonly from: string;
  /** Size of the plaintext. */
  readonly rawSize?: number;
}

export interface RestoreOptions {
  readonly clean: boolean;
  readonly withGlobals: boolean;
  /** --jobs N of the restore tool (undefined: the engine applies lib/core/parallel.ts's rule). */
  readonly jobs?: number;
  /** The run's interrupt, for work done in RestoreSession.commit. */
  readonly signal?: AbortSignal;
}

/** A restore ready to run: feed each artifact's plaintext to the consumer it names. */
export interface RestoreSession {
  /** Artifacts to restore, in order, with the consumer of each (stdin: the artifact's plaintext). */
  readonly steps: readonly RestoreStep[];
  /**
   * Called after every step succeeded (every artifact was read whole and matched the manifest):
   * a restore that lays the artifacts down first (a parallel restore from a scratch directory)
   * runs its restore tool here.
   */
  commit(): Promise<void>;
  /** Called when a step failed: undo what the restore made (e.g. drop a database it created). */
  rollback(): Promise<void>;
}

export interface RestoreStep {
  readonly artifact: ManifestArtifact;
  /** The consumer, or a function that consumes the plaintext itself. */
  readonly consumer: CommandSpec | ((plaintext: Readable) => Promise<void>);
  /**
   * A function consumer that takes the plaintext as it streams (e.g. into a scratch directory),
   * instead of the whole plaintext read and checked first (small scripts, at most 256 MiB).
   */
  readonly streamed?: boolean;
}

/**
 * How a deep check reads an artifact: a command that reads the whole stream, a trailer the
 * text must end with, or a reader in this process that consumes the whole plaintext stream
 * and rejects when it is not a complete, well-formed artifact (e.g. a mongodump archive).
 */
export type DeepCheck =
  | { readonly kind: 'command'; readonly command: CommandSpec }
  | { readonly kind: 'trailer'; readonly trailer: string }
  | { readonly kind: 'reader'; readonly read: (plaintext: Readable) => Promise<void> };
