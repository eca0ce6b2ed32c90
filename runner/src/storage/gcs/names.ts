/**
 * Where a logical key lives on gs://. GCS lifecycle rules match object names, not metadata, so a
 * backup lives at `<prefix>/<tier>/<backup id>/…`; callers use logical keys `<id>/<name>`. This
 * adds the tier on write and finds it on read (listing the tier folders once per id). A key whose
 * first segment is not a backup id (`wal/…`) maps straight to `<prefix>/<key>`.
 */
import { idTime } from '../../../../lib/core/ids';
import { TIER_FOLDERS } from '../../../../lib/core/layout';
import type { RetentionTier } from '../../../../lib/core/model';
import { log } from '../../log';
import { joinKey } from '../storage';
import type { GcsClient } from './client';
import { listAll, listPage, objectMetadata } from './listing';

const TIERS = TIER_FOLDERS;

/** The tier folders of one `gs://bucket/prefix`, and the folder each backup id was found in. */
export class TierFolders {
  /** Backup id → the tier folder it lives in (null: directly under the prefix). */
  private readonly tierOf = new Map<string, RetentionTier | null>();

  constructor(private readonly client: GcsClient) {}

  private get url() {
    return this.client.url;
  }

  /** The prefix as the start of an object name (`''` or `prefix/`). */
  public get root(): string {
    return this.url.path === '' ? '' : this.url.path + '/';
  }

  /** The backup id a logical key starts with, if it does. */
  private static idOf(key: string): string | undefined {
    const first = key.split('/')[0];
    return idTime(first) !== undefined ? first : undefined;
  }

  private folder(t: RetentionTier | null, id: string): string {
    return `${this.root}${t === null ? '' : t + '/'}${id}/`;
  }

  /** Where a backup's objects are: its tier folder, null for directly under the prefix, undefined when nowhere. */
  private async resolve(id: string): Promise<RetentionTier | null | undefined> {
    if (this.tierOf.has(id)) return this.tierOf.get(id);
    const places: (RetentionTier | null)[] = [...TIERS, null];
    const found = await Promise.all(
      places.map(async (t) => {
        const page = await listPage(this.client, this.folder(t, id), undefined, undefined, 1);
        return (page.items?.length ?? 0) > 0 ? t : undefined;
      }),
    );
    const hits = found.filter((t): t is RetentionTier | null => t !== undefined);
    if (hits.length === 0) return undefined;
    let tier = hits[0];
    if (hits.length > 1) {
      // Never written so by the runner; prefer the folder that holds the manifest.
      for (const t of hits) {
        if ((await objectMetadata(this.client, `${this.folder(t, id)}manifest.json`)) !== undefined) {
          tier = t;
          break;
        }
      }
      log.warn(
        `backup ${id} has objects in several tier folders of ${this.url.display}; ` +
          `using ${tier ?? 'the untiered folder'}`,
        { folders: hits },
      );
    }
    this.tierOf.set(id, tier);
    return tier;
  }

  /** The object name of a logical key for reading, or undefined when its backup is nowhere. */
  public async nameForRead(key: string): Promise<string | undefined> {
    const id = TierFolders.idOf(key);
    if (id === undefined) return joinKey(this.url.path, key);
    const tier = await this.resolve(id);
    if (tier === undefined) return undefined;
    return joinKey(this.url.path, tier ?? '', key);
  }

  /** The object name of a logical key for writing: a backup's objects go to its tier folder. */
  public async nameForWrite(key: string, tier: RetentionTier | undefined): Promise<string> {
    const id = TierFolders.idOf(key);
    if (id === undefined) return joinKey(this.url.path, key);
    const known = this.tierOf.has(id) ? this.tierOf.get(id) : tier === undefined ? await this.resolve(id) : undefined;
    if (tier === undefined) {
      if (known === undefined || known === null) {
        throw new Error(
          `${this.url.display}/${key}: a backup's objects on gs:// need a retention tier ` +
            '(the lifecycle rules match <prefix>/<tier>/); none was given',
        );
      }
      return joinKey(this.url.path, known, key);
    }
    if (known !== undefined && known !== tier) {
      throw new Error(
        `${this.url.display}/${key}: backup ${id} is already stored under ${known ?? 'the untiered folder'}, ` +
          `not ${tier}; a backup keeps one tier`,
      );
    }
    this.tierOf.set(id, tier);
    return joinKey(this.url.path, tier, key);
  }

  /** The logical key of an object name under the prefix. */
  public logical(name: string): string {
    const rest = name.slice(this.root.length);
    const segs = rest.split('/');
    if (segs.length > 1 && (TIERS as readonly string[]).includes(segs[0]) && idTime(segs[1]) !== undefined) {
      this.tierOf.set(segs[1], segs[0] as RetentionTier);
      return segs.slice(1).join('/');
    }
    return rest;
  }

  /** The top level: the union of the tier folders' backups and any untiered folder (wal/). */
  public async topFolders(): Promise<string[]> {
    const [top, ...tiers] = await Promise.all(
      [this.root, ...TIERS.map((t) => `${this.root}${t}/`)].map((p) => listAll(this.client, p, '/')),
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
}
