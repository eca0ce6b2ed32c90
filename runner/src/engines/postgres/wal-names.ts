/**
 * PostgreSQL WAL file names and positions, as pure functions.
 *
 * A segment is named TTTTTTTTLLLLLLLLSSSSSSSS: the timeline, then the segment number split in
 * two 32-bit halves ("log" and "seg" within it; how many segments one log holds depends on the
 * segment size). An LSN `X/Y` is the 64-bit byte position X·2^32 + Y.
 */

/**
 * What PostgreSQL hands to `archive_command`: a segment, a partial one, a timeline history or a backup history file.
 */
export enum WalFileKind {
  SEGMENT = 'segment',
  PARTIAL = 'partial',
  HISTORY = 'history',
  BACKUP = 'backup',
}

export interface WalFileName {
  readonly name: string;
  readonly kind: WalFileKind;
  /** The timeline, as 8 hex digits (the folder the file is archived under). */
  readonly timelineHex: string;
  readonly timeline: number;
}

const PATTERNS: readonly [RegExp, WalFileKind][] = [
  [/^([0-9A-F]{8})[0-9A-F]{16}$/, WalFileKind.SEGMENT],
  [/^([0-9A-F]{8})[0-9A-F]{16}\.partial$/, WalFileKind.PARTIAL],
  [/^([0-9A-F]{8})\.history$/, WalFileKind.HISTORY],
  [/^([0-9A-F]{8})[0-9A-F]{16}\.[0-9A-F]{8}\.backup$/, WalFileKind.BACKUP],
];

/** Parse a WAL file name (`%f`), or undefined when it is not one PostgreSQL archives. */
export function parseWalFileName(name: string): WalFileName | undefined {
  for (const [re, kind] of PATTERNS) {
    const m = re.exec(name);
    if (m !== null) return { name, kind, timelineHex: m[1], timeline: parseInt(m[1], 16) };
  }
  return undefined;
}

/** How many segments one "log" (the middle 8 hex digits) holds for a segment size. */
export function segmentsPerLog(segmentSize: number): bigint {
  return 0x100000000n / BigInt(segmentSize);
}

/** The 64-bit position of an LSN written `X/Y`. */
export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (m === null) throw new Error(`'${lsn}' is not an LSN (X/Y in hex)`);
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

/** An LSN as PostgreSQL writes it: `0/3000028`. */
export function formatLsn(pos: bigint): string {
  return `${(pos >> 32n).toString(16).toUpperCase()}/${(pos & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The number of the segment that holds the byte at `pos`. */
export function segmentOf(pos: bigint, segmentSize: number): bigint {
  return pos / BigInt(segmentSize);
}

/**
 * The segment that holds the record ending at `pos` (an end or stop LSN): at an exact segment
 * boundary that is the segment before it.
 */
export function segmentBefore(pos: bigint, segmentSize: number): bigint {
  return pos === 0n ? 0n : (pos - 1n) / BigInt(segmentSize);
}

/** The file name of segment `segno` on `timeline`. */
export function segmentName(timeline: number, segno: bigint, segmentSize: number): string {
  const per = segmentsPerLog(segmentSize);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return hex(timeline) + hex(segno / per) + hex(segno % per);
}

/** The segment number of a segment file name. */
export function segmentNumber(name: string, segmentSize: number): bigint {
  return BigInt('0x' + name.slice(8, 16)) * segmentsPerLog(segmentSize) + BigInt('0x' + name.slice(16, 24));
}

/** One line of a timeline history file: `parent` ended (and this timeline began) at `switchpoint`. */
export interface TimelineSwitch {
  readonly parent: number;
  readonly switchpoint: bigint;
}

/** Parse a `.history` file: the ancestors of a timeline, oldest first, with where each ended. */
export function parseHistory(text: string): TimelineSwitch[] {
  const out: TimelineSwitch[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(line);
    if (m !== null) out.push({ parent: Number(m[1]), switchpoint: parseLsn(m[2]) });
  }
  return out;
}

/** A stretch of one timeline on the way from a base backup to a recovery target. */
export interface TimelineStretch {
  readonly timeline: number;
  /** First segment number read from this timeline. */
  readonly fromSegno: bigint;
  /** Last segment number read from this timeline; undefined: to the end of the archive. */
  readonly toSegno?: bigint;
}

/**
 * The timelines recovery reads, from a base on `baseTimeline` to `targetTimeline`, given the
 * target's history (its ancestors with their switchpoints). Undefined when the base's timeline
 * is not an ancestor of the target.
 */
export function timelinePath(
  baseTimeline: number,
  targetTimeline: number,
  history: readonly TimelineSwitch[],
  startSegno: bigint,
  segmentSize: number,
): TimelineStretch[] | undefined {
  if (targetTimeline === baseTimeline) return [{ timeline: baseTimeline, fromSegno: startSegno }];
  const i = history.findIndex((h) => h.parent === baseTimeline);
  if (i < 0) return undefined;
  const out: TimelineStretch[] = [];
  let from = startSegno;
  for (let j = i; j < history.length; j++) {
    const h = history[j];
    // The segment holding the switchpoint is read from the new timeline (PostgreSQL copies it there).
    const switchSeg = segmentOf(h.switchpoint, segmentSize);
    out.push({ timeline: h.parent, fromSegno: from, toSegno: switchSeg - 1n });
    from = switchSeg < from ? from : switchSeg;
  }
  out.push({ timeline: targetTimeline, fromSegno: from });
  return out;
}
