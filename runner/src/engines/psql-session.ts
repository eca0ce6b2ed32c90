import { ChildProcessError } from '../errors';
import { Child, CommandSpec } from '../proc';

const END = '__dbbackup_end__';

/**
 * One long-lived `psql` connection that runs queries one at a time. It holds what must last
 * for a whole backup (an advisory lock, an exported snapshot) and dies with this process, so a
 * crashed run never leaves a lock behind.
 */
export class PsqlSession {
  private readonly child: Child;
  private buf = '';
  private pending: { resolve: (s: string) => void; reject: (e: Error) => void }[] = [];
  private closed?: Error;

  constructor(spec: CommandSpec) {
    this.child = new Child({ ...spec, args: ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...spec.args] }, ['pipe', 'pipe', 'pipe']);
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
    this.closed = e;
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  /** Run SQL (one or more statements); resolves with what it printed (unaligned, tuples only). */
  public query(sql: string): Promise<string> {
    if (this.closed !== undefined) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.process.stdin!.write(`${sql.trim().replace(/;?$/, ';')}\n\\echo ${END}\n`);
    });
  }

  /** Run a query that returns one JSON value. */
  public async json<T>(sql: string): Promise<T> {
    return JSON.parse(await this.query(sql)) as T;
  }

  /** End the session (and with it any transaction and lock it holds). */
  public async close(): Promise<void> {
    if (this.closed === undefined) this.child.process.stdin!.end('\\q\n');
    await this.child.done.catch(() => undefined);
  }
}
