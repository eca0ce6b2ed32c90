/**
 * A streaming reader of tar archives (POSIX ustar and pax, GNU long names, base-256 sizes), for
 * the archives this program restores (pg_basebackup's `-F t` output). It only parses: what a
 * member may be and where it may go is decided by its caller (see untar.ts). Bodies stream
 * through in the chunks they arrive in, so memory stays flat whatever the archive's size.
 */
import { DamagedError } from '../errors';

const BLOCK = 512;
/** pax and GNU long-name records are metadata: anything larger is not a sane archive. */
const MAX_META = 1 << 20;

/** What a member is, from its type flag. */
export enum TarKind {
  FILE = 'file',
  DIRECTORY = 'directory',
  SYMLINK = 'symbolic link',
  HARDLINK = 'hard link',
  CHAR_DEVICE = 'character device',
  BLOCK_DEVICE = 'block device',
  FIFO = 'FIFO',
  OTHER = 'member of an unsupported type',
}

/** One member's header, with its pax/GNU extensions applied. */
export interface TarMember {
  /** The member's name as the archive spells it (not yet checked or normalised). */
  readonly name: string;
  readonly kind: TarKind;
  /** The raw type flag ('0', '5', '2', …), for messages about unsupported types. */
  readonly typeflag: string;
  readonly size: number;
  /** Permission bits and set-uid/set-gid/sticky, as recorded (never applied by this reader). */
  readonly mode: number;
  readonly linkname: string;
  /** Where the member's header starts in the archive. */
  readonly offset: number;
}

const KINDS: Readonly<Record<string, TarKind>> = {
  '0': TarKind.FILE,
  '\0': TarKind.FILE,
  '7': TarKind.FILE,
  '1': TarKind.HARDLINK,
  '2': TarKind.SYMLINK,
  '3': TarKind.CHAR_DEVICE,
  '4': TarKind.BLOCK_DEVICE,
  '5': TarKind.DIRECTORY,
  '6': TarKind.FIFO,
};

/** Bytes pulled from an async source on demand; chunks pass through without copies where possible. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  /** Bytes consumed so far. */
  public position = 0;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.length < n && !this.ended) {
      const r = await this.source.next();
      if (r.done === true) {
        this.ended = true;
      } else if (r.value.length > 0) {
        this.chunks.push(r.value);
        this.length += r.value.length;
      }
    }
  }

  /** Exactly `n` bytes, or fewer only at the end of the source. */
  public async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const want = Math.min(n, this.length);
    const out = Buffer.allocUnsafe(want);
    let off = 0;
    while (off < want) {
      const c = this.chunks[0];
      const k = Math.min(c.length, want - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.length -= want;
    this.position += want;
    return out;
  }

  /** The next up to `max` bytes as they arrived (at least one byte unless the source ended). */
  public async some(max: number): Promise<Buffer> {
    if (this.length === 0) await this.fill(1);
    if (this.length === 0) return Buffer.alloc(0);
    const c = this.chunks[0];
    const out = c.length <= max ? c : c.subarray(0, max);
    if (out.length === c.length) this.chunks.shift();
    else this.chunks[0] = c.subarray(out.length);
    this.length -= out.length;
    this.position += out.length;
    return out;
  }
}

function cstring(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

/** A numeric field: octal text, or GNU/star base-256 (high bit set) for values octal cannot hold. */
function numeric(b: Buffer, start: number, len: number, what: string, offset: number): number {
  const field = b.subarray(start, start + len);
  if ((field[0] & 0x80) !== 0) {
    if (field[0] === 0xff) throw new DamagedError(`tar header at byte ${offset}: negative ${what}`);
    let v = field[0] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + field[i];
    if (!Number.isSafeInteger(v)) throw new DamagedError(`tar header at byte ${offset}: ${what} too large`);
    return v;
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) {
    throw new DamagedError(`tar header at byte ${offset}: ${what} '${text}' is not an octal number`);
  }
  return parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  const recorded = h
    .subarray(148, 156)
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]+$/.test(recorded)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  const want = parseInt(recorded, 8);
  return want === unsigned || want === signed;
}

/** pax records: "LEN key=value\n", LEN counting the whole record. */
export function parsePax(body: Buffer, offset: number): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    if (body[i] === 0) break;
    const space = body.indexOf(0x20, i);
    const len = space < 0 ? NaN : Number(body.subarray(i, space).toString('latin1'));
    if (!Number.isInteger(len) || len <= space - i + 1 || i + len > body.length || body[i + len - 1] !== 0x0a) {
      throw new DamagedError(`tar pax header at byte ${offset} has a malformed record at byte ${i} of its data`);
    }
    const record = body.subarray(space + 1, i + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq <= 0) throw new DamagedError(`tar pax header at byte ${offset} has a record without a key`);
    out.set(record.slice(0, eq), record.slice(eq + 1));
    i += len;
  }
  return out;
}

/**
 * Reads members one by one: `next()` gives the next header (undefined at the end-of-archive
 * marker), `body()` streams its data; a body left unread is skipped by the following `next()`.
 * A truncated archive, a header that fails its checksum or an archive without its end marker
 * is a DamagedError naming the byte offset.
 */
export class TarReader {
  private readonly q: ByteQueue;
  /** Body bytes (plus padding) of the current member not yet consumed. */
  private remaining = 0;
  private padding = 0;
  private done = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.q = new ByteQueue(source[Symbol.asyncIterator]());
  }

  /** Bytes of the archive consumed so far. */
  public get position(): number {
    return this.q.position;
  }

  public async next(): Promise<TarMember | undefined> {
    if (this.done) return undefined;
    await this.skipBody();
    let pax = new Map<string, string>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const offset = this.q.position;
      const h = await this.q.take(BLOCK);
      if (h.length === 0) {
        throw new DamagedError(`the tar archive ends at byte ${offset} without its end-of-archive marker (truncated)`);
      }
      if (h.length < BLOCK) throw new DamagedError(`the tar archive is truncated inside the header at byte ${offset}`);
      if (h.every((b) => b === 0)) {
        this.done = true;
        return undefined;
      }
      if (!checksumOk(h)) {
        throw new DamagedError(`the tar header at byte ${offset} fails its checksum (not a tar archive, or damaged)`);
      }
      const typeflag = String.fromCharCode(h[156]);
      const size = numeric(h, 124, 12, 'size', offset);
      if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
        if (size > MAX_META) {
          throw new DamagedError(`the tar header at byte ${offset} has ${size} bytes of metadata (> ${MAX_META})`);
        }
        const body = await this.q.take(size);
        await this.q.take(pad(size));
        if (body.length < size) {
          throw new DamagedError(`the tar archive is truncated inside the metadata at byte ${offset}`);
        }
        if (typeflag === 'x') pax = new Map([...pax, ...parsePax(body, offset)]);
        else if (typeflag === 'L') longName = cstring(body, 0, body.length);
        else if (typeflag === 'K') longLink = cstring(body, 0, body.length);
        // 'g' (global pax records) carries nothing this reader applies.
        continue;
      }
      const magic = h.subarray(257, 263).toString('latin1');
      let name = cstring(h, 0, 100);
      // POSIX ustar splits long names into prefix/name; GNU uses that space for other fields.
      if (magic === 'ustar\0') {
        const prefix = cstring(h, 345, 155);
        if (prefix !== '') name = `${prefix}/${name}`;
      }
      name = pax.get('path') ?? longName ?? name;
      const paxSize = pax.get('size');
      const realSize = paxSize === undefined ? size : Number(paxSize);
      if (!Number.isSafeInteger(realSize) || realSize < 0) {
        throw new DamagedError(`the tar pax header before byte ${offset} has an invalid size '${paxSize}'`);
      }
      let kind = KINDS[typeflag] ?? TarKind.OTHER;
      // Old (pre-POSIX) archives mark directories by a trailing slash only.
      if (kind === TarKind.FILE && typeflag !== '7' && name.endsWith('/')) kind = TarKind.DIRECTORY;
      // Only regular files carry data in the archive (a hard link's size is not a body).
      const bodySize = kind === TarKind.FILE || kind === TarKind.OTHER ? realSize : 0;
      this.remaining = bodySize;
      this.padding = pad(bodySize);
      return {
        name,
        kind,
        typeflag,
        size: bodySize,
        mode: numeric(h, 100, 8, 'mode', offset),
        linkname: pax.get('linkpath') ?? longLink ?? cstring(h, 157, 100),
        offset,
      };
    }
  }

  /** The current member's data, in chunks. */
  public async *body(): AsyncGenerator<Buffer> {
    while (this.remaining > 0) {
      const c = await this.q.some(this.remaining);
      if (c.length === 0) {
        throw new DamagedError(`the tar archive is truncated inside a member's data at byte ${this.q.position}`);
      }
      this.remaining -= c.length;
      yield c;
    }
  }

  /** Read whatever follows the end-of-archive marker (padding) to the end of the source. */
  public async drain(): Promise<void> {
    while ((await this.q.some(1 << 20)).length > 0);
  }

  private async skipBody(): Promise<void> {
    while (this.remaining > 0) {
      const c = await this.q.some(this.remaining);
      if (c.length === 0) {
        throw new DamagedError(`the tar archive is truncated inside a member's data at byte ${this.q.position}`);
      }
      this.remaining -= c.length;
    }
    if (this.padding > 0) {
      const p = await this.q.take(this.padding);
      if (p.length < this.padding) throw new DamagedError(`the tar archive is truncated at byte ${this.q.position}`);
      this.padding = 0;
    }
  }
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}
