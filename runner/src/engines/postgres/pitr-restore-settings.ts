/**
 * The recovery settings a physical restore leaves in the data directory: recovery.signal, and in
 * postgresql.auto.conf a restore_command running `dbbackup wal-fetch`, the recovery target and
 * recovery_target_action = 'promote'.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StorageUrl } from '../../../../lib/core/urls';
import { ConfinedDir } from '../../pipeline/untar';

/** PostgreSQL writes this timestamp format for recovery_target_time. */
export function pgTimestamp(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '+00');
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function confQuote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** The restore_command that runs this very program's wal-fetch. */
export function restoreCommand(from: StorageUrl, identity: string | undefined): string {
  const script = fs.realpathSync(process.argv[1]);
  const parts = [
    process.execPath,
    script,
    'wal-fetch',
    '%f',
    '%p',
    '--from',
    from.display,
    ...(identity !== undefined ? ['--identity', path.resolve(identity)] : []),
    // A failure that is not the end of the archive aborts recovery (exit 129/130) rather than ending it.
    '--abort-recovery',
  ];
  return parts.map((p) => (p === '%f' || p === '%p' ? `"${p}"` : shellQuote(p))).join(' ');
}

/** Write recovery.signal and append the restore_command and the recovery target to postgresql.auto.conf. */
export async function writeRecoverySettings(
  dir: ConfinedDir,
  o: {
    readonly id: string;
    readonly recoveryTarget: string;
    readonly from: StorageUrl;
    readonly identity: string | undefined;
    readonly settings: Readonly<Record<string, string>>;
  },
): Promise<void> {
  await dir.writeFile('recovery.signal', Buffer.alloc(0));
  const lines = [
    '',
    `# Added by dbbackup restore of ${o.id} ` +
      `at ${new Date().toISOString()}: recover to ${o.recoveryTarget}, then promote.`,
    `restore_command = ${confQuote(restoreCommand(o.from, o.identity))}`,
    ...Object.entries(o.settings).map(([k, v]) => `${k} = ${confQuote(v)}`),
    '',
  ];
  await dir.appendFile('postgresql.auto.conf', Buffer.from(lines.join('\n')));
}
