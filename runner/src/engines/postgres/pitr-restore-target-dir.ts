/**
 * The data directory a physical restore lays a backup down in: absent or empty, held open and
 * private while the restore writes, handed to its owner at the end, and put back as it was when
 * the restore fails.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../../../lib/core/errors';
import { log } from '../../log';
import { ConfinedDir, Owner } from '../../pipeline/untar';
import { PG_CONTROL } from './physical';

/** Where a physical restore writes, and how to leave it as it was. */
export interface TargetDir {
  readonly dir: ConfinedDir;
  /** Whom the laid-down directory goes to at the end (running as root), if not root. */
  readonly owner?: Owner;
  /** Remove what the restore wrote; an existing directory gets its owner and mode back. */
  undo(): Promise<void>;
}

/**
 * Prepare DIR: it must be absent or empty. It is held open (see ConfinedDir) and, while the
 * restore writes, belongs to the running user with mode 0700, so nobody can plant a link in it.
 * Running as root, the result goes at the end to the owner of DIR (or of its parent, when the
 * restore makes DIR).
 */
export async function prepareTargetDir(dir: string): Promise<TargetDir> {
  const before = await fs.promises.stat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new ConfigError(`--target-dir ${dir} cannot be used (${e.code ?? e.message}); give a new or empty one.`);
  });
  if (before !== undefined && !before.isDirectory()) {
    throw new ConfigError(`--target-dir ${dir} exists and is not a directory. Give a new or empty directory.`);
  }
  const notEmpty = (entries: string[]) =>
    new ConfigError(
      `--target-dir ${dir} is not empty (${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}); ` +
        'restore lays a whole data directory down and refuses to mix it with one. Give a new or empty directory ' +
        `(a restore that was killed leaves its directory behind without ${PG_CONTROL}, so PostgreSQL does not ` +
        'start on it: remove it and run again).',
    );
  if (before !== undefined) {
    const entries = await fs.promises.readdir(dir);
    if (entries.length > 0) throw notEmpty(entries);
  }
  const created = before === undefined ? await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 }) : undefined;
  const target = await ConfinedDir.open(await fs.promises.realpath(dir));
  const asRoot = process.getuid?.() === 0;
  let owner: Owner | undefined;
  if (asRoot) {
    const ref = before ?? (await fs.promises.stat(path.dirname(created ?? dir)));
    if (ref.uid !== 0) owner = { uid: ref.uid, gid: ref.gid };
  }
  const undo = async () => {
    log.info(`removing what the failed restore wrote in ${dir}`);
    if (before !== undefined) {
      await target.removeContents();
      target.restore(before, before.mode);
    } else {
      await fs.promises.rm(created ?? dir, { recursive: true, force: true });
    }
    target.close();
  };
  try {
    target.secure();
    // Checked again now that nobody else can write in it.
    const entries = await target.entries();
    if (entries.length > 0) {
      if (before !== undefined) target.restore(before, before.mode);
      throw notEmpty(entries);
    }
  } catch (e) {
    if (before === undefined) await fs.promises.rm(created ?? dir, { recursive: true, force: true });
    target.close();
    throw e;
  }
  return { dir: target, owner, undo };
}
