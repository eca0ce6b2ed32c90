/**
 * Streamed resumable uploads: chunks of growing size, two at most in memory, each retried from
 * what the session holds; a failed upload's session is cancelled so that it never completes.
 * Every upload is `ifGenerationMatch=0` (a name is written once).
 */
import type { Readable } from 'node:stream';
import { log } from '../../log';
import type { PutOptions } from '../storage';
import { causeOf, type GcsClient, GcsError, type GcsObject, objectResource, retriable, sleep } from './client';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Every chunk of a resumable upload but the last must be a multiple of this. */
export const GCS_CHUNK_QUANTUM = 256 * KiB;

/**
 * The size of chunk `n` (1-based) of a resumable upload of unknown length. GCS has no limit on
 * the number of chunks; larger chunks only mean fewer requests. Chunks 1-16 are 8 MiB (128 MiB),
 * 17-32 16 MiB (384 MiB in all), then 32 MiB. At most two chunks are held: one being sent, one filling.
 */
export function chunkSizeFor(n: number): number {
  return 8 * MiB * 2 ** Math.min(2, Math.floor((n - 1) / 16));
}

/** The number of bytes a session holds from the `Range: bytes=0-N` header of a 308 (none: 0). */
function persisted(range: string | null): number {
  const m = range === null ? null : /^bytes=0-(\d+)$/.exec(range.trim());
  return m === null ? 0 : Number(m[1]) + 1;
}

/** One resumable upload of one object. */
export class ResumableUpload {
  constructor(
    private readonly client: GcsClient,
    private readonly name: string,
    private readonly chunkSize: (n: number) => number,
  ) {}

  private get display(): string {
    return this.client.display(this.name);
  }

  /** Stream `body` into the object; resolves with the number of bytes stored. */
  public async run(body: Readable, options: PutOptions): Promise<number> {
    const signal = options.signal;
    const session = await this.openSession(options);
    let inflight: Promise<unknown> | undefined;
    let failure: unknown;
    let total = 0;
    try {
      let n = 1;
      let size = this.checkedChunkSize(n);
      let buf = Buffer.allocUnsafe(size);
      let fill = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (failure !== undefined) throw failure;
        signal?.throwIfAborted();
        let rest: Buffer = chunk;
        while (rest.length > 0) {
          const take = Math.min(rest.length, size - fill);
          rest.copy(buf, fill, 0, take);
          fill += take;
          rest = rest.subarray(take);
          if (fill === size) {
            // Chunks of a session go in order: wait for the previous one, then send this one while the next fills.
            if (inflight !== undefined) await inflight;
            if (failure !== undefined) throw failure;
            const p = this.sendChunk(session, buf, total, undefined, signal);
            p.catch((e) => (failure ??= e));
            inflight = p;
            total += size;
            n++;
            size = this.checkedChunkSize(n);
            buf = Buffer.allocUnsafe(size);
            fill = 0;
          }
        }
      }
      if (inflight !== undefined) await inflight;
      if (failure !== undefined) throw failure;
      signal?.throwIfAborted();
      const last = buf.subarray(0, fill);
      total += fill;
      const object = await this.sendChunk(session, last, total - fill, total, signal);
      const stored = Number(object?.size ?? NaN);
      if (stored !== total) {
        throw new GcsError(
          `${this.display} was stored with ${stored} bytes, not the ${total} sent; ` +
            'it has no manifest and is never taken for a backup',
          200,
        );
      }
      return total;
    } catch (err) {
      if (inflight !== undefined) await inflight.catch(() => undefined);
      if (!(err instanceof GcsError && (err.status === 412 || err.status === 200))) await this.cancelSession(session);
      throw err;
    }
  }

  private checkedChunkSize(n: number): number {
    const size = this.chunkSize(n);
    if (size <= 0 || size % GCS_CHUNK_QUANTUM !== 0)
      throw new Error(`chunk size ${size} is not a positive multiple of 256 KiB`);
    return size;
  }

  /** Open a resumable upload session; its URI is a credential for this one upload and is never logged. */
  private async openSession(options: PutOptions): Promise<string> {
    const url = this.client.uploadUrl({ uploadType: 'resumable', name: this.name, ifGenerationMatch: '0' });
    const res = await this.client.send('POST', url, {
      headers: {
        'Content-Type': 'application/json; charset=UTF-8',
        'X-Upload-Content-Type': options.contentType ?? 'application/octet-stream',
      },
      body: JSON.stringify(objectResource(this.name, options)),
      signal: options.signal,
    });
    const location = res.headers.get('location');
    if (!res.ok || location === null) throw await this.client.failure(res, `start the upload of ${this.display}`);
    await res.body?.cancel();
    return location;
  }

  /** Ask a session how much it holds, or for the object when it is complete. */
  private async sessionStatus(
    session: string,
    signal?: AbortSignal,
  ): Promise<{ object?: GcsObject; committed: number }> {
    const res = await this.client.send('PUT', session, { headers: { 'Content-Range': 'bytes */*' }, signal });
    if (res.status === 308) {
      await res.body?.cancel();
      return { committed: persisted(res.headers.get('range')) };
    }
    if (res.ok) return { object: (await res.json()) as GcsObject, committed: -1 };
    throw await this.client.failure(res, `query the upload of ${this.display}`);
  }

  private fewerThanAcknowledged(held: number, acknowledged: number): GcsError {
    return new GcsError(
      `the upload session of ${this.display} holds ${held} bytes, fewer than the ${acknowledged} it had acknowledged`,
      308,
    );
  }

  /**
   * Send `data` (the bytes from `start`) to a session; `total` marks the last chunk. On a network
   * error or 408/429/5xx, ask the session what it holds and send the rest again. Resolves with
   * the object after the last chunk.
   */
  private async sendChunk(
    session: string,
    data: Buffer,
    start: number,
    total: number | undefined,
    signal?: AbortSignal,
  ): Promise<GcsObject | undefined> {
    const client = this.client;
    const delays = client.delays;
    const end = start + data.length;
    let at = start;
    let failures = 0;
    let lastError = '';
    for (;;) {
      signal?.throwIfAborted();
      if (total === undefined && at >= end) return undefined;
      const body = data.subarray(at - start);
      const range = body.length === 0 ? `bytes */${total}` : `bytes ${at}-${end - 1}/${total ?? '*'}`;
      let res: Response | undefined;
      try {
        res = await fetch(session, {
          method: 'PUT',
          headers: await client.headers({ 'Content-Range': range }),
          body,
          signal,
          redirect: 'manual',
        });
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        lastError = `${(e as Error).message}${causeOf(e)}`;
      }
      if (res !== undefined) {
        if (res.ok) {
          const object = (await res.json()) as GcsObject;
          if (total === undefined)
            throw new GcsError(`the upload of ${this.display} completed before its last chunk`, res.status);
          return object;
        }
        if (res.status === 308) {
          await res.body?.cancel();
          const held = persisted(res.headers.get('range'));
          if (held < at) throw this.fewerThanAcknowledged(held, at);
          if (held > at) failures = 0;
          else if (++failures > delays.length)
            throw new GcsError(`the upload of ${this.display} makes no progress at byte ${at}`, 308);
          at = held;
          continue;
        }
        if (res.status === 401) {
          await res.body?.cancel();
          client.credentials.invalidate();
          lastError = 'HTTP 401';
        } else if (!retriable(res.status)) {
          const err = await client.failure(res, `upload ${this.display}`);
          if (res.status === 412)
            throw new GcsError(`${this.display} already exists; the runner never overwrites an object`, 412);
          throw err;
        } else {
          lastError = `HTTP ${res.status}`;
          await res.body?.cancel();
        }
      }
      if (++failures > delays.length)
        throw new GcsError(
          `upload ${this.display}: gave up after ${failures} attempts at byte ${at} (${lastError})`,
          res?.status ?? 0,
        );
      log.warn('a chunk upload to Cloud Storage failed; resuming from what the session holds', {
        object: this.display,
        offset: at,
        error: lastError,
      });
      await sleep(delays[failures - 1]);
      const status = await this.sessionStatus(session, signal);
      if (status.object !== undefined) {
        if (total === undefined)
          throw new GcsError(`the upload of ${this.display} completed before its last chunk`, 200);
        return status.object;
      }
      if (status.committed < start) throw this.fewerThanAcknowledged(status.committed, start);
      at = status.committed;
    }
  }

  /** Cancel a session so that it can never complete (GCS answers 499); retried briefly. */
  private async cancelSession(session: string): Promise<void> {
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        const res = await fetch(session, {
          method: 'DELETE',
          headers: await this.client.headers(),
          signal: AbortSignal.timeout(30_000),
          redirect: 'manual',
        });
        await res.body?.cancel();
        if (res.status === 499 || res.ok || res.status === 404 || res.status === 410) {
          log.info('cancelled the incomplete upload', { object: this.display });
          return;
        }
      } catch {
        // retried below
      }
      await sleep(Math.min(this.client.delays[attempt] ?? 1000, 5000));
    }
    log.error(
      `could not cancel the upload session of ${this.display}; it never becomes an object unless completed, ` +
        'and Cloud Storage drops it after a week',
    );
  }
}
