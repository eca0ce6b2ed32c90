import * as crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { RetentionTier, TIER_TAG_KEY } from '../../../lib/core/model';
import { StorageUrl } from '../../../lib/core/urls';
import { idTime } from '../../../lib/core/ids';
import { log } from '../log';
import { defaultCredentials, TokenSource } from './gcs-auth';
import { joinKey, NotFoundError, ObjectInfo, PutOptions, Storage } from './storage';
import { TIER_FOLDERS } from '../../../lib/core/layout';

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

/** Waits between retries of one request (network error, 408, 429, 5xx), as Google's libraries back off. */
const RETRY_DELAYS_MS: readonly number[] = [500, 1000, 2000, 4000, 8000, 16000];

const TIERS = TIER_FOLDERS;

/** A request to Cloud Storage failed. */
export class GcsError extends Error {
  public readonly name = 'GcsError';
  constructor(
    message: string,
    public readonly status: number,
  ) {
    super(message);
  }
}

/** The API's base URL: `STORAGE_EMULATOR_HOST` (the variable of Google's client libraries for emulators) or Google's. */
export function gcsEndpoint(env: NodeJS.ProcessEnv = process.env): {
  readonly base: string;
  readonly emulator: boolean;
} {
  const host = env.STORAGE_EMULATOR_HOST;
  if (host === undefined || host === '') return { base: 'https://storage.googleapis.com', emulator: false };
  const withScheme = /^https?:\/\//.test(host) ? host : `http://${host}`;
  return { base: withScheme.replace(/\/+$/, '').replace(/\/storage\/v1$/, ''), emulator: true };
}

/** How to reach Cloud Storage; every field defaults from the environment. */
export interface GcsOptions {
  /** @default - `STORAGE_EMULATOR_HOST`, else https://storage.googleapis.com */
  readonly endpoint?: string;
  /** @default - Application Default Credentials (see gcs-auth.ts) */
  readonly credentials?: TokenSource;
  /** The size of chunk `n` of a resumable upload; a multiple of 256 KiB. @default chunkSizeFor */
  readonly chunkSize?: (n: number) => number;
  /** Waits between retries of a failed request. @default - 0.5 s doubling to 16 s, 6 retries */
  readonly retryDelaysMs?: readonly number[];
}

interface GcsObject {
  readonly name: string;
  readonly size?: string;
  readonly generation?: string;
}

interface ListPage {
  readonly items?: GcsObject[];
  readonly prefixes?: string[];
  readonly nextPageToken?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function retriable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** The number of bytes a session holds from the `Range: bytes=0-N` header of a 308 (none: 0). */
function persisted(range: string | null): number {
  const m = range === null ? null : /^bytes=0-(\d+)$/.exec(range.trim());
  return m === null ? 0 : Number(m[1]) + 1;
}

/**
 * `gs://bucket/prefix` over the Cloud Storage JSON API with Node's fetch: streamed resumable
 * uploads (chunks of growing size, two at most in memory, each retried from what the session
 * holds), single-request uploads for small objects, every write with `ifGenerationMatch=0` (a
 * name is written once; the runner's `objectCreator` role could not overwrite it anyway).
 *
 * **Tiers are folders.** GCS lifecycle rules match object names, not metadata, so a backup lives
 * at `<prefix>/<tier>/<backup id>/…` (the tier from `PutOptions.tier`, fixed at backup start) and
 * the bucket's rules expire `<prefix>/<tier>/`. Callers keep using logical keys `<id>/<name>`:
 * this class adds the tier on write and finds it on read (listing the tier folders once per id).
 * A key whose first segment is not a backup id (`wal/…`) maps straight to `<prefix>/<key>`.
 * The tier is also stored as the object metadata `dbbackup-tier`, for people to read.
 */
export class GcsStorage implements Storage {
  private readonly base: string;
  private readonly credentials: TokenSource;
  private readonly chunkSize: (n: number) => number;
  private readonly delays: readonly number[];
  /** Backup id → the tier folder it lives in (null: directly under the prefix). */
  private readonly tierOf = new Map<string, RetentionTier | null>();

  constructor(
    public readonly url: StorageUrl,
    options: GcsOptions = {},
  ) {
    const ep = gcsEndpoint();
    this.base = (options.endpoint ?? ep.base).replace(/\/+$/, '');
    this.credentials =
      options.credentials ??
      defaultCredentials(process.env, { emulator: options.endpoint !== undefined || ep.emulator });
    this.chunkSize = options.chunkSize ?? chunkSizeFor;
    this.delays = options.retryDelaysMs ?? RETRY_DELAYS_MS;
  }

  // ---- names ---------------------------------------------------------------------------

  private get root(): string {
    return this.url.path === '' ? '' : this.url.path + '/';
  }

  private display(name: string): string {
    return `gs://${this.url.bucket}/${name}`;
  }

  /** The backup id a logical key starts with, if it does. */
  private static idOf(key: string): string | undefined {
    const first = key.split('/')[0];
    return idTime(first) !== undefined ? first : undefined;
  }

  /** Where a backup's objects are: its tier folder, null for directly under the prefix, undefined when nowhere. */
  private async resolve(id: string): Promise<RetentionTier | null | undefined> {
    if (this.tierOf.has(id)) return this.tierOf.get(id);
    const places: (RetentionTier | null)[] = [...TIERS, null];
    const found = await Promise.all(
      places.map(async (t) => {
        const page = await this.listPage(`${this.root}${t === null ? '' : t + '/'}${id}/`, undefined, undefined, 1);
        return (page.items?.length ?? 0) > 0 ? t : undefined;
      }),
    );
    const hits = found.filter((t): t is RetentionTier | null => t !== undefined);
    if (hits.length === 0) return undefined;
    let tier = hits[0];
    if (hits.length > 1) {
      // Never written so by the runner; prefer the folder that holds the manifest.
      for (const t of hits) {
        if ((await this.metadata(`${this.root}${t === null ? '' : t + '/'}${id}/manifest.json`)) !== undefined) {
          tier = t;
          break;
        }
      }
      log.warn(
        `backup ${id} has objects in several tier folders of ${this.url.display}; using ${tier ?? 'the untiered folder'}`,
        { folders: hits },
      );
    }
    this.tierOf.set(id, tier);
    return tier;
  }

  /** The object name of a logical key for reading, or undefined when its backup is nowhere. */
  private async nameForRead(key: string): Promise<string | undefined> {
    const id = GcsStorage.idOf(key);
    if (id === undefined) return joinKey(this.url.path, key);
    const tier = await this.resolve(id);
    if (tier === undefined) return undefined;
    return joinKey(this.url.path, tier ?? '', key);
  }

  /** The object name of a logical key for writing: a backup's objects go to its tier folder. */
  private async nameForWrite(key: string, tier: RetentionTier | undefined): Promise<string> {
    const id = GcsStorage.idOf(key);
    if (id === undefined) return joinKey(this.url.path, key);
    const known = this.tierOf.has(id) ? this.tierOf.get(id) : tier === undefined ? await this.resolve(id) : undefined;
    if (tier === undefined) {
      if (known === undefined || known === null) {
        throw new Error(
          `${this.url.display}/${key}: a backup's objects on gs:// need a retention tier (the lifecycle rules match <prefix>/<tier>/); none was given`,
        );
      }
      return joinKey(this.url.path, known, key);
    }
    if (known !== undefined && known !== tier) {
      throw new Error(
        `${this.url.display}/${key}: backup ${id} is already stored under ${known ?? 'the untiered folder'}, not ${tier}; a backup keeps one tier`,
      );
    }
    this.tierOf.set(id, tier);
    return joinKey(this.url.path, tier, key);
  }

  /** The logical key of an object name under the prefix. */
  private logical(name: string): string {
    const rest = name.slice(this.root.length);
    const segs = rest.split('/');
    if (segs.length > 1 && (TIERS as readonly string[]).includes(segs[0]) && idTime(segs[1]) !== undefined) {
      this.tierOf.set(segs[1], segs[0] as RetentionTier);
      return segs.slice(1).join('/');
    }
    return rest;
  }

  // ---- HTTP ----------------------------------------------------------------------------

  private objectUrl(name: string, query: Record<string, string> = {}): string {
    const q = new URLSearchParams(query).toString();
    return `${this.base}/storage/v1/b/${encodeURIComponent(this.url.bucket)}/o/${encodeURIComponent(name)}${q ? `?${q}` : ''}`;
  }

  private async headers(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    const token = await this.credentials.token();
    return token === undefined ? extra : { ...extra, Authorization: `Bearer ${token}` };
  }

  /**
   * One request with retries on network errors and 408/429/5xx (for requests safe to repeat)
   * and one fresh token on 401. Returns the final response whatever its status.
   */
  private async send(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Buffer | string; signal?: AbortSignal; retry?: boolean } = {},
  ): Promise<Response> {
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      init.signal?.throwIfAborted();
      let res: Response | undefined;
      let error: unknown;
      try {
        res = await fetch(url, {
          method,
          headers: await this.headers(init.headers),
          body: init.body,
          signal: init.signal,
          redirect: 'manual',
        });
      } catch (e) {
        if (init.signal?.aborted) throw init.signal.reason;
        error = e;
      }
      if (res?.status === 401 && !refreshed) {
        await res.body?.cancel();
        this.credentials.invalidate();
        refreshed = true;
        attempt--;
        continue;
      }
      const again = res === undefined || retriable(res.status);
      if (!again || init.retry === false || attempt >= this.delays.length) {
        if (res !== undefined) return res;
        throw new GcsError(
          `${method} ${this.describeUrl(url)} failed: ${(error as Error).message}${causeOf(error)}`,
          0,
        );
      }
      await res?.body?.cancel();
      log.debug('Cloud Storage request failed; retrying', {
        method,
        status: res?.status,
        error: (error as Error | undefined)?.message,
      });
      await sleep(this.delays[attempt]);
    }
  }

  /** A URL for messages: the API path without the query (a session URI's upload_id is a credential). */
  private describeUrl(url: string): string {
    return url.split('?')[0];
  }

  /** The error for a response that is not what was asked for. */
  private async failure(res: Response, what: string): Promise<GcsError> {
    let detail = '';
    try {
      const text = await res.text();
      try {
        detail = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text.slice(0, 300);
      } catch {
        detail = text.slice(0, 300);
      }
    } catch {
      // no body
    }
    let hint = '';
    if (res.status === 401 || res.status === 403) {
      hint = ` (credentials: ${this.credentials.description}). The runner's service account needs roles/storage.objectCreator and roles/storage.objectViewer on gs://${this.url.bucket}.`;
    } else if (res.status === 404 && /bucket/i.test(detail)) {
      hint = ` Check the bucket name in ${this.url.display}.`;
    }
    return new GcsError(`${what}: HTTP ${res.status}${detail ? ` ${detail}` : ''}${hint}`, res.status);
  }

  private async metadata(name: string): Promise<GcsObject | undefined> {
    const res = await this.send('GET', this.objectUrl(name, { fields: 'name,size,generation' }));
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) throw await this.failure(res, `stat ${this.display(name)}`);
    return (await res.json()) as GcsObject;
  }

  private async listPage(
    prefix: string,
    delimiter: string | undefined,
    pageToken: string | undefined,
    maxResults?: number,
  ): Promise<ListPage> {
    const q: Record<string, string> = { prefix, fields: 'items(name,size),prefixes,nextPageToken' };
    if (delimiter !== undefined) q.delimiter = delimiter;
    if (pageToken !== undefined) q.pageToken = pageToken;
    if (maxResults !== undefined) q.maxResults = String(maxResults);
    const url = `${this.base}/storage/v1/b/${encodeURIComponent(this.url.bucket)}/o?${new URLSearchParams(q).toString()}`;
    const res = await this.send('GET', url);
    if (!res.ok) throw await this.failure(res, `list ${this.display(prefix)}`);
    return (await res.json()) as ListPage;
  }

  private async listAll(prefix: string, delimiter?: string): Promise<{ items: GcsObject[]; prefixes: string[] }> {
    const items: GcsObject[] = [];
    const prefixes: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.listPage(prefix, delimiter, token);
      items.push(...(page.items ?? []));
      prefixes.push(...(page.prefixes ?? []));
      token = page.nextPageToken;
    } while (token !== undefined && token !== '');
    return { items, prefixes };
  }

  // ---- writes --------------------------------------------------------------------------

  private resource(name: string, options: PutOptions): Record<string, unknown> {
    return {
      name,
      contentType: options.contentType ?? 'application/octet-stream',
      ...(options.tier !== undefined ? { metadata: { [TIER_TAG_KEY]: options.tier } } : {}),
    };
  }

  /** Open a resumable upload session; its URI is a credential for this one upload and is never logged. */
  private async openSession(name: string, options: PutOptions): Promise<string> {
    const q = new URLSearchParams({ uploadType: 'resumable', name, ifGenerationMatch: '0' }).toString();
    const res = await this.send(
      'POST',
      `${this.base}/upload/storage/v1/b/${encodeURIComponent(this.url.bucket)}/o?${q}`,
      {
        headers: {
          'Content-Type': 'application/json; charset=UTF-8',
          'X-Upload-Content-Type': options.contentType ?? 'application/octet-stream',
        },
        body: JSON.stringify(this.resource(name, options)),
        signal: options.signal,
      },
    );
    const location = res.headers.get('location');
    if (!res.ok || location === null) throw await this.failure(res, `start the upload of ${this.display(name)}`);
    await res.body?.cancel();
    return location;
  }

  /** Ask a session how much it holds, or for the object when it is complete. */
  private async sessionStatus(
    session: string,
    name: string,
    signal?: AbortSignal,
  ): Promise<{ object?: GcsObject; committed: number }> {
    const res = await this.send('PUT', session, { headers: { 'Content-Range': 'bytes */*' }, signal });
    if (res.status === 308) {
      await res.body?.cancel();
      return { committed: persisted(res.headers.get('range')) };
    }
    if (res.ok) return { object: (await res.json()) as GcsObject, committed: -1 };
    throw await this.failure(res, `query the upload of ${this.display(name)}`);
  }

  /**
   * Send `data` (the bytes from `start`) to a session; `total` marks the last chunk. On a network
   * error or 408/429/5xx, ask the session what it holds and send the rest again. Resolves with
   * the object after the last chunk.
   */
  private async sendChunk(
    session: string,
    name: string,
    data: Buffer,
    start: number,
    total: number | undefined,
    signal?: AbortSignal,
  ): Promise<GcsObject | undefined> {
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
          headers: await this.headers({ 'Content-Range': range }),
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
            throw new GcsError(`the upload of ${this.display(name)} completed before its last chunk`, res.status);
          return object;
        }
        if (res.status === 308) {
          await res.body?.cancel();
          const held = persisted(res.headers.get('range'));
          if (held < at)
            throw new GcsError(
              `the upload session of ${this.display(name)} holds ${held} bytes, fewer than the ${at} it had acknowledged`,
              308,
            );
          if (held > at) failures = 0;
          else if (++failures > this.delays.length)
            throw new GcsError(`the upload of ${this.display(name)} makes no progress at byte ${at}`, 308);
          at = held;
          continue;
        }
        if (res.status === 401) {
          await res.body?.cancel();
          this.credentials.invalidate();
          lastError = 'HTTP 401';
        } else if (!retriable(res.status)) {
          const err = await this.failure(res, `upload ${this.display(name)}`);
          if (res.status === 412)
            throw new GcsError(`${this.display(name)} already exists; the runner never overwrites an object`, 412);
          throw err;
        } else {
          lastError = `HTTP ${res.status}`;
          await res.body?.cancel();
        }
      }
      if (++failures > this.delays.length)
        throw new GcsError(
          `upload ${this.display(name)}: gave up after ${failures} attempts at byte ${at} (${lastError})`,
          res?.status ?? 0,
        );
      log.warn('a chunk upload to Cloud Storage failed; resuming from what the session holds', {
        object: this.display(name),
        offset: at,
        error: lastError,
      });
      await sleep(this.delays[failures - 1]);
      const status = await this.sessionStatus(session, name, signal);
      if (status.object !== undefined) {
        if (total === undefined)
          throw new GcsError(`the upload of ${this.display(name)} completed before its last chunk`, 200);
        return status.object;
      }
      if (status.committed < start)
        throw new GcsError(
          `the upload session of ${this.display(name)} holds ${status.committed} bytes, fewer than the ${start} it had acknowledged`,
          308,
        );
      at = status.committed;
    }
  }

  /** Cancel a session so that it can never complete (GCS answers 499); retried briefly. */
  private async cancelSession(session: string, name: string): Promise<void> {
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        const res = await fetch(session, {
          method: 'DELETE',
          headers: await this.headers(),
          signal: AbortSignal.timeout(30_000),
          redirect: 'manual',
        });
        await res.body?.cancel();
        if (res.status === 499 || res.ok || res.status === 404 || res.status === 410) {
          log.info('cancelled the incomplete upload', { object: this.display(name) });
          return;
        }
      } catch {
        // retried below
      }
      await sleep(Math.min(this.delays[attempt] ?? 1000, 5000));
    }
    log.error(
      `could not cancel the upload session of ${this.display(name)}; it never becomes an object unless completed, and Cloud Storage drops it after a week`,
    );
  }

  public async upload(key: string, body: Readable, options: PutOptions = {}): Promise<number> {
    const name = await this.nameForWrite(key, options.tier);
    const signal = options.signal;
    const session = await this.openSession(name, options);
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
            const p = this.sendChunk(session, name, buf, total, undefined, signal);
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
      const object = await this.sendChunk(session, name, last, total - fill, total, signal);
      const stored = Number(object?.size ?? NaN);
      if (stored !== total) {
        throw new GcsError(
          `${this.display(name)} was stored with ${stored} bytes, not the ${total} sent; it has no manifest and is never taken for a backup`,
          200,
        );
      }
      return total;
    } catch (err) {
      if (inflight !== undefined) await inflight.catch(() => undefined);
      if (!(err instanceof GcsError && (err.status === 412 || err.status === 200)))
        await this.cancelSession(session, name);
      throw err;
    }
  }

  private checkedChunkSize(n: number): number {
    const size = this.chunkSize(n);
    if (size <= 0 || size % GCS_CHUNK_QUANTUM !== 0)
      throw new Error(`chunk size ${size} is not a positive multiple of 256 KiB`);
    return size;
  }

  public async putBytes(key: string, data: Buffer, options: PutOptions = {}): Promise<void> {
    const name = await this.nameForWrite(key, options.tier);
    const boundary = `dbbackup-${crypto.randomBytes(16).toString('hex')}`;
    const body = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${JSON.stringify(this.resource(name, options))}\r\n`,
      ),
      Buffer.from(`--${boundary}\r\nContent-Type: ${options.contentType ?? 'application/octet-stream'}\r\n\r\n`),
      data,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const q = new URLSearchParams({ uploadType: 'multipart', ifGenerationMatch: '0' }).toString();
    const res = await this.send(
      'POST',
      `${this.base}/upload/storage/v1/b/${encodeURIComponent(this.url.bucket)}/o?${q}`,
      {
        headers: { 'Content-Type': `multipart/related; boundary=${boundary}` },
        body,
        signal: options.signal,
      },
    );
    if (res.ok) {
      await res.body?.cancel();
      return;
    }
    if (res.status === 412) {
      await res.body?.cancel();
      // The same bytes already there (a repeated request whose first answer was lost) are success.
      const existing = await this.readName(name, key).then((s) => collect(s));
      if (existing.equals(data)) return;
      throw new GcsError(
        `${this.display(name)} already exists with other content; the runner never overwrites an object`,
        412,
      );
    }
    throw await this.failure(res, `upload ${this.display(name)}`);
  }

  // ---- reads ---------------------------------------------------------------------------

  private async readName(name: string, key: string): Promise<Readable> {
    const url = this.objectUrl(name, { alt: 'media' });
    const first = await this.send('GET', url);
    if (first.status === 404) {
      await first.body?.cancel();
      throw new NotFoundError(`${this.url.display}/${key} does not exist`);
    }
    if (!first.ok || first.body === null) throw await this.failure(first, `read ${this.display(name)}`);
    const generation = first.headers.get('x-goog-generation');
    const delays = this.delays;
    const again = (offset: number) => {
      const q: Record<string, string> = { alt: 'media' };
      if (generation !== null) q.ifGenerationMatch = generation;
      return this.send('GET', this.objectUrl(name, q), { headers: { Range: `bytes=${offset}-` } });
    };
    const display = this.display(name);
    // A read broken by the network resumes at the byte it reached, from the same generation.
    async function* chunks(): AsyncGenerator<Buffer> {
      let res = first;
      let got = 0;
      let failures = 0;
      for (;;) {
        try {
          for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
            got += c.length;
            failures = 0;
            yield Buffer.from(c.buffer, c.byteOffset, c.byteLength);
          }
          return;
        } catch (e) {
          if (++failures > delays.length) throw e;
          log.warn('reading from Cloud Storage broke off; resuming', {
            object: display,
            offset: got,
            error: (e as Error).message,
          });
          await sleep(delays[failures - 1]);
          res = await again(got);
          if (res.status !== 206 || res.body === null) {
            await res.body?.cancel();
            throw new GcsError(`could not resume reading ${display} at byte ${got}: HTTP ${res.status}`, res.status);
          }
        }
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  public async read(key: string): Promise<Readable> {
    const name = await this.nameForRead(key);
    if (name === undefined) throw new NotFoundError(`${this.url.display}/${key} does not exist`);
    return this.readName(name, key);
  }

  public async readBytes(key: string): Promise<Buffer> {
    return collect(await this.read(key));
  }

  public async stat(key: string): Promise<ObjectInfo | undefined> {
    const name = await this.nameForRead(key);
    if (name === undefined) return undefined;
    const m = await this.metadata(name);
    return m === undefined ? undefined : { key, size: Number(m.size ?? 0) };
  }

  public async listFolders(prefix: string): Promise<string[]> {
    if (prefix === '') {
      // The top level is the union of the tier folders' backups and any untiered folder (wal/).
      const [top, ...tiers] = await Promise.all(
        [this.root, ...TIERS.map((t) => `${this.root}${t}/`)].map((p) => this.listAll(p, '/')),
      );
      const out = new Set<string>();
      for (const p of top.prefixes) {
        const f = p.slice(this.root.length).replace(/\/$/, '');
        if (!(TIERS as readonly string[]).includes(f)) out.add(f);
      }
      tiers.forEach((page, i) => {
        for (const p of page.prefixes) {
          const id = p.slice(`${this.root}${TIERS[i]}/`.length).replace(/\/$/, '');
          if (idTime(id) === undefined) continue;
          if (!this.tierOf.has(id)) this.tierOf.set(id, TIERS[i]);
          out.add(id);
        }
      });
      return [...out].sort();
    }
    const name = await this.nameForRead(prefix);
    if (name === undefined) return [];
    const { prefixes } = await this.listAll(name + '/', '/');
    return prefixes.map((p) => p.slice(name.length + 1).replace(/\/$/, '')).sort();
  }

  public async list(prefix: string): Promise<ObjectInfo[]> {
    const name = prefix === '' ? '' : await this.nameForRead(prefix);
    if (name === undefined) return [];
    const { items } = await this.listAll(name === '' ? this.root : name + '/');
    return items
      .map((o) => ({ key: this.logical(o.name), size: Number(o.size ?? 0) }))
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  public async discardIncomplete(prefix: string): Promise<void> {
    const left = await this.list(prefix);
    if (left.length > 0) {
      log.warn(
        `${left.length} object(s) of the failed backup stay under ${prefix}/ without a manifest (never taken for a backup); the runner cannot delete on gs://, the bucket's lifecycle rules expire them`,
        { objects: left.map((o) => o.key) },
      );
    }
  }

  public async removeFolder(): Promise<void> {
    throw new Error('the runner never deletes from Cloud Storage; the bucket lifecycle rules expire backups');
  }
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** undici hides the reason of a network error in `cause`. */
function causeOf(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } })?.cause;
  return c === undefined ? '' : ` (${c.code ?? c.message ?? ''})`;
}
