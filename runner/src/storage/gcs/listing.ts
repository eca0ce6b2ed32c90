/** Reading object metadata and listing a bucket, page by page. */
import type { GcsClient, GcsObject } from './client';

interface ListPage {
  readonly items?: GcsObject[];
  readonly prefixes?: string[];
  readonly nextPageToken?: string;
}

/** An object's metadata, or undefined when there is no such object. */
export async function objectMetadata(client: GcsClient, name: string): Promise<GcsObject | undefined> {
  const res = await client.send('GET', client.objectUrl(name, { fields: 'name,size,generation' }));
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.ok) throw await client.failure(res, `stat ${client.display(name)}`);
  return (await res.json()) as GcsObject;
}

/** One page of the objects (and, with a delimiter, the folders) under a prefix. */
export async function listPage(
  client: GcsClient,
  prefix: string,
  delimiter: string | undefined,
  pageToken: string | undefined,
  maxResults?: number,
): Promise<ListPage> {
  const q: Record<string, string> = { prefix, fields: 'items(name,size),prefixes,nextPageToken' };
  if (delimiter !== undefined) q.delimiter = delimiter;
  if (pageToken !== undefined) q.pageToken = pageToken;
  if (maxResults !== undefined) q.maxResults = String(maxResults);
  const res = await client.send('GET', client.listUrl(q));
  if (!res.ok) throw await client.failure(res, `list ${client.display(prefix)}`);
  return (await res.json()) as ListPage;
}

/** Every object (and, with a delimiter, folder) under a prefix. */
export async function listAll(
  client: GcsClient,
  prefix: string,
  delimiter?: string,
): Promise<{ items: GcsObject[]; prefixes: string[] }> {
  const items: GcsObject[] = [];
  const prefixes: string[] = [];
  let token: string | undefined;
  do {
    const page = await listPage(client, prefix, delimiter, token);
    items.push(...(page.items ?? []));
    prefixes.push(...(page.prefixes ?? []));
    token = page.nextPageToken;
  } while (token !== undefined && token !== '');
  return { items, prefixes };
}
