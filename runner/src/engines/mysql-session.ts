import { ChildProcessError } from '../errors';
import { Child, CommandSpec } from '../proc';

const END = '__dbbackup_end__';

/**
 * One long-lived `mariadb`/`mysql` client connection that runs statements one at a time. It
 * holds what must last for a whole backup (a GET_LOCK lock, a consistent snapshot, a commit
 * block) and dies with this process, so a crashed run never leaves a lock behind.
 *
 * The client runs in batch mode without escaping (`--raw`), so queries whose values may hold
 * tabs or newlines return them as JSON (JSON_OBJECT/JSON_ARRAYAGG). The first failing statement
 * ends the client (batch mode stops at an error): every pending query then rejects with a
 * ChildProcessError carrying the server's message.
 */
export class MysqlSession {
  private readonly child: Child;
  private buf = '';
  private pending: { resolve: (s: string) => void; reject: (e: Error) => void }[] = [];
  private closed?: Error;

  constructor(spec: CommandSpec) {
    this.child = new Child({ ...spec, args: [...spec.args, '--batch', '--raw', '--skip-column-names', '--unbuffered', '--default-character-set=utf8mb4'] }, ['pipe', 'pipe', 'pipe']);
    this.child.process.stdin!.on('error', () => undefined);
    this.child.process.stdout!.setEncoding('utf8');
    this.child.process.stdout!.on('data', (d: string) => {
      this.buf += d;
      for (;;) {
        const i = this.buf.indexOf(END + '\n');
        if (i < 0) break;
        const out = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + END.length + 1);
        this.pending.shift()?.resolve(out.replace(/\n$/, ''));
      }
    });
    this.child.done.then(
      () => this.fail(new ChildProcessError(this.child.label, 0, null, 'the session ended')),
      (e: Error) => this.fail(e),
    );
  }

  private fail(e: Error): void {
    this.closed ??= e;
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  /** Whether the connection is still there. */
  public get alive(): boolean {
    return this.closed === undefined;
  }

  /** Run SQL (one or more statements, `;`-separated); resolves with what it printed. */
  public query(sql: string): Promise<string> {
    if (this.closed !== undefined) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.process.stdin!.write(`${sql.trim().replace(/;?$/, ';')}\nSELECT '${END}';\n`);
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

  /** End the session (and with it any transaction, lock or commit block it holds). */
  public async close(): Promise<void> {
    if (this.closed === undefined) this.child.process.stdin!.end();
    await this.child.done.catch(() => undefined);
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
