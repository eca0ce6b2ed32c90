import { BackupError, ChildProcessError } from '../../errors';
import { log } from '../../log';
import { capture, CommandSpec } from '../../pipeline/stages';

/** Where and how a `grants.sql` artifact (mariadb-dump --system=users) is applied. */
export interface GrantsTarget {
  /** The client, connected to the target server (no database). */
  readonly client: CommandSpec;
  /** The account doing the restore (`user@host`, as CURRENT_USER() says). */
  readonly restoringAccount: string;
  readonly sourceDatabase: string;
  readonly targetDatabase: string;
}

/**
 * Why `mariadb-dump --system=users` failed, with the fix, for the manifest's warnings. An account
 * that mysql.user lists but the server did not load (under skip-name-resolve a server ignores every
 * account whose host is a name, and its error log says so) stops the dump at its SHOW CREATE USER.
 */
export function grantsNotSavedWarning(dumpPath: string, stderr: string): string {
  const ignored =
    /SHOW CREATE USER ('(?:[^']|'')*'@'(?:[^']|'')*')'?: Can't find any matching row in the user table/.exec(stderr);
  if (ignored !== null) {
    return (
      `users and grants were not saved: the server does not know the account ${ignored[1]} that mysql.user ` +
      `lists, and ${dumpPath} --system=users stops at it (with skip-name-resolve a server ignores accounts whose ` +
      `host is a name: its error log says "ignored in --skip-name-resolve mode"). Drop that account ` +
      `(DROP USER ${ignored[1]}) or give it an address as its host, and the next backup saves them.`
    );
  }
  return (
    `users and grants were not saved: ${dumpPath} --system=users failed (reading them needs SELECT on ` +
    `the mysql schema): ${stderr.trim().split('\n').slice(-2).join(' ')}`
  );
}

/** An account as it appears in the dump: `user`@`host` or 'user'@'host'. */
const ACCOUNT_RE = /(`(?:[^`]|``)*`|'(?:[^'\\]|\\.|'')*')@(`(?:[^`]|``)*`|'(?:[^'\\]|\\.|'')*')/g;

function unquote(s: string): string {
  const q = s[0];
  return s
    .slice(1, -1)
    .replace(q === '`' ? /``/g : /''/g, q)
    .replace(/\\(.)/g, '$1');
}

/**
 * The accounts a restore leaves as the target server has them: every `root`, MariaDB's system
 * accounts, and the account doing the restore (its password and privileges from the source
 * would lock the restore out of its own server).
 */
function isKept(user: string, host: string, restoringAccount: string): boolean {
  const i = restoringAccount.lastIndexOf('@');
  return (
    user === 'root' ||
    (user === 'mariadb.sys' && host === 'localhost') ||
    (user === 'mysql' && host === 'localhost') ||
    (user === restoringAccount.slice(0, i) && host === restoringAccount.slice(i + 1))
  );
}

/**
 * The users-and-grants script made ready for a target:
 * - statements about the accounts the target keeps (see isKept) are left out;
 * - users that exist already keep their password: `CREATE USER IF NOT EXISTS` creates only the
 *   missing ones, and `IDENTIFIED BY PASSWORD …` is taken off the GRANT statements;
 * - grants on the backed-up database follow it to its new name.
 */
export function prepareGrants(
  script: string,
  target: Omit<GrantsTarget, 'client'>,
): { script: string; skipped: string[] } {
  const skipped = new Set<string>();
  const from = [target.sourceDatabase, target.sourceDatabase.replace(/_/g, '\\_')].map(
    (d) => '`' + d.replace(/`/g, '``') + '`.',
  );
  const to = '`' + target.targetDatabase.replace(/`/g, '``') + '`.';
  const out: string[] = [];
  for (const line of script.split('\n')) {
    let keep = true;
    for (const m of line.matchAll(ACCOUNT_RE)) {
      const user = unquote(m[1]);
      const host = unquote(m[2]);
      if (isKept(user, host, target.restoringAccount)) {
        skipped.add(`${user}@${host}`);
        keep = false;
      }
    }
    if (!keep) continue;
    let l = line;
    if (/^\s*(\/\*[!M0-9]+\s*)?(GRANT|REVOKE)\b/i.test(l)) {
      l = l.replace(/ IDENTIFIED (BY PASSWORD '[^']*'|VIA .*?)(?= WITH |;\s*$| \*\/)/, '');
      if (target.sourceDatabase !== target.targetDatabase) for (const f of from) l = l.split(f).join(to);
    }
    out.push(l);
  }
  return { script: out.join('\n'), skipped: [...skipped].sort() };
}

/** Apply a users-and-grants script to the target server (stops at the first error). */
export async function applyGrants(script: string, target: GrantsTarget): Promise<void> {
  const prepared = prepareGrants(script, target);
  if (prepared.skipped.length > 0) {
    log.info(
      `kept the target's own accounts as they are (their passwords and grants are ` +
        `not taken from the backup): ${prepared.skipped.join(', ')}`,
    );
  }
  try {
    await capture(target.client, prepared.script);
  } catch (e) {
    const detail =
      e instanceof ChildProcessError ? e.stderrTail.trim().split('\n').slice(-3).join(' | ') : (e as Error).message;
    throw new BackupError(`restoring users and grants failed: ${detail}`);
  }
  log.info('restored users and grants');
}
