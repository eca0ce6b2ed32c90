/**
 * The Cloud Storage JSON API over Node's fetch: the endpoint, the request URLs of one bucket,
 * one request with its retries and token refresh, and the error a failed answer becomes.
 */
import { TIER_TAG_KEY } from '../../../../lib/core/model';
import type { StorageUrl } from '../../../../lib/core/urls';
import { log } from '../../log';
import type { TokenSource } from '../gcs-auth';
import type { PutOptions } from '../storage';

/** Waits between retries of one request (network error, 408, 429, 5xx), as Google's libraries back off. */
export const RETRY_DELAYS_MS: readonly number[] = [500, 1000, 2000, 4000, 8000, 16000];

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

/** The API's base URL: `STORAGE_EMULATOR_HOST` (Google's client libraries' variable for emulators) or Google's. */
export function gcsEndpoint(env: NodeJS.ProcessEnv = process.env): {
  readonly base: string;
  readonly emulator: boolean;
} {
  const host = env.STORAGE_EMULATOR_HOST;
  if (host === undefined || host === '') return { base: 'https://storage.googleapis.com', emulator: false };
  const withScheme = /^https?:\/\//.test(host) ? host : `http://${host}`;
  return { base: withScheme.replace(/\/+$/, '').replace(/\/storage\/v1$/, ''), emulator: true };
}

/** An object's metadata, the fields the runner asks for. */
export interface GcsObject {
  readonly name: string;
  readonly size?: string;
  readonly generation?: string;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a request that got this status may be sent again. */
export function retriable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** undici hides the reason of a network error in `cause`. */
export function causeOf(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } })?.cause;
  return c === undefined ? '' : ` (${c.code ?? c.message ?? ''})`;
}

/** The resource (metadata) of an object written with these options. */
export function objectResource(name: string, options: PutOptions): Record<string, unknown> {
  return {
    name,
    contentType: options.contentType ?? 'application/octet-stream',
    ...(options.tier !== undefined ? { metadata: { [TIER_TAG_KEY]: options.tier } } : {}),
  };
}

/** Requests to one bucket of the JSON API. */
export class GcsClient {
  constructor(
    /** The API's base URL, without a trailing slash. */
    public readonly base: string,
    public readonly url: StorageUrl,
    public readonly credentials: TokenSource,
    /** Waits between retries of a failed request. */
    public readonly delays: readonly number[],
  ) {}

  /** An object name for messages: `gs://bucket/name`. */
  public display(name: string): string {
    return `gs://${this.url.bucket}/${name}`;
  }

  private get bucketPath(): string {
    return `/storage/v1/b/${encodeURIComponent(this.url.bucket)}/o`;
  }

  /** The URL of one object. */
  public objectUrl(name: string, query: Record<string, string> = {}): string {
    const q = new URLSearchParams(query).toString();
    return `${this.base}${this.bucketPath}/${encodeURIComponent(name)}${q ? `?${q}` : ''}`;
  }

  /** The URL that lists the bucket's objects. */
  public listUrl(query: Record<string, string>): string {
    return `${this.base}${this.bucketPath}?${new URLSearchParams(query).toString()}`;
  }

  /** The URL that uploads an object (resumable or multipart). */
  public uploadUrl(query: Record<string, string>): string {
    return `${this.base}/upload${this.bucketPath}?${new URLSearchParams(query).toString()}`;
  }

  public async headers(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    const token = await this.credentials.token();
    return token === undefined ? extra : { ...extra, Authorization: `Bearer ${token}` };
  }

  /**
   * One request with retries on network errors and 408/429/5xx (for requests safe to repeat)
   * and one fresh token on 401. Returns the final response whatever its status.
   */
  public async send(
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
        throw new GcsError(`${method} ${describeUrl(url)} failed: ${(error as Error).message}${causeOf(error)}`, 0);
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

  /** The error for a response that is not what was asked for. */
  public async failure(res: Response, what: string): Promise<GcsError> {
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
      hint =
        ` (credentials: ${this.credentials.description}). The runner's service account needs ` +
        `roles/storage.objectCreator and roles/storage.objectViewer on gs://${this.url.bucket}.`;
    } else if (res.status === 404 && /bucket/i.test(detail)) {
      hint = ` Check the bucket name in ${this.url.display}.`;
    }
    return new GcsError(`${what}: HTTP ${res.status}${detail ? ` ${detail}` : ''}${hint}`, res.status);
  }
}

/** A URL for messages: the API path without the query (a session URI's upload_id is a credential). */
function describeUrl(url: string): string {
  return url.split('?')[0];
}
