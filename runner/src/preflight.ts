// Check before work: every program a plan runs exists and runs, PostgreSQL's tools are at least
// the server's major version, an --identity file holds what the backup's scheme reads back (an
// age identity, a GnuPG secret key, a private OpenSSL key file). Called once per
// command before any database session opens; each failure is a ConfigError (exit 2) that names
// the value and the fix. (Age recipients and URLs are checked when the options are parsed.)
import * as fs from 'node:fs';
import { Manifest, ManifestEncryption } from '../../lib/core/manifest';
import { BackupMethod, BackupType, Compression } from '../../lib/core/model';
import { EncryptionScheme, opensslKeyFile, SourceUrl } from '../../lib/core/urls';
import { ConfigError } from './errors';
import { CheckBeforeWork, driverFor, EngineDriver, ReadCheck, ToolNeed, ToolPurpose } from './engines';
import { log } from './log';
import { compressStage, decompressStage } from './pipeline/compress';
import { checkIdentityFile } from './pipeline/encrypt';
import { checkGpgIdentityFile } from './pipeline/gpg';
import { CommandSpec, findTool, versionOutput } from './pipeline/stages';

export { ToolNeed, ToolPurpose } from './engines';

/** What a command is about to do, as far as the preflight needs to know. */
export interface Plan {
  readonly tools: readonly ToolNeed[];
  /** The engine and server whose version floors apply (ToolNeed.atLeastServerMajor). */
  readonly server?: { readonly driver: EngineDriver; readonly url: SourceUrl; readonly purpose: ToolPurpose };
  /** An --identity file that must hold an age identity. */
  readonly identity?: string;
  /** The --identity file of gpg: and openssl: backups, checked against what their manifest records. */
  readonly keyFile?: { readonly file: string; readonly encryption: ManifestEncryption };
  /** The tool versions a backup was made with: a restore tool must be at least as new (pg_dump → pg_restore). */
  readonly madeWith?: Readonly<Record<string, string>>;
}

/** How long `TOOL --version` may take. */
const VERSION_TIMEOUT_MS = 15000;

/** The program each encryption scheme runs, and how to get it. */
const ENCRYPTION_TOOLS: Readonly<Record<EncryptionScheme, Omit<ToolNeed, 'why'> | undefined>> = {
  [EncryptionScheme.NONE]: undefined,
  [EncryptionScheme.AGE]: { cmd: 'age', label: 'age', fix: 'install age (Debian: age; https://age-encryption.org)' },
  [EncryptionScheme.KMS]: { cmd: 'age', label: 'age', fix: 'install age (Debian: age; https://age-encryption.org)' },
  [EncryptionScheme.GPG]: { cmd: 'gpg', label: 'gpg', fix: 'install GnuPG 2.2 or newer (Debian: gnupg)' },
  [EncryptionScheme.OPENSSL]: {
    cmd: 'openssl',
    label: 'openssl',
    fix: 'install OpenSSL 1.1.1 or newer (Debian: openssl)',
    versionArgs: ['version'],
  },
};

/** The tools of the shared stages: compression and encryption. */
export function stageTools(compression: Compression, encryption: EncryptionScheme, reading: boolean): ToolNeed[] {
  const tools: ToolNeed[] = [];
  const stage = reading ? decompressStage(compression) : compressStage(compression);
  if (stage !== undefined) {
    const name = compression === Compression.GZIP ? 'gzip or pigz' : compression;
    tools.push(toolOf(stage, `compression ${compression}`, `install ${name}, or choose another --compression`));
  }
  const tool = ENCRYPTION_TOOLS[encryption];
  if (tool !== undefined) tools.push({ ...tool, why: `encryption ${encryption}:` });
  return tools;
}

function toolOf(spec: CommandSpec, why: string, fix: string): ToolNeed {
  return { cmd: spec.cmd, label: spec.label ?? spec.cmd.split('/').pop()!, why, fix };
}

/** The plan of a backup (and of wal-push and binlog-stream, which have no server check). */
export function backupPlan(cfg: {
  readonly engine?: string;
  readonly source?: SourceUrl;
  readonly method?: BackupMethod;
  readonly type?: BackupType;
  readonly jobs?: number;
  readonly compression: Compression;
  readonly encryption: { readonly scheme: EncryptionScheme };
}): Plan {
  const tools = stageTools(cfg.compression, cfg.encryption.scheme, false);
  if (cfg.source === undefined || cfg.method === undefined) return { tools };
  const driver = driverFor(cfg.source.engine);
  return {
    tools: [...driver.tools(ToolPurpose.BACKUP, cfg.method, { type: cfg.type, jobs: cfg.jobs }), ...tools],
    server: { driver, url: cfg.source, purpose: ToolPurpose.BACKUP },
  };
}

/**
 * The plan of reading stored backups back: decryption and decompression of each, and with a
 * target (restore, drill) the engine's restore tools; `deep` adds the deep-check commands.
 */
export function readPlan(
  manifests: readonly Manifest[],
  options: {
    identity?: string;
    target?: SourceUrl;
    deep?: boolean;
    objects?: ReadCheck['objects'];
    tools?: readonly ToolNeed[];
  },
): Plan {
  const tools: ToolNeed[] = [...(options.tools ?? [])];
  let identityNeeded = false;
  // Stored log objects: one check per (compression, encryption) pair, however many objects.
  const pairs = new Set((options.objects ?? []).map((o) => `${o.compression} ${o.encryption}`));
  for (const pair of pairs) {
    const [compression, scheme] = pair.split(' ') as [Compression, EncryptionScheme];
    tools.push(...stageTools(compression, scheme, true));
    identityNeeded ||= scheme === EncryptionScheme.AGE;
  }
  let keyFile: Plan['keyFile'];
  for (const m of manifests) {
    tools.push(...stageTools(m.pipeline.compression, m.pipeline.encryption.scheme, true));
    identityNeeded ||= m.pipeline.encryption.scheme === EncryptionScheme.AGE;
    const scheme = m.pipeline.encryption.scheme;
    if (options.identity !== undefined && (scheme === EncryptionScheme.GPG || scheme === EncryptionScheme.OPENSSL)) {
      keyFile ??= { file: options.identity, encryption: m.pipeline.encryption };
    }
    const driver = driverFor(m.engine);
    if (options.target !== undefined) tools.push(...driver.tools(ToolPurpose.RESTORE, m.method, { manifest: m }));
    if (options.deep === true) {
      for (const a of m.artifacts) {
        const check = driver.deepCheck(a);
        if (check.kind !== 'command') continue;
        tools.push(toolOf(check.command, `the deep check of ${a.name}`, 'install it, or verify without --deep'));
      }
    }
  }
  const first = manifests[0];
  const server =
    options.target !== undefined && first !== undefined
      ? { driver: driverFor(first.engine), url: options.target, purpose: ToolPurpose.RESTORE }
      : undefined;
  // A log-only plan (wal-fetch) of gpg:/openssl: objects: the key file is checked as for a backup.
  const pair = [...pairs][0]?.split(' ')[1] as EncryptionScheme | undefined;
  if (keyFile === undefined && options.identity !== undefined && first === undefined) {
    if (pair === EncryptionScheme.GPG || pair === EncryptionScheme.OPENSSL)
      keyFile = { file: options.identity, encryption: { scheme: pair } as ManifestEncryption };
  }
  return {
    tools,
    server,
    identity: identityNeeded ? options.identity : undefined,
    keyFile,
    madeWith: first?.tools,
  };
}

/**
 * The check before work that a command hands an engine whose plan only it knows (physical and
 * point-in-time restores, chain replays, wal-fetch): the plan's programs, --identity and, with a
 * target, the engine's restore tools and the server's version.
 */
export function checkBeforeWork(identity: string | undefined): CheckBeforeWork {
  return (need) =>
    preflight(readPlan(need.manifests, { identity, target: need.target, objects: need.objects, tools: need.tools }));
}

/** Run every check of a plan; throws ConfigError on the first problem. */
export async function preflight(plan: Plan): Promise<void> {
  const seen = new Map<string, ToolNeed>();
  for (const t of plan.tools) if (!seen.has(t.cmd)) seen.set(t.cmd, t);
  const floored = [...seen.values()].filter((t) => t.atLeastServerMajor === true);
  // The server's answers are asked while the programs run their `--version` (each question is a
  // client's start and a connection, the programs' runs are process starts: waiting for one
  // before starting the other only added their times). The problems are still reported in the
  // same order: a program's first, then --identity's, then the server's.
  const server = plan.server;
  const toolProblem = server?.driver.serverToolProblem?.(server.url, server.purpose);
  const serverMajor = floored.length > 0 ? server?.driver.serverMajor?.(server.url, server.purpose) : undefined;
  // Not awaited when an earlier check throws: never an unhandled rejection then.
  void toolProblem?.catch(() => undefined);
  void serverMajor?.catch(() => undefined);
  const versions = new Map<string, number | undefined>();
  await Promise.all(
    [...seen.values()].map(async (t) => {
      versions.set(t.cmd, await checkRuns(t));
    }),
  );
  if (plan.identity !== undefined) await checkIdentityFile(plan.identity);
  const keyFile = plan.keyFile;
  if (keyFile?.encryption.scheme === EncryptionScheme.GPG) await checkGpgIdentityFile(keyFile.file, keyFile.encryption);
  if (keyFile?.encryption.scheme === EncryptionScheme.OPENSSL) opensslKeyFile(keyFile.file);
  // The engine's own rule of tools against the server (MySQL/MariaDB: lib/core/versions.ts).
  const problem = await toolProblem;
  if (problem !== undefined) throw new ConfigError(problem);
  if (floored.length === 0) return;
  for (const t of floored) {
    const made = plan.madeWith?.pg_dump;
    const madeMajor = made !== undefined ? majorOf(made) : undefined;
    const have = versions.get(t.cmd);
    if (t.label === 'pg_restore' && madeMajor !== undefined && have !== undefined && have < madeMajor) {
      throw new ConfigError(
        `${t.label} ${have} (${t.cmd}) cannot read an archive made by pg_dump ${made}; ` +
          `install the PostgreSQL client tools of version ${madeMajor} or newer.`,
      );
    }
  }
  if (server === undefined || serverMajor === undefined) return;
  const major = await serverMajor;
  if (major === undefined) {
    const display = server.url.display;
    log.debug('could not ask the server its version before the run; the session will report why', { server: display });
    return;
  }
  for (const t of floored) {
    const have = versions.get(t.cmd);
    if (have !== undefined && have < major) {
      throw new ConfigError(
        `${t.label} ${have} (${t.cmd}) is older than the PostgreSQL ${major} server at ${server.url.display}; ` +
          `${t.fix ?? `install ${t.label} ${major} or newer`}.`,
      );
    }
  }
}

function majorOf(version: string): number | undefined {
  const m = /(\d+)(?:\.\d+)*/.exec(version);
  return m === null ? undefined : Number(m[1]);
}

/** `TOOL --version` must exit 0 in time; returns the major version it printed, if any. */
async function checkRuns(t: ToolNeed): Promise<number | undefined> {
  const fix = t.fix !== undefined ? ` Fix: ${t.fix}.` : '';
  const found = t.cmd.includes('/') ? (fs.existsSync(t.cmd) ? t.cmd : undefined) : findTool([t.cmd]);
  if (found === undefined) {
    throw new ConfigError(
      `${t.label} is not installed or not on PATH (looked for '${t.cmd}'); it is needed for ${t.why}.${fix}`,
    );
  }
  const versionArgs = t.versionArgs ?? ['--version'];
  let out: string;
  try {
    // Shared with the engine that records the tool's version (one run of `TOOL --version` per process).
    out = await versionOutput(t.cmd, versionArgs, t.label, VERSION_TIMEOUT_MS);
  } catch (e) {
    const why = (e as Error).message;
    throw new ConfigError(
      `${t.label} (${t.cmd}) does not run: '${t.label} ${versionArgs.join(' ')}' failed (${why}); ` +
        `it is needed for ${t.why}.${fix}`,
    );
  }
  // pg_dump prints `pg_dump (PostgreSQL) 15.4`; the number after the name's parenthesis is its version.
  const line = out.split('\n')[0] ?? '';
  return majorOf(line.replace(/^[^\d]*?\)\s*/, '').replace(/^[^\d]*/, ''));
}
