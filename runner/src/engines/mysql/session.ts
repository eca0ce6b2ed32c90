import { CommandSpec } from '../../pipeline/stages';
import { ClientSession, SESSION_END } from '../shared/client-session';

/**
 * A long-lived `mariadb`/`mysql` client connection (see ClientSession): it holds a GET_LOCK
 * lock, a consistent snapshot or a commit block for a whole backup.
 *
 * The client runs in batch mode without escaping (`--raw`), so queries whose values may hold
 * tabs or newlines return them as JSON (JSON_OBJECT/JSON_ARRAYAGG). The first failing statement
 * ends the client (batch mode stops at an error): every pending query then rejects with a
 * ChildProcessError carrying the server's message.
 */
export class MysqlSession extends ClientSession {
  protected readonly endMarker = `SELECT '${SESSION_END}';`;

  constructor(spec: CommandSpec) {
    super({
      ...spec,
      args: [
        ...spec.args,
        '--batch',
        '--raw',
        '--skip-column-names',
        '--unbuffered',
        '--default-character-set=utf8mb4',
      ],
    });
  }

  /** Run a query that returns one JSON value (NULL counts as `fallback`). */
  public async json<T>(sql: string, fallback?: T): Promise<T> {
    const out = await this.query(sql);
    if (out === 'NULL' || out === '') {
      if (fallback !== undefined) return fallback;
      throw new Error(`the query returned no value: ${sql.slice(0, 80)}`);
    }
    return JSON.parse(out) as T;
  }
}

/** A MySQL identifier in backticks. */
export function quoteName(s: string): string {
  return '`' + s.replace(/`/g, '``') + '`';
}

/** A MySQL string literal (the sessions run without NO_BACKSLASH_ESCAPES). */
export function quoteString(s: string): string {
  return "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/\0/g, '\\0') + "'";
}
