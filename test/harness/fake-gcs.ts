import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';

/**
 * OUR OWN fake of the Cloud Storage JSON API: a small in-process HTTP server implementing
 * exactly the subset the runner's gs:// backend uses, so that backend can be tested here, where
 * no real GCS-protocol server can run. It is not Google's service and proves nothing about it
 * beyond this subset: real IAM and auth, retention locks, CMEK, lifecycle rules, and resumable
 * semantics outside what is written below are as documented by Google, not observed.
 *
 * The subset:
 * - resumable uploads: `POST /upload/storage/v1/b/B/o?uploadType=resumable&name=N&ifGenerationMatch=0`
 *   → 200 with a session URI in `Location`; `PUT` to it with `Content-Range: bytes a-b/*` (a must be
 *   what the session holds, non-final chunks a multiple of 256 KiB) → 308 with `Range: bytes=0-n`;
 *   the last chunk `bytes a-b/T` or `bytes *∕T` → 200 and the object; `bytes *∕*` asks the status
 *   (308, or 200 once complete); `DELETE` cancels (499), later requests get 410. The precondition
 *   is checked when the upload completes (412 if the name exists), as GCS does.
 * - single-request uploads: `POST …?uploadType=multipart` (multipart/related: JSON resource, data).
 * - `GET /storage/v1/b/B/o?prefix&delimiter&pageToken&maxResults` (pages of `pageSize`).
 * - `GET /storage/v1/b/B/o/NAME` (resource) and `?alt=media` (bytes, `Range: bytes=N-` → 206,
 *   `ifGenerationMatch`, `x-goog-generation`).
 * - `DELETE /storage/v1/b/B/o/NAME` → 403, as for a service account with objectCreator and
 *   objectViewer only (recorded, so a test can assert the runner never tries).
 * - a token endpoint (`POST /token`: the JWT bearer grant, checked against a service account's
 *   public key, and the refresh-token grant) and the metadata server's token
 *   (`GET /computeMetadata/v1/instance/service-accounts/default/token`, `Metadata-Flavor: Google`).
 * - faults (`inject`): answer a chunk, multipart upload or media read with a status, or drop the
 *   connection, after persisting none, half (whole 256 KiB units) or all of the request.
 */

const QUANTUM = 256 * 1024;

export interface FakeObject {
  readonly name: string;
  /** Mutable on purpose: a test may flip a byte to play a damaged object. */
  data: Buffer;
  readonly generation: number;
  readonly contentType: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface RecordedRequest {
  readonly method: string;
  /** `upload`, `session`, `list`, `object`, `media`, `token`, `metadata`. */
  readonly kind: string;
  readonly bucket?: string;
  readonly name?: string;
  readonly contentRange?: string;
  readonly authorized: boolean;
  status: number;
}

/** A fault for the next matching requests. */
export interface Fault {
  /**
   * `chunk`: a session PUT carrying data or completing it; `multipart`: a single-request upload; `media`: an object
   * read.
   */
  readonly on: 'chunk' | 'multipart' | 'media';
  /** Let this many matching requests through first. @default 0 */
  readonly skip?: number;
  /** How many requests fail. @default 1 */
  readonly times?: number;
  /** Answer with this status (ignored with `drop`). @default 503 */
  readonly status?: number;
  /** Close the connection without an answer (media: after sending half the bytes). */
  readonly drop?: boolean;
  /** What of the request is kept first: none, half (whole 256 KiB units), or all (a lost answer). @default 'none' */
  readonly persist?: 'none' | 'half' | 'all';
}

export interface FakeGcsOptions {
  readonly buckets: readonly string[];
  /** Require `Authorization: Bearer` with this token or one the fake issued. @default - no auth */
  readonly token?: string;
  /** List page size, small to exercise pagination. @default 1000 */
  readonly pageSize?: number;
  /** Public key (PEM) of the service account whose JWTs the token endpoint accepts. */
  readonly serviceAccountPublicKey?: string;
  /** The refresh-token grant's accepted credentials. */
  readonly authorizedUser?: { readonly clientId: string; readonly clientSecret: string; readonly refreshToken: string };
  /** `expires_in` of issued tokens. @default 3600 */
  readonly tokenLifetimeSeconds?: number;
}

interface Session {
  readonly id: string;
  readonly bucket: string;
  readonly name: string;
  readonly contentType: string;
  readonly metadata?: Record<string, string>;
  readonly ifGenerationMatch?: string;
  parts: Buffer[];
  size: number;
  state: 'open' | 'done' | 'cancelled';
  object?: FakeObject;
}

export interface FakeGcs {
  readonly endpoint: string;
  /** The objects of a bucket by name. */
  bucket(name: string): Map<string, FakeObject>;
  readonly requests: RecordedRequest[];
  /** Sessions by id, to check none was left open or completed unexpectedly. */
  readonly sessions: ReadonlyMap<string, Readonly<Session>>;
  /** Tokens issued by the token endpoint and the metadata server. */
  readonly issued: string[];
  /** The claims of every JWT the token endpoint accepted. */
  readonly grants: Record<string, unknown>[];
  inject(fault: Fault): void;
  clearFaults(): void;
  stop(): Promise<void>;
}

function gcsError(res: http.ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
  const body = JSON.stringify({
    error: { code: status, message, errors: [{ message, reason: extra.reason ?? 'fake' }] },
  });
  res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', ...extra });
  res.end(body);
}

function resource(bucket: string, o: FakeObject): Record<string, unknown> {
  return {
    kind: 'storage#object',
    bucket,
    name: o.name,
    size: String(o.data.length),
    generation: String(o.generation),
    contentType: o.contentType,
    md5Hash: crypto.createHash('md5').update(o.data).digest('base64'),
    ...(o.metadata !== undefined ? { metadata: o.metadata } : {}),
  };
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function verifyJwt(assertion: string, publicKey: string): Record<string, unknown> | undefined {
  const [h, p, s] = assertion.split('.');
  if (s === undefined) return undefined;
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: string };
  if (header.alg !== 'RS256') return undefined;
  const ok = crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s, 'base64url'));
  return ok ? (JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>) : undefined;
}

/** Start the fake on a free loopback port. */
export async function startFakeGcs(options: FakeGcsOptions): Promise<FakeGcs> {
  const buckets = new Map<string, Map<string, FakeObject>>(options.buckets.map((b) => [b, new Map()]));
  const sessions = new Map<string, Session>();
  const requests: RecordedRequest[] = [];
  const issued: string[] = [];
  const grants: Record<string, unknown>[] = [];
  let faults: { fault: Fault; skip: number; times: number }[] = [];
  let generation = 1_700_000_000_000_000;
  let endpoint = '';

  const takeFault = (on: Fault['on']): Fault | undefined => {
    for (const f of faults) {
      if (f.fault.on !== on || f.times <= 0) continue;
      if (f.skip > 0) {
        f.skip--;
        return undefined;
      }
      f.times--;
      return f.fault;
    }
    return undefined;
  };

  const issue = (res: http.ServerResponse): void => {
    const token = `fake-token-${crypto.randomBytes(8).toString('hex')}`;
    issued.push(token);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify({ access_token: token, expires_in: options.tokenLifetimeSeconds ?? 3600, token_type: 'Bearer' }),
    );
  };

  const store = (
    bucket: string,
    name: string,
    data: Buffer,
    contentType: string,
    metadata: Record<string, string> | undefined,
  ): FakeObject => {
    const o: FakeObject = { name, data, generation: ++generation, contentType, metadata };
    buckets.get(bucket)!.set(name, o);
    return o;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, rec: RecordedRequest): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const q = url.searchParams;
    const rawPath = (req.url ?? '/').split('?')[0];
    const segs = rawPath.split('/').filter((s) => s !== '');
    const body = await readBody(req);

    if (req.method === 'POST' && rawPath === '/token') {
      (rec as { kind: string }).kind = 'token';
      const form = new URLSearchParams(body.toString('utf8'));
      if (
        form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer' &&
        options.serviceAccountPublicKey !== undefined
      ) {
        const claims = verifyJwt(form.get('assertion') ?? '', options.serviceAccountPublicKey);
        const now = Date.now() / 1000;
        if (
          claims === undefined ||
          claims.aud !== `${endpoint}/token` ||
          typeof claims.scope !== 'string' ||
          Number(claims.exp) < now ||
          Number(claims.iat) > now + 60
        ) {
          res.writeHead(400, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }));
          return;
        }
        grants.push(claims);
        return issue(res);
      }
      const u = options.authorizedUser;
      if (
        form.get('grant_type') === 'refresh_token' &&
        u !== undefined &&
        form.get('client_id') === u.clientId &&
        form.get('client_secret') === u.clientSecret &&
        form.get('refresh_token') === u.refreshToken
      ) {
        return issue(res);
      }
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_grant', error_description: 'Bad Request' }));
      return;
    }
    if (req.method === 'GET' && rawPath === '/computeMetadata/v1/instance/service-accounts/default/token') {
      (rec as { kind: string }).kind = 'metadata';
      if (req.headers['metadata-flavor'] !== 'Google') {
        res.writeHead(403);
        res.end('Missing Metadata-Flavor:Google header.');
        return;
      }
      return issue(res);
    }

    // Resumable session URIs carry their own authority (Google does not ask for a token there).
    const isSession = segs[0] === 'upload' && q.has('upload_id');
    if (!isSession && options.token !== undefined && !rec.authorized) {
      return gcsError(res, 401, 'Anonymous caller does not have storage.objects.get access, or the token is invalid.', {
        'WWW-Authenticate': 'Bearer realm="https://accounts.google.com/"',
      });
    }

    if (isSession) {
      (rec as { kind: string }).kind = 'session';
      const s = sessions.get(q.get('upload_id')!);
      if (s === undefined) return gcsError(res, 404, 'No such upload session.');
      (rec as { name?: string }).name = s.name;
      if (req.method === 'DELETE') {
        if (s.state === 'open') s.state = 'cancelled';
        res.writeHead(499);
        res.end();
        return;
      }
      if (req.method !== 'PUT') return gcsError(res, 405, 'Method not allowed on a session URI.');
      if (s.state === 'cancelled') return gcsError(res, 410, 'The upload session was cancelled.');
      const range = req.headers['content-range'] ?? '';
      (rec as { contentRange?: string }).contentRange = range;
      const incomplete = () => {
        res.writeHead(308, s.size > 0 ? { Range: `bytes=0-${s.size - 1}` } : {});
        res.end();
      };
      const complete = () => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(resource(s.bucket, s.object!)));
      };
      if (range === 'bytes */*') return s.state === 'done' ? complete() : incomplete();
      if (s.state === 'done') return complete();
      const m = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(range);
      if (m === null) return gcsError(res, 400, `Bad Content-Range '${range}'.`);
      const first = m[1] === undefined ? undefined : Number(m[1]);
      const last = m[2] === undefined ? undefined : Number(m[2]);
      const total = m[3] === '*' ? undefined : Number(m[3]);
      if (first === undefined && body.length > 0) return gcsError(res, 400, 'Content-Range bytes */N with a body.');
      if (first !== undefined) {
        if (first !== s.size)
          return gcsError(res, 400, `The chunk starts at ${first}, but the session holds ${s.size} bytes.`);
        if (body.length !== last! - first + 1)
          return gcsError(
            res,
            400,
            `The chunk has ${body.length} bytes, but its Content-Range says ${last! - first + 1}.`,
          );
        if (total === undefined && body.length % QUANTUM !== 0)
          return gcsError(res, 400, `A non-final chunk of ${body.length} bytes is not a multiple of 256 KiB.`);
      }
      const fault = takeFault('chunk');
      const keep =
        fault === undefined || fault.persist === 'all'
          ? body.length
          : fault.persist === 'half'
            ? Math.floor(body.length / 2 / QUANTUM) * QUANTUM
            : 0;
      if (keep > 0) {
        s.parts.push(body.subarray(0, keep));
        s.size += keep;
      }
      const finishing = total !== undefined && (fault === undefined || fault.persist === 'all');
      if (finishing) {
        if (s.size !== total)
          return gcsError(res, 400, `The upload ends at ${total} bytes, but the session holds ${s.size}.`);
        const objects = buckets.get(s.bucket)!;
        if (s.ifGenerationMatch !== undefined && String(objects.get(s.name)?.generation ?? 0) !== s.ifGenerationMatch) {
          s.state = 'cancelled';
          return gcsError(res, 412, 'At least one of the pre-conditions you specified did not hold.', {
            reason: 'conditionNotMet',
          });
        }
        s.object = store(s.bucket, s.name, Buffer.concat(s.parts), s.contentType, s.metadata);
        s.parts = [];
        s.state = 'done';
      }
      if (fault !== undefined) {
        if (fault.drop) {
          res.socket?.destroy();
          return;
        }
        if (fault.persist !== 'all') return gcsError(res, fault.status ?? 503, 'Injected fault.');
      }
      return s.state === 'done' ? complete() : incomplete();
    }

    if (
      segs[0] === 'upload' &&
      segs[1] === 'storage' &&
      segs[2] === 'v1' &&
      segs[3] === 'b' &&
      segs[5] === 'o' &&
      segs.length === 6 &&
      req.method === 'POST'
    ) {
      (rec as { kind: string }).kind = 'upload';
      const bucket = decodeURIComponent(segs[4]);
      (rec as { bucket?: string }).bucket = bucket;
      const objects = buckets.get(bucket);
      if (objects === undefined) return gcsError(res, 404, 'The specified bucket does not exist.');
      const type = q.get('uploadType');
      if (type === 'resumable') {
        const meta = JSON.parse(body.toString('utf8') || '{}') as {
          name?: string;
          contentType?: string;
          metadata?: Record<string, string>;
        };
        const name = q.get('name') ?? meta.name;
        if (name === undefined || name === '') return gcsError(res, 400, 'Required object name.');
        (rec as { name?: string }).name = name;
        const id = crypto.randomBytes(12).toString('hex');
        sessions.set(id, {
          id,
          bucket,
          name,
          contentType:
            meta.contentType ?? req.headers['x-upload-content-type']?.toString() ?? 'application/octet-stream',
          metadata: meta.metadata,
          ifGenerationMatch: q.get('ifGenerationMatch') ?? undefined,
          parts: [],
          size: 0,
          state: 'open',
        });
        res.writeHead(200, {
          Location:
            `${endpoint}/upload/storage/v1/b/` + `${encodeURIComponent(bucket)}/o?uploadType=resumable&upload_id=${id}`,
        });
        res.end();
        return;
      }
      if (type === 'multipart') {
        const boundary = /boundary=("?)([^";]+)\1/.exec(req.headers['content-type'] ?? '')?.[2];
        if (boundary === undefined) return gcsError(res, 400, 'multipart/related without a boundary.');
        const parts = splitMultipart(body, boundary);
        if (parts.length !== 2) return gcsError(res, 400, `multipart/related with ${parts.length} parts, not 2.`);
        const meta = JSON.parse(parts[0].body.toString('utf8')) as {
          name?: string;
          contentType?: string;
          metadata?: Record<string, string>;
        };
        const name = q.get('name') ?? meta.name;
        if (name === undefined || name === '') return gcsError(res, 400, 'Required object name.');
        (rec as { name?: string }).name = name;
        const fault = takeFault('multipart');
        if (fault !== undefined && fault.persist !== 'all') {
          if (fault.drop) return void res.socket?.destroy();
          return gcsError(res, fault.status ?? 503, 'Injected fault.');
        }
        const precondition = q.get('ifGenerationMatch');
        if (precondition !== null && String(objects.get(name)?.generation ?? 0) !== precondition) {
          return gcsError(res, 412, 'At least one of the pre-conditions you specified did not hold.', {
            reason: 'conditionNotMet',
          });
        }
        const o = store(
          bucket,
          name,
          parts[1].body,
          meta.contentType ?? parts[1].contentType ?? 'application/octet-stream',
          meta.metadata,
        );
        if (fault !== undefined) return void res.socket?.destroy();
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(resource(bucket, o)));
        return;
      }
      return gcsError(res, 400, `uploadType '${type}' is not in the fake's subset.`);
    }

    if (segs[0] === 'storage' && segs[1] === 'v1' && segs[2] === 'b' && segs[4] === 'o') {
      const bucket = decodeURIComponent(segs[3]);
      (rec as { bucket?: string }).bucket = bucket;
      const objects = buckets.get(bucket);
      if (objects === undefined) return gcsError(res, 404, 'The specified bucket does not exist.');
      if (segs.length === 5 && req.method === 'GET') {
        (rec as { kind: string }).kind = 'list';
        const prefix = q.get('prefix') ?? '';
        const delimiter = q.get('delimiter') ?? undefined;
        const entries: { name: string; prefix: boolean }[] = [];
        const seen = new Set<string>();
        for (const name of [...objects.keys()].sort()) {
          if (!name.startsWith(prefix)) continue;
          const rest = name.slice(prefix.length);
          const cut = delimiter === undefined ? -1 : rest.indexOf(delimiter);
          if (cut >= 0) {
            const p = prefix + rest.slice(0, cut + delimiter!.length);
            if (!seen.has(p)) entries.push({ name: p, prefix: true });
            seen.add(p);
          } else entries.push({ name, prefix: false });
        }
        const start = Number(q.get('pageToken') ?? '0');
        const size = Math.min(options.pageSize ?? 1000, Number(q.get('maxResults') ?? '1000'));
        const page = entries.slice(start, start + size);
        const out: Record<string, unknown> = { kind: 'storage#objects' };
        const items = page.filter((e) => !e.prefix).map((e) => resource(bucket, objects.get(e.name)!));
        const prefixes = page.filter((e) => e.prefix).map((e) => e.name);
        if (items.length > 0) out.items = items;
        if (prefixes.length > 0) out.prefixes = prefixes;
        if (start + size < entries.length) out.nextPageToken = String(start + size);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(out));
        return;
      }
      const name = decodeURIComponent(segs.slice(5).join('/'));
      (rec as { name?: string }).name = name;
      if (req.method === 'DELETE') {
        (rec as { kind: string }).kind = 'object';
        return gcsError(
          res,
          403,
          'The caller does not have storage.objects.delete access (objectCreator and objectViewer only).',
        );
      }
      if (req.method !== 'GET') return gcsError(res, 405, `${req.method} on an object is not in the fake's subset.`);
      const o = objects.get(name);
      (rec as { kind: string }).kind = q.get('alt') === 'media' ? 'media' : 'object';
      if (o === undefined) return gcsError(res, 404, `No such object: ${bucket}/${name}`);
      const want = q.get('ifGenerationMatch');
      if (want !== null && want !== String(o.generation))
        return gcsError(res, 412, 'At least one of the pre-conditions you specified did not hold.');
      if (q.get('alt') !== 'media') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(resource(bucket, o)));
        return;
      }
      const r = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
      const from = r === null ? 0 : Number(r[1]);
      if (from > o.data.length) return gcsError(res, 416, 'Requested range not satisfiable.');
      const data = o.data.subarray(from);
      const headers: Record<string, string> = {
        'Content-Type': o.contentType,
        'Content-Length': String(data.length),
        'x-goog-generation': String(o.generation),
      };
      if (r !== null) headers['Content-Range'] = `bytes ${from}-${o.data.length - 1}/${o.data.length}`;
      const fault = takeFault('media');
      res.writeHead(r === null ? 200 : 206, headers);
      if (fault !== undefined) {
        res.write(data.subarray(0, Math.floor(data.length / 2)));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      res.end(data);
      return;
    }
    gcsError(res, 501, `${req.method} ${rawPath} is not in the fake's subset.`);
  };

  const server = http.createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    const bearer = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const rec: RecordedRequest = {
      method: req.method ?? '',
      kind: 'other',
      authorized: bearer !== undefined && (bearer === options.token || issued.includes(bearer)),
      status: 0,
    };
    requests.push(rec);
    res.on('finish', () => (rec.status = res.statusCode));
    res.on('close', () => {
      if (rec.status === 0) rec.status = -1;
    });
    handle(req, res, rec).catch((e: Error) => {
      if (!res.headersSent) gcsError(res, 500, `fake error: ${e.message}`);
      else res.socket?.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    bucket: (name) => {
      const b = buckets.get(name);
      if (b === undefined) throw new Error(`no bucket ${name} in the fake`);
      return b;
    },
    requests,
    sessions,
    issued,
    grants,
    inject: (fault) => faults.push({ fault, skip: fault.skip ?? 0, times: fault.times ?? 1 }),
    clearFaults: () => {
      faults = [];
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The parts of a multipart/related body. */
function splitMultipart(body: Buffer, boundary: string): { contentType?: string; body: Buffer }[] {
  const delim = Buffer.from(`--${boundary}`);
  const out: { contentType?: string; body: Buffer }[] = [];
  let at = body.indexOf(delim);
  while (at >= 0) {
    const start = at + delim.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delim, start);
    if (next < 0) break;
    // Each part: CRLF, headers, CRLF CRLF, body, CRLF before the next delimiter.
    const part = body.subarray(start + 2, next - 2);
    const sep = part.indexOf('\r\n\r\n');
    const head = part.subarray(0, sep).toString('utf8');
    out.push({ contentType: /content-type:\s*([^\r\n]+)/i.exec(head)?.[1], body: part.subarray(sep + 4) });
    at = next;
  }
  return out;
}
