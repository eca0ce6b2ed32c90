// Damage a stored object the way a bad disk or a tampering hand would: one bit of one byte.
import * as fs from 'node:fs';

/** Flip the lowest bit of the byte at `at` (default: the middle) of `file`, in place. */
export function flipByte(file: string, at?: number): void {
  const bytes = fs.readFileSync(file);
  bytes[at ?? Math.floor(bytes.length / 2)] ^= 0x01;
  fs.writeFileSync(file, bytes);
}
