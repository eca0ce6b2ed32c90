/**
 * What the streaming parallel restores of PostgreSQL (pg_restore -L per batch) and MySQL/MariaDB
 * (myloader per batch) share: how a loader that starts now picks its batch from the files ready,
 * and the group of loader processes that stop together.
 */
import { Child, CommandSpec } from '../../pipeline/stages';

/**
 * The batch a loader starting now takes from `ready` (in order): at least one file, and further
 * files while their bytes stay within a 1/`jobs` share of all the ready bytes, so that a loader
 * that frees up later still finds work.
 */
export function shareOf<T extends { readonly size: number }>(ready: readonly T[], jobs: number): T[] {
  const total = ready.reduce((n, r) => n + r.size, 0);
  const batch: T[] = [];
  let bytes = 0;
  for (const r of ready) {
    if (batch.length > 0 && bytes + r.size > total / Math.max(1, jobs)) break;
    batch.push(r);
    bytes += r.size;
  }
  return batch;
}

/** The loader processes of one restore: stopped together when the run is interrupted or one fails. */
export class LoaderGroup {
  private readonly running = new Set<Child>();
  private readonly onAbort = () => this.stopAll();

  constructor(private readonly signal?: AbortSignal) {
    signal?.addEventListener('abort', this.onAbort);
  }

  /** Run one loader to its end (its stderr kept for the error); rejects on failure or an interrupt. */
  public async run(spec: CommandSpec): Promise<void> {
    if (this.signal?.aborted) throw this.signal.reason;
    const child = new Child(spec, ['ignore', 'ignore', 'pipe']);
    this.running.add(child);
    try {
      await child.done;
    } finally {
      this.running.delete(child);
    }
    if (this.signal?.aborted) throw this.signal.reason;
  }

  public stopAll(): void {
    for (const c of this.running) c.kill();
  }

  /** Stop listening for the interrupt (the restore is over). */
  public close(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
  }
}

/**
 * The loaders of one streaming restore, at most `jobs` at a time: each batch runs as its own
 * loader; when one ends well its `then` runs and `next` is asked for more work; the first failure
 * stops every loader (through the group) and is what the restore fails with.
 */
export class BatchLoads {
  private readonly loaders = new Set<Promise<void>>();
  private failure: unknown;

  constructor(
    private readonly jobs: number,
    private readonly group: LoaderGroup,
    /** Start what can start now (called after each loader that ended well). */
    private readonly next: () => void,
  ) {}

  /** How many more loaders may start now (none after a failure). */
  public get free(): number {
    return this.failure === undefined ? this.jobs - this.loaders.size : 0;
  }

  public start(load: () => Promise<void>, then: () => void): void {
    const loader: Promise<void> = load().then(
      () => {
        this.loaders.delete(loader);
        then();
        this.next();
      },
      (e: unknown) => {
        this.loaders.delete(loader);
        this.failure ??= e;
        this.group.stopAll();
      },
    );
    this.loaders.add(loader);
  }

  /** Throw the first loader failure, if there was one (from an extractor's hook: it stops the extraction). */
  public check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** The archive failed (damaged, interrupted) or a loader did: stop them all, let them end, throw the cause. */
  public async abandon(e: unknown): Promise<never> {
    // A loader's own failure came first and is the cause; else `e` is (and no loader starts any more).
    this.failure ??= e;
    this.group.stopAll();
    await Promise.allSettled([...this.loaders]);
    throw this.failure;
  }

  /** Wait for every loader, those started meanwhile too; throw the first failure. */
  public async drain(): Promise<void> {
    while (this.loaders.size > 0) await Promise.race(this.loaders);
    this.check();
  }
}
