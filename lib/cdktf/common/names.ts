import { createHash } from 'node:crypto';

/**
 * A resource name made of parts joined with '-', at most `max` characters: when too long, the
 * start is kept and a short hash of the whole keeps it unique and deterministic.
 */
export function boundedName(parts: readonly string[], max: number): string {
  const full = parts.filter((p) => p !== '').join('-');
  if (full.length <= max) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 6);
  return `${full.slice(0, max - 7).replace(/-+$/, '')}-${hash}`;
}
