import { CommandSpec } from '../../pipeline/stages';
import { ClientSession, SESSION_END } from '../shared/client-session';

/** A long-lived `psql` connection (unaligned, tuples only, stopping at the first error). */
export class PsqlSession extends ClientSession {
  protected readonly endMarker = `\\echo ${SESSION_END}`;
  protected readonly quit = '\\q\n';

  constructor(spec: CommandSpec) {
    super({ ...spec, args: ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...spec.args] });
  }

  /** Run a query that returns one JSON value. */
  public async json<T>(sql: string): Promise<T> {
    return JSON.parse(await this.query(sql)) as T;
  }
}

/** An SQL identifier, double-quoted (`"a""b"`). */
export function quoteIdent(s: string): string {
  return '"' + s.replace(/"/g, '""') + '"';
}

/** An SQL string literal, single-quoted (`'it''s'`). */
export function quoteLiteral(s: string): string {
  return "'" + s.replace(/'/g, "''") + "'";
}
