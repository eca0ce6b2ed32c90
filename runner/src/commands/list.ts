import { Manifest } from '../../../lib/core/manifest';
import { readCatalog } from '../catalog';
import { ListConfig } from '../config';
import { formatBytes } from '../log';
import { openStorage } from '../storage';

export interface ListEntry {
  readonly id: string;
  readonly engine: string;
  readonly database: string;
  readonly type: string;
  readonly tier: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly size: number;
  readonly compression: string;
  readonly encryption: string;
  readonly parent?: string;
}

export interface ListResult {
  readonly location: string;
  readonly backups: ListEntry[];
  /** Folders without a manifest (interrupted or running backups); never used. */
  readonly incomplete: string[];
  readonly unreadable: { id: string; reason: string }[];
}

function entry(m: Manifest): ListEntry {
  return {
    id: m.id,
    engine: m.engine,
    database: m.database,
    type: m.type,
    tier: m.tier,
    startedAt: m.startedAt,
    endedAt: m.endedAt,
    size: m.artifacts.reduce((s, a) => s + a.size, 0),
    compression: m.pipeline.compression,
    encryption: m.pipeline.encryption.scheme,
    parent: m.parent,
  };
}

export async function runList(cfg: ListConfig): Promise<ListResult> {
  const catalog = await readCatalog(openStorage(cfg.from));
  return { location: cfg.from.display, backups: catalog.backups.map(entry), incomplete: catalog.incomplete, unreadable: catalog.unreadable };
}

export function formatList(r: ListResult): string {
  if (r.backups.length === 0) return `no backups in ${r.location}` + (r.incomplete.length ? ` (${r.incomplete.length} incomplete folders ignored)` : '');
  const rows = [['ID', 'ENGINE', 'DATABASE', 'TYPE', 'TIER', 'ENDED', 'SIZE', 'PIPELINE']];
  for (const b of r.backups) {
    rows.push([b.id, b.engine, b.database, b.type, b.tier, b.endedAt.replace(/\.\d+Z$/, 'Z'), formatBytes(b.size), `${b.compression}+${b.encryption}`]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const lines = rows.map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  if (r.incomplete.length > 0) lines.push(`${r.incomplete.length} incomplete folder(s) without a manifest (not backups): ${r.incomplete.join(', ')}`);
  if (r.unreadable.length > 0) lines.push(`${r.unreadable.length} folder(s) with an unreadable manifest: ${r.unreadable.map((u) => u.id).join(', ')}`);
  return lines.join('\n');
}
