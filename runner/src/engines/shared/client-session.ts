import { ChildProcessError } from '../../errors';
import { Child, CommandSpec } from '../../pipeline/stages';

/** The line a session's client prints after each query's output. */
export const SESSION_END = '__dbbackup_end__';

/**
 * One long-lived database client (psql, mariadb) that runs queries one at a time over its
 * stdin, each followed by a statement that prints SESSION_END, so the output of each query is
 * known. It holds what must last for a whole backup (a lock, a snapshot) and dies with this
 * process, so a crashed run never leaves a lock behind. When the client ends (a failed
 * statement stops it), every pending query rejects with its ChildProcessError.
 */
export abstract class ClientSession {
  private readonly child: Child;
  private buf = '';
  private pending: { resolve: (s: string) => void; reject: (e: Error) => void }[] = [];
  private closed?: Error;

  constructor(spec: CommandSpec) {
    this.child = new Child(spec, ['pipe', 'pipe', 'pipe']);
    this.child.process.stdin!.on('error', () => undefined);
    this.child.process.stdout!.setEncoding('utf8');
    this.child.process.stdout!.on('data', (d: string) => {
      this.buf += d;
      for (;;) {
        const i = this.buf.indexOf(SESSION_END + '\n');
        if (i < 0) break;
        const out = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + SESSION_END.length + 1);
        this.pending.shift()?.resolve(out.replace(/\n$/, ''));
      }
    });
    this.child.done.then(
      () => this.fail(new ChildProcessError(this.child.label, 0, null, 'the session ended')),
      (e: Error) => this.fail(e),
    );
  }

  /** The client's statement that prints SESSION_END on a line of its own. */
  protected abstract readonly endMarker: string;
  /** What to write to end the session cleanly. */
  protected readonly quit: string = '';

  private fail(e: Error): void {
    this.closed ??= e;
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  /** Whether the connection is still there. */
  public get alive(): boolean {
    return this.closed === undefined;
  }

  /** Run SQL (one or more `;`-separated statements); resolves with what it printed. */
  public query(sql: string): Promise<string> {
    if (this.closed !== undefined) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.process.stdin!.write(`${sql.trim().replace(/;?$/, ';')}\n${this.endMarker}\n`);
    });
  }

  /** End the session (and with it any transaction and lock it holds). */
  public async close(): Promise<void> {
    if (this.closed === undefined) this.child.process.stdin!.end(this.quit);
    await this.child.done.catch(() => undefined);
  }
}
