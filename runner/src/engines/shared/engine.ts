import { Readable } from 'node:stream';
import { LogPosition, Manifest, ManifestArtifact, TableStat } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Compression, Engine } from '../../../../lib/core/model';
import { EncryptionScheme, SourceUrl, StorageUrl } from '../../../../lib/core/urls';
import { ArchiveWindow } from '../../archive/window';
import { Catalog } from '../../catalog';
import { BinlogStreamConfig, RestoreConfig, WalFetchConfig, WalPushConfig, WalReceiveConfig } from '../../config';
import type { FileConsumer } from '../../pipeline/read-back';
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
  /**
   * A restore drill of a physical backup: lay it down (its chain) in a scratch directory, start a
   * temporary server on it and return the row counts of the backup's database; everything is
   * removed afterwards. Engines without it cannot drill physical backups.
   */
  drillPhysical?(cfg: PhysicalDrillConfig, manifest: Manifest, signal: AbortSignal): Promise<TableStat[]>;
  /** Drop a database (restore drills remove what they restored). */
  dropDatabase?(target: SourceUrl): Promise<void>;
  /** Whether a database exists. */
  databaseExists?(target: SourceUrl): Promise<boolean>;
  /** The programs a backup or restore runs, checked before any session opens (preflight.ts). */
  tools(purpose: ToolPurpose, method: BackupMethod, context?: ToolContext): readonly ToolNeed[];
  /**
   * The server's major version, by a quick query, for tools that must be at least that
   * version (ToolNeed.atLeastServerMajor); undefined when the server cannot be asked.
   */
  serverMajor?(url: SourceUrl, purpose: ToolPurpose): Promise<number | undefined>;
  /**
   * Why the tools found cannot work with the server at `url` (a MySQL server newer than the dump
   * tool, lib/core/versions.ts), asked before any work; undefined when they can or the server
   * cannot be asked (the session then reports why).
   */
  serverToolProblem?(url: SourceUrl, purpose: ToolPurpose): Promise<string | undefined>;
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
  restoreToTime?(
    cfg: RestoreConfig,
    signal: AbortSignal,
    restoreBackup: RestoreBackup,
    check: CheckBeforeWork,
  ): Promise<RestoreResult>;
  /** The message --to-time with --target URL fails with when the engine cannot do it that way. */
  readonly toTimeRefusal?: string;
  /** `restore --id` of an incremental or differential backup whose chain the engine replays itself. */
  restoreChain?(
    cfg: RestoreConfig,
    manifest: Manifest,
    signal: AbortSignal,
    restoreBackup: RestoreBackup,
    check: CheckBeforeWork,
  ): Promise<RestoreResult>;
  /** `restore --target-dir DIR`: lay a data directory down (PostgreSQL physical and point-in-time). */
  restoreToDirectory?(cfg: RestoreConfig, signal: AbortSignal, check: CheckBeforeWork): Promise<RestoreResult>;
  /** The recoverable window of the engine's log archive in a storage location, if it holds one. */
  archiveWindow?(storage: Storage, catalog: Catalog): Promise<ArchiveWindow | undefined>;
  /**
   * How far the source's data is behind its primary when it is a replica (backup
   * --max-replica-lag), or `{ replica: false }` on a primary. Rejects with a BackupError when the
   * server is a replica whose lag cannot be known (replication stopped): see replica-lag.ts.
   */
  replicaLag?(source: SourceUrl): Promise<ReplicaLag>;
  /**
   * A point-in-time drill (`drill` where the store holds a log archive): pick a moment inside the
   * window with `request.pick` (the engine may narrow the window to what it can prove it reaches),
   * restore it into a scratch place (MySQL/MariaDB: the drill's target database; PostgreSQL: a
   * data directory started on a free port), check it and clean up.
   */
  drillToTime?(request: TimeDrillRequest, signal: AbortSignal, restoreBackup: RestoreBackup): Promise<TimeDrillResult>;
  /** `wal-push FILE` (PostgreSQL's archive_command), for engines that ship a WAL (lib/core/engines.ts). */
  walPush?(cfg: WalPushConfig, signal: AbortSignal): Promise<unknown>;
  /** `wal-fetch NAME DEST` (PostgreSQL's restore_command). */
  walFetch?(cfg: WalFetchConfig, signal: AbortSignal, check: CheckBeforeWork): Promise<unknown>;
  /** `binlog-stream`: follow the server's binary log into the archive until stopped. */
  binlogStream?(cfg: BinlogStreamConfig, signal: AbortSignal): Promise<LogStreamResult>;
  /** `wal-receive`: stream the server's WAL into the archive until stopped. */
  walReceive?(cfg: WalReceiveConfig, signal: AbortSignal): Promise<LogStreamResult>;
}

/** Where a physical drill reads its backup from. */
export interface PhysicalDrillConfig {
  readonly from: RestoreConfig['from'];
  readonly identity?: string;
  /** The plan's programs and --identity, checked before any work (see CheckBeforeWork). */
  readonly check: CheckBeforeWork;
}

/** A replica's delay behind its primary, as `replicaLag` measured it. */
export type ReplicaLag =
  | { readonly replica: false }
  | {
      readonly replica: true;
      readonly seconds: number;
      /** How the figure was read, for the log (e.g. `Seconds_Behind_Master`). */
      readonly how: string;
    };

/** What a point-in-time drill is asked to do. */
export interface TimeDrillRequest {
  readonly from: StorageUrl;
  /** The drill's --target (MySQL/MariaDB restore into it; PostgreSQL uses a scratch data directory instead). */
  readonly target: SourceUrl;
  readonly identity?: string;
  /** The database whose backups are drilled, when the store holds several. */
  readonly database?: string;
  readonly window: ArchiveWindow;
  /** The random (seeded) moment in [from, to], outside the window's holes. */
  pick(from: Date, to: Date): Date;
  /** The plan's programs and --identity, checked before any work (see CheckBeforeWork). */
  readonly check: CheckBeforeWork;
}

/** What a point-in-time drill found. */
export interface TimeDrillResult {
  /** The full or base backup the restore started from. */
  readonly base: string;
  /** The moment the restore was asked for. */
  readonly target: string;
  /** The last transaction the restore replayed (at or before the target), where the engine reports it. */
  readonly reached?: string;
  readonly restoreSeconds: number;
  /** Tables of the base backup checked present after the restore, and rows counted in them. */
  readonly tablesChecked: number;
  readonly rowsCounted: number;
  /** What is wrong; empty when the drill passed. */
  readonly problems: string[];
  /** Why the moment was not restored at all (a program this machine lacks); the drill warns. */
  readonly skipped?: string;
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

/**
 * What an engine's own plan reads back and runs (a physical or point-in-time restore, a chain
 * replay, wal-fetch), for the check before work that the command passes in (preflight.ts).
 */
export interface ReadCheck {
  /** The backups it reads back: their decompression and decryption (and --identity) are checked. */
  readonly manifests: readonly Manifest[];
  /** Stored log objects it reads back without a manifest of their own (archived WAL, binary logs). */
  readonly objects?: readonly { readonly compression: Compression; readonly encryption: EncryptionScheme }[];
  /** Programs it runs beyond the shared stages (e.g. mariadb-binlog for a replay). */
  readonly tools?: readonly ToolNeed[];
  /** The database it restores into: the engine's restore tools and the server's version are checked. */
  readonly target?: SourceUrl;
}

/**
 * Check a plan before any work: throws ConfigError (exit 2) naming the missing program or bad
 * --identity. Commands pass it to the engine, which calls it once it knows its plan and before it
 * reads, creates or writes anything.
 */
export type CheckBeforeWork = (need: ReadCheck) => Promise<void>;

/** Restore one backup into a database, as `restore --id` does. */
export type RestoreBackup = (cfg: RestoreConfig, signal: AbortSignal) => Promise<RestoreResult>;

/** What a tool is needed for. */
export enum ToolPurpose {
  BACKUP = 'backup',
  RESTORE = 'restore',
}

/** What else decides a plan's programs: the options given and, for a restore, the backup. */
export interface ToolContext {
  /** The backup's type (a backup). */
  readonly type?: BackupType;
  /** --jobs N as given (undefined: not given). */
  readonly jobs?: number;
  /** The backup a restore reads (its artifacts' formats name their restore tools). */
  readonly manifest?: Manifest;
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
  /**
   * A warning about what this backup holds or lacks (no row counts, no position, no users and
   * grants): logged, and recorded in the manifest's warnings.
   */
  readonly warn: (message: string, fields?: Record<string, unknown>) => void;
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
export type { FileConsumer };

/** One artifact to produce: a command whose stdout is the artifact's content. */
export interface ArtifactPlan {
  /** The stored name without compression/encryption extensions, e.g. `database.pgdump`. */
  readonly name: string;
  readonly role: string;
  readonly format: string;
  readonly producer: CommandSpec | StreamProducer;
  /** Asked once the producer succeeded: a warning to record (e.g. what the producer had to leave out). */
  readonly warning?: () => string | undefined;
  /**
   * Called when the producer failed: return a replacement producer to try (e.g. without
   * role passwords when the user may not read them) with the warning to record when it succeeds
   * (`retryWarning`, asked once it did), a warning to record and skip the artifact (with a retry: when the retry
   * fails too), a message to fail the backup with (naming the cause), or undefined to fail it.
   */
  readonly onFailure?: (stderr: string) =>
    | {
        readonly retry?: CommandSpec | StreamProducer;
        readonly retryWarning?: () => string | undefined;
        readonly skipWarning?: string;
        readonly fail?: string;
      }
    | undefined;
  /**
   * Called with the producer's stderr as it arrives, e.g. to follow a dump tool's `--verbose`
   * messages (MySQL: release a brief commit block once the dump's snapshot is open).
   */
  readonly onStderr?: (text: string) => void;
  /**
   * Stored while the other artifacts stream, instead of after the one before it: a small
   * artifact whose producer needs nothing from them (PostgreSQL's roles). Its place in the
   * manifest is still its place in the list.
   */
  readonly alongside?: boolean;
  /**
   * The producer always writes something (a dump tool its format's header, a physical backup its
   * files): a stream with no byte fails the backup however the producer exited, instead of being
   * stored as an empty artifact that a checksum verify would pass.
   */
  readonly neverEmpty?: boolean;
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
  /**
   * The consumer, a function that consumes the plaintext itself, or a new file the plaintext is
   * written to by the last stage that decrypts or decompresses (FileConsumer).
   */
  readonly consumer: CommandSpec | ((plaintext: Readable) => Promise<void>) | FileConsumer;
  /**
   * A function consumer that takes the plaintext as it streams (e.g. into a scratch directory),
   * instead of the whole plaintext read and checked first (small scripts, at most 256 MiB).
   */
  readonly streamed?: boolean;
  /**
   * A command consumer that reads only the artifact's start (pg_restore --list): after an earlier
   * step read and checked the whole artifact, this read checks just the prefix it used and stops
   * (feedVerified's headOnly), instead of reading the whole object a second time.
   */
  readonly headOnly?: boolean;
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
