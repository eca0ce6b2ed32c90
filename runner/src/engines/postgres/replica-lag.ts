/**
 * How far a PostgreSQL standby is behind its primary (backup --max-replica-lag).
 *
 * The rule, in order:
 *
 * 1. `pg_is_in_recovery()` is false: a primary; there is no lag to gate on.
 * 2. The WAL receiver is streaming (`pg_stat_wal_receiver.status = 'streaming'`) and everything it
 *    received is replayed (`pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()`): no WAL is
 *    pending, the standby holds all the primary sent, and the lag is 0 however long ago the last
 *    transaction was (an idle primary writes nothing, and `now() - pg_last_xact_replay_timestamp()`
 *    would grow without the standby being behind).
 * 3. Otherwise (WAL received but not yet replayed, replay paused, the receiver disconnected, or a
 *    standby fed only by restore_command): the lag is `now() - pg_last_xact_replay_timestamp()`,
 *    an upper bound (the first transaction not yet replayed may be younger than the last one
 *    replayed). A standby that has replayed no transaction yet has no such time: its lag cannot be
 *    known and the backup fails.
 *
 * A momentary gap in rule 2 (a write on the primary the standby is replaying this very
 * millisecond) would read as the whole idle time: when the first reading is not caught up, two
 * more are taken a second apart and the smallest counts. A replica whose replay is stopped stays
 * behind in all three.
 *
 * Rule 2 needs the columns of pg_stat_wal_receiver, which PostgreSQL shows only to superusers and
 * members of pg_read_all_stats (pg_monitor): without them the receiver's state reads as unknown and
 * rule 3 applies.
 */
import { SECRET_ENV } from '../../../../lib/core/contract';
import { SourceUrl } from '../../../../lib/core/urls';
import { BackupError } from '../../errors';
import { ReplicaLag } from '../shared/engine';
import { PsqlSession } from './session';
import { pgEnv, pgTool } from './tools';

/** What a standby says about its replication, in one query. */
export interface StandbyState {
  readonly recovery: boolean;
  /** pg_stat_wal_receiver.status (null: no receiver, or not visible to this user). */
  readonly receiver: string | null;
  /** Whether everything received is replayed (null when nothing was received by streaming). */
  readonly replayedAll: boolean | null;
  /** now() - pg_last_xact_replay_timestamp(), in seconds (null: no transaction replayed yet). */
  readonly sinceLastReplay: number | null;
}

const STATE_SQL = `SELECT json_build_object(
  'recovery', pg_is_in_recovery(),
  'receiver', (SELECT status FROM pg_stat_wal_receiver LIMIT 1),
  'replayedAll', pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn(),
  'sinceLastReplay', extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8)`;

/** The lag by the rule above, from one reading; throws when a standby's lag cannot be known. */
export function lagOfStandby(s: StandbyState, display: string): ReplicaLag {
  if (!s.recovery) return { replica: false };
  if (s.receiver === 'streaming' && s.replayedAll === true)
    return { replica: true, seconds: 0, how: 'streaming, everything received is replayed' };
  if (s.sinceLastReplay === null) {
    throw new BackupError(
      `${display} is a standby that has replayed no transaction yet (WAL ` +
        `receiver: ${s.receiver ?? 'none or not visible'}), ` +
        'so its replication lag cannot be measured; wait until it has caught up, or back up the primary.',
    );
  }
  return {
    replica: true,
    seconds: Math.max(0, s.sinceLastReplay),
    how:
      `now() - pg_last_xact_replay_timestamp() (WAL receiver: ${s.receiver ?? 'none or not visible'}, ` +
      `${s.replayedAll === false ? 'received WAL not yet replayed' : 'no streamed WAL'})`,
  };
}

/** Measure a PostgreSQL server's replication lag (EngineDriver.replicaLag). */
export async function postgresReplicaLag(source: SourceUrl): Promise<ReplicaLag> {
  const env = pgEnv(source, process.env[SECRET_ENV.SOURCE_PASSWORD]);
  const session = new PsqlSession({ cmd: pgTool('psql'), args: [], env, label: 'psql' });
  try {
    let best: ReplicaLag | undefined;
    for (let reading = 0; reading < 3; reading++) {
      if (reading > 0) await new Promise((r) => setTimeout(r, 1000));
      let state: StandbyState;
      try {
        state = await session.json<StandbyState>(STATE_SQL);
      } catch (e) {
        throw new BackupError(`could not read the replication state of ${source.display}: ${(e as Error).message}`);
      }
      const lag = lagOfStandby(state, source.display);
      if (!lag.replica) return lag;
      if (best === undefined || (best.replica && lag.seconds < best.seconds)) best = lag;
      if (lag.seconds === 0) break;
    }
    return best!;
  } finally {
    await session.close();
  }
}
