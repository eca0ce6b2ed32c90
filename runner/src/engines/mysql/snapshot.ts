/** One consistent snapshot shared by the dump and the control session, and the lock watch. */
import { LogPosition } from '../../../../lib/core/manifest';
import { SourceUrl } from '../../../../lib/core/urls';
import { log } from '../../log';
import { capture } from '../../pipeline/stages';
import { MysqlSession, quoteString } from './session';
import { MysqlFlavor, ServerInfo, clientTool, mysqlConnArgs, openSession } from './client';

/**
 * The snapshot a backup is consistent at, shared by the dump tool and the row counts.
 *
 * mysqldump/mariadb-dump open their own `START TRANSACTION WITH CONSISTENT SNAPSHOT`, which no
 * other session can join. So a control session blocks commits for a moment (MariaDB:
 * `BACKUP STAGE BLOCK_COMMIT`, MySQL: `FLUSH TABLES WITH READ LOCK`; both need RELOAD), opens
 * its own snapshot and reads the binary log position in it, and keeps the block until the
 * dump tool's `--verbose` output shows that its transaction is open too. Both snapshots then
 * see the same commits: the row counts (taken in the control snapshot while the dump runs) and
 * the binlog position are exactly the dump's. Reads and uncommitted writes go on meanwhile;
 * only commits wait, typically for a few tens of milliseconds.
 *
 * Without RELOAD (or if the dump's transaction does not open within a minute), the two
 * snapshots may differ by the commits in between. On MariaDB with binary logging that is
 * checked at the end: if the binary log did not move since the control snapshot, nothing was
 * committed and they are the same. Otherwise the manifest records neither row counts nor a
 * position (the dump's own header still has the position, as a `-- CHANGE MASTER TO` comment).
 */
export class SharedSnapshot {
  public position?: LogPosition;
  /** The snapshot session's connection, which a LockWatch must not take for the dump's. */
  public connectionId?: number;
  private block?: MysqlSession;
  private blockedAt = 0;
  private blockTimer?: NodeJS.Timeout;
  /** The dump's current attempt opened its transaction while commits were blocked. */
  private dumpUnderBlock = false;
  private sawStart = false;
  private stderrTail = '';
  public readonly warnings: string[] = [];

  private constructor(
    public readonly session: MysqlSession,
    private readonly info: ServerInfo,
  ) {}

  public static async open(
    source: SourceUrl,
    env: Record<string, string | undefined>,
    info: ServerInfo,
  ): Promise<SharedSnapshot> {
    let block: MysqlSession | undefined = await openSession(source, env, info.flavor);
    try {
      await block.query('SET SESSION lock_wait_timeout = 10');
      if (info.flavor === MysqlFlavor.MARIADB && info.num >= 100400)
        await block.query('BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT');
      else await block.query('FLUSH TABLES WITH READ LOCK');
    } catch (e) {
      await block.close();
      block = undefined;
      log.warn(
        'could not block commits while the backup opens its snapshots (this needs the RELOAD privilege); ' +
          'the row counts and binlog position are recorded only if nothing was committed meanwhile',
        {
          error: (e as Error).message.split('\n')[0],
        },
      );
    }
    const session = await openSession(source, env, info.flavor, source.database);
    const snap = new SharedSnapshot(session, info);
    snap.block = block;
    snap.blockedAt = Date.now();
    try {
      const id = await session.query(
        'SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT; ' +
          'SELECT CONNECTION_ID()',
      );
      snap.connectionId = Number(id.trim());
      if (info.logBin) snap.position = await snap.readPosition(source, env);
    } catch (e) {
      await snap.close();
      throw e;
    }
    if (block !== undefined) {
      // Never hold commits for long, whatever happens to the dump.
      snap.blockTimer = setTimeout(() => {
        log.warn('the dump did not open its transaction within 60 s; releasing the commit block');
        void snap.release();
      }, 60000);
    }
    return snap;
  }

  private async readPosition(
    source: SourceUrl,
    env: Record<string, string | undefined>,
  ): Promise<LogPosition | undefined> {
    if (this.info.flavor === MysqlFlavor.MARIADB) {
      // Binlog_snapshot_* are the position of this session's consistent snapshot (no privilege needed).
      const out = await this.session.query(`SHOW STATUS LIKE 'binlog\\_snapshot\\_%'`);
      const vars = Object.fromEntries(out.split('\n').map((l) => l.split('\t')));
      const file = vars.Binlog_snapshot_file;
      const pos = Number(vars.Binlog_snapshot_position);
      if (!file || !Number.isFinite(pos)) return undefined;
      const gtid = await this.session.query(`SELECT COALESCE(BINLOG_GTID_POS(${quoteString(file)}, ${pos}), '')`);
      return { kind: 'binlog', file, pos, gtid: gtid === '' ? undefined : gtid };
    }
    // MySQL: under FLUSH TABLES WITH READ LOCK the server's position is the snapshot's. The
    // statement needs REPLICATION CLIENT; run it in its own connection so a refusal costs nothing.
    if (this.block === undefined) return undefined;
    const statement = this.info.num >= 80400 ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS';
    try {
      const out = await capture({
        cmd: clientTool(MysqlFlavor.MYSQL),
        args: [...mysqlConnArgs(source), '--batch', '--skip-column-names', '-e', statement],
        env,
        label: 'mysql',
      });
      const [file, pos, , , gtid] = out.trim().split('\t');
      return file ? { kind: 'binlog', file, pos: Number(pos), gtid: gtid || undefined } : undefined;
    } catch (e) {
      this.warnings.push(
        `the binlog position was not recorded: ${statement} failed (it needs ` +
          `REPLICATION CLIENT): ${(e as Error).message.split('\n')[0]}`,
      );
      return undefined;
    }
  }

  /**
   * Follow the dump tool's `--verbose` messages: once a message follows "-- Starting
   * transaction...", its snapshot is open and commits may go on.
   */
  public onDumpStderr = (text: string): void => {
    this.stderrTail = (this.stderrTail + text).slice(-4096);
    const lines = this.stderrTail.split('\n');
    const start = lines.findIndex((l) => l.startsWith('-- Starting transaction'));
    if (lines.some((l) => l.startsWith('-- Connecting to'))) {
      // A (re)started dump: only this attempt counts.
      const lastConnect = lines.map((l) => l.startsWith('-- Connecting to')).lastIndexOf(true);
      if (start < lastConnect) {
        if (this.sawStart) this.dumpUnderBlock = false;
        this.sawStart = false;
      }
    }
    if (start >= 0 && !this.sawStart && lines.slice(start + 1).some((l) => l.startsWith('-- '))) {
      this.sawStart = true;
      this.dumpUnderBlock = this.block !== undefined;
      this.stderrTail = '';
      void this.release();
    }
  };

  /** End the commit block. */
  public async release(): Promise<void> {
    if (this.blockTimer !== undefined) clearTimeout(this.blockTimer);
    const block = this.block;
    this.block = undefined;
    if (block === undefined) return;
    await block
      .query(this.info.flavor === MysqlFlavor.MARIADB && this.info.num >= 100400 ? 'BACKUP STAGE END' : 'UNLOCK TABLES')
      .catch(() => undefined);
    await block.close();
    log.info(`commits were held for ${Date.now() - this.blockedAt} ms while the backup's snapshots opened`, {
      dumpInSnapshot: this.dumpUnderBlock,
    });
  }

  /**
   * Whether the dump's snapshot is the control snapshot: opened under the commit block, or (on
   * MariaDB with binary logging) nothing was committed since the control snapshot opened.
   */
  public async sameAsDump(control: MysqlSession): Promise<boolean> {
    if (this.dumpUnderBlock) return true;
    if (this.info.flavor !== MysqlFlavor.MARIADB || this.position?.file === undefined) return false;
    // Outside a transaction, Binlog_snapshot_* is the server's current position.
    const out = await control.query(`SHOW STATUS LIKE 'binlog\\_snapshot\\_%'`).catch(() => '');
    const vars = Object.fromEntries(out.split('\n').map((l) => l.split('\t')));
    return (
      vars.Binlog_snapshot_file === this.position.file && Number(vars.Binlog_snapshot_position) === this.position.pos
    );
  }

  public async close(): Promise<void> {
    await this.release();
    await this.session.close();
  }
}

/** What holds up a dump's query, by the processlist's STATE. */
const METADATA_LOCK = 'Waiting for table metadata lock';
/**
 * The states of mydumper's FLUSH TABLES WITH READ LOCK while another session holds a table (MariaDB
 * 10.4 and later: the backup lock; MySQL and older MariaDB: the global read lock and table flush).
 */
const SNAPSHOT_LOCKS = ['Waiting for backup lock', 'Waiting for global read lock', 'Waiting for table flush'];

/** The states a dump's sessions are given up in: mariadb-dump's, or mydumper's too (its snapshot's FTWRL). */
export enum LockWatchOf {
  /** mariadb-dump/mysqldump --single-transaction: metadata locks. */
  SINGLE_STREAM = 'single-stream',
  /** mydumper -t N: its FLUSH TABLES WITH READ LOCK, and its threads' metadata locks. */
  MYDUMPER = 'mydumper',
}

/**
 * Gives up on a dump that waits for another session's lock (`LOCK TABLES … WRITE`, `ALTER TABLE`)
 * longer than `seconds`: mariadb-dump/mysqldump have no lock_wait_timeout option and the server's
 * default is a day; mydumper's --long-query-guard only looks at running queries, so its FLUSH TABLES
 * WITH READ LOCK waits for ever behind an idle session's table lock. The control session watches the
 * processlist once a second and stops the waiting query; the dump then fails and `blocked` says why.
 * The runner's own other sessions (`ignore`: the snapshot session's row counts wait on the same
 * table) are not the dump's; and it goes on stopping any query of the dump that waits as long,
 * so that no first stop of the wrong query can leave the dump waiting.
 */
export class LockWatch {
  public blocked?: string;
  /**
   * Called once the watch gave up (after its KILL QUERY): mydumper 0.10 takes a failed FLUSH TABLES
   * WITH READ LOCK for a warning and dumps on without a consistent snapshot, so it is stopped here.
   */
  public onBlocked?: () => void;
  private readonly timer: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly states: readonly string[];

  constructor(
    private readonly session: MysqlSession,
    private readonly database: string,
    private readonly seconds: number,
    of: LockWatchOf = LockWatchOf.SINGLE_STREAM,
    private readonly ignore: readonly number[] = [],
  ) {
    this.states = of === LockWatchOf.MYDUMPER ? [METADATA_LOCK, ...SNAPSHOT_LOCKS] : [METADATA_LOCK];
    this.timer = setInterval(() => (this.running = this.running.then(() => this.check())), 1000);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    if (this.stopped) return;
    const states = this.states.map((st) => `STATE LIKE ${quoteString(`${st}%`)}`).join(' OR ');
    const ours = ['CONNECTION_ID()', ...this.ignore.filter(Number.isSafeInteger).map(String)].join(', ');
    const row = await this.session
      .query(
        `SELECT CONCAT(ID, ' ', TIME, ' ', STATE, '|', COALESCE(INFO, '')) FROM information_schema.PROCESSLIST ` +
          `WHERE ID NOT IN (${ours}) AND DB = ${quoteString(this.database)} ` +
          `AND USER = SUBSTRING_INDEX(USER(), '@', 1) AND (${states}) ` +
          `AND TIME >= ${this.seconds} ORDER BY TIME DESC LIMIT 1`,
      )
      .catch(() => '');
    const m = /^(\d+) (\d+) ([^|]*)\|([\s\S]*)$/.exec(row.trim());
    if (m === null || this.stopped) return;
    if (this.blocked !== undefined) {
      await this.session.query(`KILL QUERY ${Number(m[1])}`).catch(() => undefined);
      return;
    }
    // mydumper's FLUSH TABLES WITH READ LOCK waits in either state, by how far it got.
    if (m[3].startsWith(METADATA_LOCK) && !/^\s*FLUSH\s+TABLES/i.test(m[4])) {
      const table = /(?:FROM|TABLE)\s+(`[^`]+`(?:\.`[^`]+`)?)/i.exec(m[4])?.[1] ?? 'a table';
      this.blocked =
        `the dump gave up after ${m[2]} s waiting for a metadata lock on ${table} in ${this.database}: another ` +
        'session holds it (LOCK TABLES … WRITE, ALTER TABLE, or a long transaction that used the table). ' +
        'Find it with SHOW PROCESSLIST, or raise --lock-timeout SECONDS.';
    } else {
      this.blocked =
        `mydumper gave up after ${m[2]} s waiting for the lock of its consistent snapshot (FLUSH TABLES WITH READ ` +
        `LOCK, state '${m[3]}') on ${this.database}: another session holds a table (LOCK TABLES … WRITE, ` +
        'ALTER TABLE, or a long query or transaction). Find it with SHOW PROCESSLIST, or raise --lock-timeout ' +
        'SECONDS.';
    }
    log.warn(this.blocked);
    this.onBlocked?.();
    await this.session.query(`KILL QUERY ${Number(m[1])}`).catch(() => undefined);
  }

  public async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }
}
