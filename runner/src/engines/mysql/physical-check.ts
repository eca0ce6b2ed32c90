/**
 * `verify --deep` of a physical MySQL/MariaDB artifact: every stored byte is read and checked
 * against the manifest (sha256, by the shared read path), decrypted and decompressed; every
 * chunk of the mbstream is checked (its CRC-32, its path: mbstream.ts) and the stream is unpacked
 * with `mbstream -x` into a private scratch directory under the system's temporary directory
 * (TMPDIR), and a full backup is then prepared there with `mariadb-backup --prepare`, which
 * applies its redo log as a restore does. An incremental is unpacked and checked, not prepared:
 * preparing it needs its whole chain (a restore, or a drill, does that). The scratch directory
 * is removed afterwards, whatever the outcome.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ManifestArtifact } from '../../../../lib/core/manifest';
import { DamagedError } from '../../errors';
import { DeepCheck } from '../shared/engine';
import { parseCheckpoints, unpackStream } from './mbstream';
import { checkPhysicalTools, physicalToolsOf } from './physical';
import { prepareChain } from './physical-restore';

export function physicalDeepCheck(artifact: ManifestArtifact): DeepCheck {
  const tools = physicalToolsOf(artifact.format);
  return {
    kind: 'reader',
    read: async (plaintext: Readable) => {
      checkPhysicalTools(tools, `the deep check of ${artifact.name}`);
      const scratch = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-verify-'));
      try {
        const dir = path.join(scratch, 'data');
        await fs.promises.mkdir(dir, { mode: 0o700 });
        const summary = await unpackStream(plaintext, dir, tools.extract, artifact.name);
        const cp = parseCheckpoints(summary.kept.get('xtrabackup_checkpoints') ?? '');
        if (cp === undefined) throw new DamagedError(`${artifact.name} holds no readable xtrabackup_checkpoints`);
        if (cp.backupType === 'full-backuped') {
          await prepareChain(tools, [dir], new AbortController().signal).catch((e: Error) => {
            throw new DamagedError(
              `${artifact.name} unpacks, but ${path.basename(tools.backup)} --prepare fails on it: ${e.message}`,
            );
          });
        }
      } finally {
        await fs.promises.rm(scratch, { recursive: true, force: true });
      }
    },
  };
}
