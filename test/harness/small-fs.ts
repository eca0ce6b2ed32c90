// A small filesystem for tests of a spool that does not fit (a tmpfs of a few MiB). Mounting needs
// root: where this process may not mount, the tests that need one are skipped, saying so.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from '@jest/globals';

/** A tmpfs of `mib` MiB at a new directory under `parent`, or undefined when this process may not mount. */
export function smallFilesystem(parent: string, mib: number): string | undefined {
  const at = fs.mkdtempSync(path.join(parent, 'small-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0700`, 'tmpfs', at], { stdio: 'ignore' });
    return at;
  } catch {
    fs.rmdirSync(at);
    return undefined;
  }
}

/** Unmount and remove what smallFilesystem made. */
export function removeSmallFilesystem(at: string): void {
  execFileSync('umount', [at]);
  fs.rmdirSync(at);
}

const probe = smallFilesystem(os.tmpdir(), 1);
if (probe !== undefined) removeSmallFilesystem(probe);
else console.warn('cannot mount a tmpfs (not root): the small-TMPDIR tests of the spool are skipped');

/** `test`, or `test.skip` where no small filesystem can be mounted. */
export function withSmallTmp(name: string, fn: () => Promise<void>, timeout?: number): void {
  (probe !== undefined ? test : test.skip)(name, fn, timeout);
}
