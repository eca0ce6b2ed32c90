/** A MySQL/MariaDB restore into a scratch database, swapped in only when all of it loaded. */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { SourceUrl } from '../../../../lib/core/urls';
import { BackupError } from '../../errors';
import { log } from '../../log';
import { capture } from '../../pipeline/stages';
import { MysqlSession, quoteName, quoteString } from './session';
import { ServerInfo, clientTool, dumpTool } from './client';

/** Read a whole plaintext stream and reject unless its last line starts with `trailer`. */
export async function expectTrailer(plaintext: Readable, trailer: string): Promise<void> {
  let tail = Buffer.alloc(0);
  let size = 0;
  for await (const c of plaintext as AsyncIterable<Buffer>) {
    size += c.length;
    tail = Buffer.concat([tail, c]).subarray(-4096);
  }
  const last = tail.toString('utf8').trimEnd().split('\n').pop() ?? '';
  if (!last.startsWith(trailer)) {
    throw new BackupError(
      `incomplete: the dump (${size} bytes of SQL) does not end with ` +
        `'${trailer}'; its last line is '${last.slice(0, 120)}'`,
    );
  }
}

/**
 * Where a restore loads the dump, and how it is made final or undone. A MySQL restore is not
 * transactional (every CREATE TABLE commits), so the target is protected by where the dump goes:
 *
 * - a target that does not exist is created, loaded, and dropped again if anything fails;
 * - an existing target without tables, views, routines, events or triggers is loaded directly
 *   and, if anything fails, emptied again (dropped and re-created with its own options);
 * - an existing target with objects (only with --clean) is not touched while the dump loads:
 *   the dump goes into a new scratch database on the same server, and only when all of it is
 *   in does commit() move it in (see swapIn). A damaged backup, a wrong key, a failed statement
 *   or a lost connection leave the target as it was, and rollback drops the scratch database.
 */
export class RestorePlan {
  private phase: 'loading' | 'moved' = 'loading';

  private constructor(
    public readonly loadInto: string,
    private readonly mode: 'create' | 'empty' | 'swap',
    private readonly admin: MysqlSession,
    private readonly target: SourceUrl,
    private readonly createSql: string | undefined,
    private readonly tools: { connArgs: string[]; env: Record<string, string | undefined>; info: ServerInfo },
  ) {}

  public static async prepare(
    admin: MysqlSession,
    target: SourceUrl,
    info: ServerInfo,
    exists: boolean,
    hasObjects: boolean,
    tools: { connArgs: string[]; env: Record<string, string | undefined> },
  ): Promise<RestorePlan> {
    const db = target.database;
    if (!exists) {
      await admin.query(`CREATE DATABASE ${quoteName(db)}`);
      return new RestorePlan(db, 'create', admin, target, undefined, { ...tools, info });
    }
    const createSql = (await admin.query(`SHOW CREATE DATABASE ${quoteName(db)}`)).split('\t').slice(1).join('\t');
    if (!hasObjects) return new RestorePlan(db, 'empty', admin, target, createSql, { ...tools, info });
    const scratch = `${db.slice(0, 40)}_dbbackup_${crypto.randomBytes(4).toString('hex')}`;
    const options = / DEFAULT CHARACTER SET .*$|\/\*!40100 (.*) \*\//.exec(createSql);
    const charset = /CHARACTER SET (\S+)/.exec(options?.[0] ?? '')?.[1];
    const collate = /COLLATE (\S+)/.exec(options?.[0] ?? '')?.[1];
    await admin.query(
      `CREATE DATABASE ${quoteName(scratch)}` +
        `${charset ? ` CHARACTER SET ${charset}` : ''}${collate ? ` COLLATE ${collate}` : ''}`,
    );
    log.info(
      `the target ${db} has objects: loading the backup into the scratch ` +
        `database ${scratch} first; the target is changed only once all of it is in`,
      { scratch },
    );
    return new RestorePlan(scratch, 'swap', admin, target, createSql, { ...tools, info });
  }

  public async commit(): Promise<void> {
    if (this.mode !== 'swap') return;
    await swapIn(this.admin, this.loadInto, this.target.database, this.tools, () => (this.phase = 'moved'));
  }

  public async rollback(): Promise<void> {
    const db = this.target.database;
    switch (this.mode) {
      case 'create':
        log.info('dropping the database this failed restore created', { database: db });
        await this.admin.query(`DROP DATABASE IF EXISTS ${quoteName(db)}`);
        return;
      case 'empty':
        log.info('emptying the target database again after the failed restore', { database: db });
        await this.admin.query(`DROP DATABASE IF EXISTS ${quoteName(db)}`);
        await this.admin.query(this.createSql!);
        return;
      case 'swap':
        if (this.phase === 'moved') {
          log.warn(
            `the backup's tables were already moved into ${db}; only the scratch database ${this.loadInto} is dropped`,
          );
        } else {
          log.info('dropping the scratch database of the failed restore; the target was not changed', {
            scratch: this.loadInto,
          });
        }
        await this.admin.query(`DROP DATABASE IF EXISTS ${quoteName(this.loadInto)}`);
        return;
    }
  }
}

/**
 * Move a fully loaded scratch database into the target, replacing the objects of the same
 * names (other objects of the target stay). Everything that can fail is done first, in the
 * scratch database (reading the definitions of views, triggers, routines and events with the
 * dump tool, which writes each with its sql_mode, character set and definer); then, in a few
 * statements: the target's same-named objects are dropped, the tables are moved in with one
 * RENAME TABLE, and the views, triggers, routines and events are created in the target.
 * Tables with triggers cannot move between databases, so triggers are dropped in the scratch
 * database first and re-created in the target.
 */
async function swapIn(
  admin: MysqlSession,
  scratch: string,
  target: string,
  tools: { connArgs: string[]; env: Record<string, string | undefined>; info: ServerInfo },
  moved: () => void,
): Promise<void> {
  const s = quoteString(scratch);
  const names = (column: string, from: string) =>
    admin.json<string[]>(`SELECT COALESCE(JSON_ARRAYAGG(${column}), '[]') FROM information_schema.${from}`);
  const inScratch = {
    tables: await names('TABLE_NAME', `TABLES WHERE TABLE_SCHEMA = ${s} AND TABLE_TYPE <> 'VIEW'`),
    views: await names('TABLE_NAME', `TABLES WHERE TABLE_SCHEMA = ${s} AND TABLE_TYPE = 'VIEW'`),
    triggers: await names('TRIGGER_NAME', `TRIGGERS WHERE TRIGGER_SCHEMA = ${s}`),
    procedures: await names('ROUTINE_NAME', `ROUTINES WHERE ROUTINE_SCHEMA = ${s} AND ROUTINE_TYPE = 'PROCEDURE'`),
    functions: await names('ROUTINE_NAME', `ROUTINES WHERE ROUTINE_SCHEMA = ${s} AND ROUTINE_TYPE = 'FUNCTION'`),
    events: await names('EVENT_NAME', `EVENTS WHERE EVENT_SCHEMA = ${s}`),
  };
  const dump = await dumpTool(tools.info.flavor);
  const dumpOf = (args: string[]) =>
    capture({
      cmd: dump.path,
      args: [...tools.connArgs, '--no-data', '--skip-comments', '--default-character-set=utf8mb4', ...args],
      env: tools.env,
      label: path.basename(dump.path),
    });
  const others = await dumpOf(['--no-create-info', '--triggers', '--routines', '--events', '--', scratch]);
  const views = inScratch.views.length > 0 ? await dumpOf(['--skip-triggers', '--', scratch, ...inScratch.views]) : '';

  const t = quoteName(target);
  const q = (name: string) => `${t}.${quoteName(name)}`;
  await admin.query('SET SESSION lock_wait_timeout = 60; SET SESSION foreign_key_checks = 0');
  for (const trigger of inScratch.triggers)
    await admin.query(`DROP TRIGGER ${quoteName(scratch)}.${quoteName(trigger)}`);
  const targetViews = new Set(
    await names('TABLE_NAME', `TABLES WHERE TABLE_SCHEMA = ${quoteString(target)} AND TABLE_TYPE = 'VIEW'`),
  );
  const drops = [
    ...[...inScratch.tables, ...inScratch.views]
      .filter((n) => targetViews.has(n))
      .map((n) => `DROP VIEW IF EXISTS ${q(n)}`),
    ...inScratch.triggers.map((n) => `DROP TRIGGER IF EXISTS ${q(n)}`),
    ...inScratch.procedures.map((n) => `DROP PROCEDURE IF EXISTS ${q(n)}`),
    ...inScratch.functions.map((n) => `DROP FUNCTION IF EXISTS ${q(n)}`),
    ...inScratch.events.map((n) => `DROP EVENT IF EXISTS ${q(n)}`),
  ];
  log.info(
    `moving ${inScratch.tables.length} tables, ${inScratch.views.length} ` +
      `views, ${inScratch.triggers.length} triggers ` +
      `and ${inScratch.procedures.length + inScratch.functions.length} routines into ${target}`,
  );
  for (const d of drops) await admin.query(d);
  const replaced = inScratch.tables.filter((n) => !targetViews.has(n));
  if (replaced.length > 0) await admin.query(`DROP TABLE IF EXISTS ${replaced.map(q).join(', ')}`);
  if (inScratch.tables.length > 0) {
    await admin.query(
      `RENAME TABLE ${inScratch.tables.map((n) => `${quoteName(scratch)}.${quoteName(n)} TO ${q(n)}`).join(', ')}`,
    );
  }
  moved();
  const ddl = views + '\n' + others;
  if (ddl.trim() !== '') {
    await capture(
      {
        cmd: clientTool(tools.info.flavor),
        args: [...tools.connArgs, '--binary-mode', '--default-character-set=utf8mb4', `--database=${target}`],
        env: tools.env,
        label: 'mariadb',
      },
      ddl,
    );
  }
  await admin.query(`DROP DATABASE ${quoteName(scratch)}`);
}
