/** Where the PostgreSQL client tools are, and how they are told where the server is. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUNNER_ENV } from '../../../../lib/core/contract';
import { SourceUrl } from '../../../../lib/core/urls';
import { findTool } from '../../pipeline/stages';

/** The newest-first bin directories of Debian's parallel PostgreSQL installs. */
function debianBinDirs(): string[] {
  try {
    return fs
      .readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => path.join('/usr/lib/postgresql', v, 'bin'));
  } catch {
    return [];
  }
}

/** A PostgreSQL client tool: the newest Debian install first (it dumps every older server), then PATH. */
export function pgTool(name: string): string {
  const chosen = process.env[RUNNER_ENV.PG_BIN];
  if (chosen !== undefined && chosen !== '') return path.join(chosen, name);
  for (const dir of debianBinDirs()) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return findTool([name]) ?? name;
}

/** Connection settings for the PostgreSQL tools, passed in their environment (never argv). */
export function pgEnv(
  url: SourceUrl,
  password: string | undefined,
  database = url.database,
): Record<string, string | undefined> {
  return {
    PGHOST: url.socket ?? url.host,
    PGPORT: String(url.port),
    PGUSER: url.user,
    PGDATABASE: database,
    PGPASSWORD: password ?? process.env.PGPASSWORD,
    PGSSLMODE: url.params.sslmode ?? process.env.PGSSLMODE,
    PGAPPNAME: 'dbbackup',
    PGCONNECT_TIMEOUT: process.env.PGCONNECT_TIMEOUT ?? '10',
  };
}
