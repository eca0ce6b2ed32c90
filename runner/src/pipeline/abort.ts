/**
 * How a pipeline run stops, in one place: what happens when the run is interrupted, what is
 * torn down after it whatever the outcome, and how a run stops at once when its input is bad.
 * store.ts, read-back.ts and the log archive's fetch (archive/log-archive.ts) use it.
 */
import type { Progress } from '../log';
import type { Pipeline } from './stages';

/** A stream that can be destroyed (a storage read, a pipeline's stdin or stdout). */
interface Destroyable {
  destroy(error?: Error): unknown;
}

/** What a guarded run holds: each part is stopped when the run ends. */
export interface RunParts {
  /** Aborting it interrupts the run. */
  readonly signal?: AbortSignal;
  /** Its stages: killed (SIGTERM) on interruption, and any still running when the run ends. */
  readonly pipeline?: Pipeline;
  /** Its progress line, stopped when the run ends. */
  readonly progress?: Progress;
  /** More to do on interruption, after the stages are killed (abort an upload, end a stream). */
  readonly onAbort?: () => void;
}

/**
 * Run `body` under `parts.signal`: when it aborts (or already has), the stages are killed and
 * `onAbort` runs; when the body settles, the listener is removed, every stage still running is
 * killed and the progress line stopped. The body's own result or error is what it returns.
 */
export async function guarded<T>(parts: RunParts, body: () => Promise<T>): Promise<T> {
  const { signal, pipeline, progress, onAbort } = parts;
  const interrupt = () => {
    pipeline?.kill();
    onAbort?.();
  };
  signal?.addEventListener('abort', interrupt);
  if (signal?.aborted) interrupt();
  try {
    return await body();
  } finally {
    signal?.removeEventListener('abort', interrupt);
    pipeline?.kill();
    progress?.stop();
  }
}

/**
 * Stop at once: the input is damaged or unreadable, so no stage may see the end of its stream
 * (a consumer that sees the end would take a short stream for a whole one). Every stage is killed
 * with SIGKILL, then each stream destroyed (with `error` where it is given one: that is what its
 * reader sees).
 */
export function haltNow(
  pipeline: Pipeline | undefined,
  ...streams: readonly (Destroyable | readonly [Destroyable, Error])[]
): void {
  pipeline?.kill('SIGKILL');
  for (const s of streams) {
    if (Array.isArray(s)) (s[0] as Destroyable).destroy(s[1] as Error);
    else (s as Destroyable).destroy();
  }
}
