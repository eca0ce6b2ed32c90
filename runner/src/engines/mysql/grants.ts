import { PassThrough } from 'node:stream';
import { BackupError, ChildProcessError } from '../../errors';
import { log } from '../../log';
import { capture, Child, CommandSpec, StreamProducer } from '../../pipeline/stages';

/** Where and how a `grants.sql` artifact (mariadb-dump --system=users) is applied. */
export interface GrantsTarget {
  /** The client, connected to the target server (no database). */
  readonly client: CommandSpec;
  /** The account doing the restore (`user@host`, as CURRENT_USER() says). */
  readonly restoringAccount: string;
  readonly sourceDatabase: string;
  readonly targetDatabase: string;
}

/** What SHOW CREATE USER of an account the server does not know (error 1133) makes mariadb-dump print. */
const UNKNOWN_ACCOUNT_RE =
  /SHOW CREATE USER ('(?:[^']|'')*'@'(?:[^']|'')*')'?: Can't find any matching row in the user table/g;

/**
 * The accounts mysql.user lists but the server did not load, from mariadb-dump's stderr (under
 * skip-name-resolve a server ignores every account whose host is a name, and its error log says so).
 */
function unknownAccounts(stderr: string): string[] {
  return [...new Set([...stderr.matchAll(UNKNOWN_ACCOUNT_RE)].map((m) => m[1]))];
}

/** The part of a warning that says why `accounts` are not in the backup, and the fix. */
function unknownAccountsNote(dumpPath: string, accounts: readonly string[]): string {
  const them = accounts.length > 1 ? 'them' : 'it';
  return (
    `mysql.user lists ${accounts.join(', ')} but the server does not know ${them}, so ${dumpPath} ` +
    `--system=users cannot read ${them} (with skip-name-resolve a server ignores accounts whose host is a name: ` +
    `its error log says "ignored in --skip-name-resolve mode"). Drop ${them} ` +
    `(${accounts.map((a) => `DROP USER ${a}`).join('; ')}) or give ${them} an address as host`
  );
}

/**
 * Why `mariadb-dump --system=users` failed, with the fix, for the manifest's warnings (an account
 * the server does not know makes its SHOW CREATE USER fail; grantsWithoutUnknown saves the others
 * then, and this is the warning when another error failed the run too).
 */
export function grantsNotSavedWarning(dumpPath: string, stderr: string): string {
  const unknown = unknownAccounts(stderr);
  if (unknown.length > 0) {
    const note = unknownAccountsNote(dumpPath, unknown);
    return `users and grants were not saved: ${note}, and the next backup saves them.`;
  }
  return (
    `users and grants were not saved: ${dumpPath} --system=users failed (reading them needs SELECT on ` +
    `the mysql schema): ${stderr.trim().split('\n').slice(-2).join(' ')}`
  );
}

/** The warning of a backup whose users and grants were saved without the accounts the server does not know. */
function grantsWithoutUnknownWarning(dumpPath: string, accounts: readonly string[]): string {
  return (
    `users and grants were saved without ${accounts.join(', ')}: ` +
    `${unknownAccountsNote(dumpPath, accounts)}, and the next backup saves every account.`
  );
}

/**
 * `mariadb-dump --system=users` with `--force`, which goes on past the accounts the server does
 * not know (SHOW CREATE USER and SHOW GRANTS fail for them, and it exits 2) where it would stop at
 * the first: the script of every other account, without the statements that still name the
 * unknown ones (SET DEFAULT ROLE … FOR them, which a restore could not run). Any other error, or an
 * exit other than 0 and 2, fails it as the tool failed (the backup then goes on without users and
 * grants, saying why).
 */
export function grantsWithoutUnknown(spec: CommandSpec): StreamProducer & { warning(): string | undefined } {
  const label = spec.label ?? spec.cmd;
  let left: string[] = [];
  return {
    label,
    // None when the run met no unknown account.
    warning: () => (left.length > 0 ? grantsWithoutUnknownWarning(spec.cmd, left) : undefined),
    start: () => {
      const child = new Child({ ...spec, args: [...spec.args, '--force'] }, ['ignore', 'pipe', 'pipe']);
      const chunks: Buffer[] = [];
      let stderr = '';
      child.process.stdout!.on('data', (d: Buffer) => chunks.push(d));
      child.process.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString('utf8');
      });
      const stdout = new PassThrough();
      let failed = false;
      const done = child.done
        .catch((e: unknown) => {
          if (!(e instanceof ChildProcessError) || e.exitCode !== 2) throw e;
          failed = true;
        })
        .then(() => {
          const unknown = unknownAccounts(stderr);
          const about = (line: string) =>
            unknown.some((a) => line.includes(`'SHOW CREATE USER ${a}'`) || line.includes(`'SHOW GRANTS FOR ${a}'`));
          const errors = stderr.split('\n').filter((l) => /Couldn't execute|error/i.test(l) && !about(l));
          // Exit 2 is taken only for the unknown accounts (exit 0: every account was read).
          if ((failed && unknown.length === 0) || errors.length > 0)
            throw new ChildProcessError(label, 2, null, stderr);
          left = unknown;
          const names = new Set(unknown.map((a) => accountKey(a)));
          const kept = Buffer.concat(chunks)
            .toString('utf8')
            .split('\n')
            .filter((line) => ![...line.matchAll(ACCOUNT_RE)].some((m) => names.has(accountKey(m[0]))));
          stdout.end(kept.join('\n'));
        });
      // The failure is reported by `done`; an error event here would have no listener.
      done.catch(() => stdout.destroy());
      return { stdout, done, kill: (signal) => child.kill(signal) };
    },
  };
}

/** An account's user and host unquoted, as one key (`'u'@'h'` and `` `u`@`h` `` are the same account). */
function accountKey(account: string): string {
  const m = [...account.matchAll(ACCOUNT_RE)][0];
  return m === undefined ? account : JSON.stringify([unquote(m[1]), unquote(m[2])]);
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
