/** Which timeline a recovery follows: the archive's timeline history files and the choice between them. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fetchObject } from '../../archive/log-archive';
import { Storage } from '../../storage';
import { WAL_PREFIX, WalIndex } from './wal-archive';
import { parseHistory, segmentOf, TimelineSwitch } from './wal-names';

/** Timeline history files, read (and decrypted) from the archive. */
export async function readHistories(
  storage: Storage,
  index: WalIndex,
  identity: string | undefined,
): Promise<Map<number, TimelineSwitch[]>> {
  const out = new Map<number, TimelineSwitch[]>();
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-history-'));
  try {
    for (const [name, o] of index.others) {
      const m = /^([0-9A-F]{8})\.history$/.exec(name);
      if (m === null) continue;
      const file = path.join(tmp, name);
      await fetchObject(storage, WAL_PREFIX, o, file, identity);
      out.set(parseInt(m[1], 16), parseHistory(await fs.promises.readFile(file, 'utf8')));
    }
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
  return out;
}

/**
 * The timeline a recovery from a base on `base` follows: a later timeline is followed only where
 * the earlier one ended at its switchpoint (the server was replaced by a promoted restore), never
 * to a fork (a restore that was promoted while the original server went on writing).
 */
export function chooseTimeline(
  base: number,
  index: WalIndex,
  histories: ReadonlyMap<number, readonly TimelineSwitch[]>,
): { timeline: number; history: readonly TimelineSwitch[] } {
  let best = { timeline: base, history: [] as readonly TimelineSwitch[] };
  for (const [tl, history] of [...histories].sort((a, b) => a[0] - b[0])) {
    const from = history.findIndex((h) => h.parent === base);
    if (tl <= base || from < 0) continue;
    const continued = history.slice(from).every((h) => {
      const segs = index.segments.get(h.parent);
      const switchSeg = segmentOf(h.switchpoint, index.segmentSize);
      // The switchpoint's own segment is complete on the old timeline; anything after it means the old timeline went
      // on.
      return segs === undefined || ![...segs.keys()].some((n) => n > switchSeg);
    });
    if (continued) best = { timeline: tl, history };
  }
  return best;
}
