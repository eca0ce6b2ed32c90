/**
 * A database's own properties: its comment, its grants (GRANT CONNECT … ON DATABASE) and its
 * settings (ALTER DATABASE … SET, ALTER ROLE … IN DATABASE … SET). pg_dump keeps them in every
 * archive, but pg_restore writes them only with --create, which would create the database under
 * the source's name: a restore into a database of its own name applies them itself, named for it.
 */
import * as fs from 'node:fs';
import { capture } from '../../pipeline/stages';
import { log } from '../../log';
import { quoteIdent } from './session';
import { pgTool } from './tools';

/** The table-of-contents kinds of a database's own properties (`pg_restore --create --list`). */
const PROPERTY_ITEM = /^\d+; \d+ \d+ (?:COMMENT - DATABASE |ACL - DATABASE |DATABASE PROPERTIES - )/;
/** The statements of those items that name the database (the rest are pg_restore's SET lines and \connect). */
const STATEMENT =
  /^(?:COMMENT ON DATABASE |ALTER DATABASE |ALTER ROLE .* IN DATABASE |(?:GRANT|REVOKE) .* ON DATABASE )/;

/**
 * The SQL that gives `database` the properties the archive's source database had (`source`, the
 * name the archive knows it by), or undefined when it had none. `listFile`: where pg_restore's
 * list of those items is written (a new file, in the restore's scratch directory).
 */
export async function databaseProperties(
  archive: string,
  listFile: string,
  source: string,
  database: string,
): Promise<string | undefined> {
  const list = (
    await capture({ cmd: pgTool('pg_restore'), args: ['--create', '--list', archive], label: 'pg_restore' })
  )
    .split('\n')
    .filter((l) => PROPERTY_ITEM.test(l));
  if (list.length === 0) return undefined;
  fs.writeFileSync(listFile, list.join('\n') + '\n', { mode: 0o600, flag: 'wx' });
  const script = await capture({
    cmd: pgTool('pg_restore'),
    args: ['--create', `--use-list=${listFile}`, '--file=-', archive],
    label: 'pg_restore',
  });
  // pg_dump names the database bare when it can, else quoted: the first such name on a statement's line.
  const names = [` DATABASE ${quoteIdent(source)}`, ` DATABASE ${source}`];
  const to = ` DATABASE ${quoteIdent(database)}`;
  const out: string[] = [];
  // pg_restore --create writes CREATE DATABASE too, whatever the list: only the listed items' sections are kept.
  let kept = false;
  for (const line of script.split('\n')) {
    const header = /^-- Name: .*; Type: (.*); Schema: /.exec(line);
    if (header !== null) kept = ['COMMENT', 'ACL', 'DATABASE PROPERTIES'].includes(header[1]);
    if (/^SET |^SELECT pg_catalog\.set_config\(/.test(line)) out.push(line);
    if (!kept || line.startsWith('\\') || line.startsWith('--')) continue;
    if (STATEMENT.test(line)) {
      const name = names.find((n) => line.includes(n + ' ') || line.includes(n + ';'));
      if (name === undefined) throw new Error(`cannot tell the database's name in: ${line.slice(0, 200)}`);
      const at = line.indexOf(name);
      out.push(line.slice(0, at) + to + line.slice(at + name.length));
    } else out.push(line);
  }
  log.info('giving the restored database the source database’s comment, grants and settings', { items: list.length });
  return out.join('\n');
}

/**
 * Give `database` the properties the archive's source database (`source`) had, by psql in `env`
 * (a session of `database` on the target server; ON_ERROR_STOP: a grant to a role the server
 * does not have fails the restore). Nothing to do when it had none.
 */
export async function applyDatabaseProperties(
  archive: string,
  listFile: string,
  source: string,
  database: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<void> {
  const properties = await databaseProperties(archive, listFile, source, database);
  if (properties === undefined) return;
  await capture(
    { cmd: pgTool('psql'), args: ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], env, label: 'psql' },
    properties,
  );
}
