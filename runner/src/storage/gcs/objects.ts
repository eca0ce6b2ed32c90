/** Whole-object operations: a small object in one request, and a read that resumes where it broke off. */
import { buffer } from 'node:stream/consumers';
import * as crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { log } from '../../log';
import { NotFoundError, type PutOptions } from '../storage';
import { type GcsClient, GcsError, objectResource, sleep } from './client';

/** Write a small object in one multipart request; the same bytes already there are success. */
export async function putObject(client: GcsClient, name: string, key: string, data: Buffer, options: PutOptions) {
  const boundary = `dbbackup-${crypto.randomBytes(16).toString('hex')}`;
  const resource = JSON.stringify(objectResource(name, options));
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${resource}\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Type: ${options.contentType ?? 'application/octet-stream'}\r\n\r\n`),
    data,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const res = await client.send('POST', client.uploadUrl({ uploadType: 'multipart', ifGenerationMatch: '0' }), {
    headers: { 'Content-Type': `multipart/related; boundary=${boundary}` },
    body,
    signal: options.signal,
  });
  if (res.ok) {
    await res.body?.cancel();
    return;
  }
  if (res.status === 412) {
    await res.body?.cancel();
    // The same bytes already there (a repeated request whose first answer was lost) are success.
    const existing = await readObject(client, name, key).then((s) => buffer(s));
    if (existing.equals(data)) return;
    throw new GcsError(
      `${client.display(name)} already exists with other content; the runner never overwrites an object`,
      412,
    );
  }
  throw await client.failure(res, `upload ${client.display(name)}`);
}

/** Read an object; a read broken by the network resumes at the byte it reached, from the same generation. */
export async function readObject(client: GcsClient, name: string, key: string): Promise<Readable> {
  const url = client.objectUrl(name, { alt: 'media' });
  const first = await client.send('GET', url);
  if (first.status === 404) {
    await first.body?.cancel();
    throw new NotFoundError(`${client.url.display}/${key} does not exist`);
  }
  if (!first.ok || first.body === null) throw await client.failure(first, `read ${client.display(name)}`);
  const generation = first.headers.get('x-goog-generation');
  const delays = client.delays;
  const again = (offset: number) => {
    const q: Record<string, string> = { alt: 'media' };
    if (generation !== null) q.ifGenerationMatch = generation;
    return client.send('GET', client.objectUrl(name, q), { headers: { Range: `bytes=${offset}-` } });
  };
  const display = client.display(name);
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
