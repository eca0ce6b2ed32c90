import {
  DEFAULT_LEFTOVER_HOURS,
  DEFAULT_STALL_TIMEOUT_SECONDS,
  OptionKind,
  OptionSpec,
  optionSpec,
  RUNNER_OPTIONS,
  RunnerCommand,
} from '../../lib/core/contract';
import { DEFAULT_COMPRESSION } from '../../lib/core/codecs';
import { defaultMethod, ENGINE_CAPABILITIES, engineCapabilityLines, LogShipping } from '../../lib/core/engines';
import { parseDurationSeconds } from '../../lib/core/duration';
import { ConfigError } from '../../lib/core/errors';
import { BackupMethod, BackupType, Compression, Engine, RetentionTier } from '../../lib/core/model';
import { parseTierDays } from '../../lib/core/retention';
import {
  EncryptionScheme,
  EncryptionSpec,
  parseEncryption,
  parseSourceUrl,
  parseStorageUrl,
  redact,
  SourceUrl,
  StorageKind,
  StorageUrl,
} from '../../lib/core/urls';
import { parseReport, ReportConfig } from './report/config';

/** Settings every pipeline of a run shares (set once from the command line). */
export const pipelineSettings = {
  /** Seconds without a byte moving after which a pipeline is stopped as stalled (0: never). */
  stallTimeoutSeconds: DEFAULT_STALL_TIMEOUT_SECONDS,
};

/**
 * The expected-encryption policy of the run (--require-encryption): every manifest read is
 * held to it (catalog.ts readManifest), so no command and no engine can use one that fails it.
 */
export const manifestPolicy: { requireEncryption?: EncryptionScheme } = {};

/** Which stored backup a command works on. */
export type Selector =
  | { readonly kind: 'latest'; readonly database?: string }
  | { readonly kind: 'id'; readonly id: string }
  | { readonly kind: 'all'; readonly database?: string };

export interface BackupConfig {
  readonly command: RunnerCommand.BACKUP;
  readonly engine: Engine;
  readonly source: SourceUrl;
  readonly to: StorageUrl;
  readonly type: BackupType;
  readonly method: BackupMethod;
  readonly compression: Compression;
  readonly encryption: EncryptionSpec;
  readonly tier?: RetentionTier;
  /** Days each tier's lifecycle rule keeps a backup (--tier-days), when known. */
  readonly tierDays?: Partial<Record<RetentionTier, number>>;
  readonly lockWaitSeconds: number;
  /** Seconds to wait for another session's table lock (pg_dump --lock-wait-timeout, lock_wait_timeout). */
  readonly lockTimeoutSeconds: number;
  /** --max-replica-lag: the most a replica source may lag behind its primary, before and after the dump. */
  readonly maxReplicaLagSeconds?: number;
  /** file://: hours after which what a killed run left is removed (--leftover-hours). */
  readonly leftoverHours: number;
  /** --jobs N: parallel jobs of the dump tool (undefined: the rule of lib/core/parallel.ts). */
  readonly jobs?: number;
  /** --row-counts: exact counts in the dump's snapshot, or the planner's estimates. */
  readonly rowCounts: RowCounts;
  readonly json: boolean;
}

/** How the manifest's row counts are taken (--row-counts). */
export enum RowCounts {
  EXACT = 'exact',
  ESTIMATE = 'estimate',
}

export interface RestoreConfig {
  readonly command: RunnerCommand.RESTORE;
  readonly from: StorageUrl;
  readonly selector: Selector;
  readonly toTime?: Date;
  /** `--to-time latest` (PostgreSQL --target-dir): the end of the archived WAL, its streamed partial included. */
  readonly toLatest?: boolean;
  readonly target?: SourceUrl;
  readonly targetDir?: string;
  readonly identity?: string;
  readonly withGlobals: boolean;
  readonly clean: boolean;
  /** --jobs N: parallel jobs of the restore tool (undefined: the rule of lib/core/parallel.ts). */
  readonly jobs?: number;
  readonly json: boolean;
}

export interface VerifyConfig {
  readonly command: RunnerCommand.VERIFY;
  readonly from: StorageUrl;
  readonly selector: Selector;
  readonly deep: boolean;
  readonly identity?: string;
  readonly json: boolean;
}

export interface ListConfig {
  readonly command: RunnerCommand.LIST;
  readonly from: StorageUrl;
  readonly json: boolean;
}

export interface PruneConfig {
  readonly command: RunnerCommand.PRUNE;
  readonly from: StorageUrl;
  readonly keepDaily: number;
  readonly keepWeekly: number;
  readonly keepMonthly: number;
  readonly dryRun: boolean;
  /** Hours after which what a killed run left is removed (--leftover-hours). */
  readonly leftoverHours: number;
  readonly json: boolean;
}

export interface DrillConfig {
  readonly command: RunnerCommand.DRILL;
  readonly from: StorageUrl;
  readonly target: SourceUrl;
  readonly identity?: string;
  /** The database (id or name) whose newest backup is drilled, when the store holds several. */
  readonly database?: string;
  /** --drill-seed: the seed of the point-in-time drill's random moment. */
  readonly seed?: string;
  /** --jobs N for the drill's restore. */
  readonly jobs?: number;
  readonly json: boolean;
}

/** `runbook --from STORAGE_URL (--latest | --id ID)`: the restore runbook of a stored backup. */
export interface RunbookConfig {
  readonly command: RunnerCommand.RUNBOOK;
  readonly from: StorageUrl;
  readonly selector: Selector;
  /** The target the commands name (a placeholder when not given). */
  readonly target?: SourceUrl;
}

/** `wal-push %p --to STORAGE_URL`: PostgreSQL's archive_command. */
export interface WalPushConfig {
  readonly command: RunnerCommand.WAL_PUSH;
  /** The file to archive (`%p`, relative to the data directory PostgreSQL runs the command in). */
  readonly file: string;
  readonly to: StorageUrl;
  readonly compression: Compression;
  readonly encryption: EncryptionSpec;
}

/** `wal-fetch %f %p --from STORAGE_URL`: PostgreSQL's restore_command. */
export interface WalFetchConfig {
  readonly command: RunnerCommand.WAL_FETCH;
  /** The WAL file name asked for (`%f`). */
  readonly file: string;
  /** Where to put it (`%p`). */
  readonly dest: string;
  readonly from: StorageUrl;
  readonly identity?: string;
  /** --abort-recovery: failures other than "not in the archive" and damage exit 128 + code. */
  readonly abortRecovery: boolean;
}

/** `binlog-stream --source URL --to STORAGE_URL`: the MySQL/MariaDB binary log shipper. */
export interface BinlogStreamConfig {
  readonly command: RunnerCommand.BINLOG_STREAM;
  readonly engine: Engine;
  readonly source: SourceUrl;
  readonly to: StorageUrl;
  readonly compression: Compression;
  readonly encryption: EncryptionSpec;
}

/** `wal-receive --source postgres://… --to STORAGE_URL`: PostgreSQL's streaming WAL shipper (pg_receivewal). */
export interface WalReceiveConfig {
  readonly command: RunnerCommand.WAL_RECEIVE;
  readonly source: SourceUrl;
  readonly to: StorageUrl;
  readonly compression: Compression;
  readonly encryption: EncryptionSpec;
  readonly slot: string;
  readonly createSlot: boolean;
  readonly synchronous: boolean;
  /** Milliseconds between uploads of the segment being received. */
  readonly partialIntervalMs: number;
  readonly spoolDir?: string;
}

/** A duration given as seconds (`5`) or with a unit (`500ms`, `5s`, `1m`), in milliseconds. */
export function parseInterval(raw: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  const ms = m === null ? NaN : Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60000 : 1000);
  if (!Number.isFinite(ms) || ms < 100 || ms > 3600000)
    throw new ConfigError(
      `${what} '${redact(raw)}' is not a duration from 100ms to 60m; ` +
        'give seconds or a number with ms, s or m, e.g. 5s.',
    );
  return ms;
}

export type Invocation = (
  | BackupConfig
  | RestoreConfig
  | VerifyConfig
  | ListConfig
  | PruneConfig
  | DrillConfig
  | RunbookConfig
  | WalPushConfig
  | WalFetchConfig
  | BinlogStreamConfig
  | WalReceiveConfig
) & {
  /** --metrics-file, --notify (backup, restore, verify, drill): see report/. */
  readonly report?: ReportConfig;
};

/** `--help` was asked for: print this and exit 0. */
export class HelpRequest {
  constructor(public readonly text: string) {}
}

const COMMANDS = Object.values(RunnerCommand) as string[];

/**
 * Parse and validate a whole invocation: argv (without `node` and the script) and the
 * environment (every option also reads `DBBACKUP_<NAME>`; the command line wins).
 * Throws ConfigError naming the bad value and the fix, or returns a HelpRequest.
 */
export function parseInvocation(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Invocation | HelpRequest {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help')
    return new HelpRequest(usage());
  if (!COMMANDS.includes(command)) {
    throw new ConfigError(
      `unknown command '${redact(command)}'. Use one of: ${COMMANDS.join(', ')} (dbbackup --help lists them).`,
    );
  }
  const cmd = command as RunnerCommand;
  const specs = RUNNER_OPTIONS.filter((o) => o.commands.includes(cmd));
  const values: Record<string, string | number | boolean> = {};
  const positionals: string[] = [];

  // The environment first, the command line over it.
  for (const spec of specs) {
    const raw = env[spec.env];
    if (raw === undefined || raw === '') continue;
    values[spec.name] = convert(spec, raw, spec.env);
  }
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === '--help' || arg === '-h') return new HelpRequest(usage(cmd));
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs.find((s) => s.name === name);
    if (spec === undefined) {
      const other = RUNNER_OPTIONS.find((s) => s.name === name);
      throw new ConfigError(
        other !== undefined
          ? `option --${name} does not go with '${cmd}' (it is for: ${other.commands.join(', ')}). Options of ` +
              `${cmd}: ${specs.map((s) => '--' + s.name).join(' ')}.`
          : `unknown option --${name} for '${cmd}'. Options of ${cmd}: ${specs.map((s) => '--' + s.name).join(' ')}.`,
      );
    }
    if (spec.kind === OptionKind.FLAG) {
      values[name] = eq < 0 ? true : convert(spec, arg.slice(eq + 1), `--${name}`);
      continue;
    }
    let raw: string | undefined;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else {
      raw = rest[++i];
      if (raw === undefined || (raw.startsWith('--') && raw.length > 2)) {
        throw new ConfigError(`option --${name} needs a value (${spec.help}).`);
      }
    }
    values[name] = convert(spec, raw, `--${name}`);
  }
  // One setting for every pipeline of the run (proc.ts).
  if (values['stall-timeout'] !== undefined) pipelineSettings.stallTimeoutSeconds = values['stall-timeout'] as number;
  manifestPolicy.requireEncryption = values['require-encryption'] as EncryptionScheme | undefined;
  const inv = build(cmd, values, positionals);
  const report = parseReport(values);
  return report === undefined ? inv : { ...inv, report };
}

function convert(spec: OptionSpec, raw: string, where: string): string | number | boolean {
  switch (spec.kind) {
    case OptionKind.FLAG:
      if (/^(true|1|yes)$/i.test(raw)) return true;
      if (/^(false|0|no)$/i.test(raw)) return false;
      throw new ConfigError(`${where} is '${redact(raw)}'; use true or false.`);
    case OptionKind.INTEGER: {
      if (!/^\d+$/.test(raw)) throw new ConfigError(`${where} is '${redact(raw)}'; use a whole number, 0 or more.`);
      return Number(raw);
    }
    default:
      if (spec.choices !== undefined && !spec.choices.includes(raw)) {
        throw new ConfigError(`${where} is '${redact(raw)}'; use one of: ${spec.choices.join(', ')}.`);
      }
      return raw;
  }
}

function leftoverHours(v: Record<string, unknown>): number {
  const hours = (v['leftover-hours'] as number | undefined) ?? DEFAULT_LEFTOVER_HOURS;
  if (hours < 1) {
    throw new ConfigError(
      `--leftover-hours is ${hours}; give 1 or more (a run on another host that is still writing must not be taken ` +
        'for a leftover).',
    );
  }
  return hours;
}

/** --jobs N: 1 or more (0 is refused: it would mean no job at all). */
function jobsOf(values: Record<string, unknown>): number | undefined {
  const jobs = values.jobs as number | undefined;
  if (jobs === 0) throw new ConfigError(`--jobs is '0'; give 1 or more (1: one stream, no local spool).`);
  return jobs;
}

/**
 * Refuse an option given (on the command line or in its variable) for an engine its table entry
 * does not list (`engines` in lib/core/contract.ts), where the command knows the engine: rather than
 * ignored, as MongoDB would ignore --jobs 4 or --row-counts. `otherEnginesTake` is still taken.
 */
function checkOptionEngines(cmd: RunnerCommand, values: Record<string, unknown>, engine: Engine | undefined): void {
  if (engine === undefined) return;
  for (const spec of RUNNER_OPTIONS) {
    const value = values[spec.name];
    if (spec.engines === undefined || spec.engines.includes(engine) || !spec.commands.includes(cmd)) continue;
    if (value === undefined || String(value) === spec.otherEnginesTake) continue;
    const labels = spec.engines.map((e) => ENGINE_CAPABILITIES[e].label).join(' and ');
    const also = spec.otherEnginesTake !== undefined ? `, or give --${spec.name} ${spec.otherEnginesTake}` : '';
    throw new ConfigError(
      `--${spec.name} is '${redact(String(value))}', but it applies to ${labels} only, not to ` +
        `${ENGINE_CAPABILITIES[engine].label} (the ${engine} ${cmd} here); leave --${spec.name} (and ${spec.env}) ` +
        `out${also}.`,
    );
  }
}

function need(values: Record<string, unknown>, cmd: string, name: string): string {
  const v = values[name];
  if (v === undefined) {
    const spec = RUNNER_OPTIONS.find((s) => s.name === name)!;
    throw new ConfigError(`'${cmd}' needs --${name} (or ${spec.env}): ${spec.help}.`);
  }
  return String(v);
}

function selector(values: Record<string, unknown>, cmd: string, allowAll: boolean): Selector {
  const chosen = (['latest', 'id', 'all'] as const).filter((k) => values[k] !== undefined && values[k] !== false);
  if (chosen.length !== 1) {
    const opts = allowAll ? '--latest, --id ID or --all' : '--latest or --id ID';
    throw new ConfigError(
      chosen.length === 0
        ? `'${cmd}' needs one of ${opts} to say which backup.`
        : `'${cmd}' takes one of ${opts}, not ${chosen.map((c) => '--' + c).join(' and ')}.`,
    );
  }
  if (chosen[0] === 'id') {
    const id = String(values.id);
    checkBackupId(id);
    return { kind: 'id', id };
  }
  return { kind: chosen[0], database: values.database as string | undefined };
}

/**
 * A backup id as `dbbackup list` prints them: letters, digits, '.', '_' and '-', starting with
 * a letter or digit (so never '.', '..' or a hidden name), at most 200 characters.
 */
export function checkBackupId(id: string, what = '--id'): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/.test(id)) {
    throw new ConfigError(
      `${what} '${redact(id)}' is not a backup id (letters, digits, '.', '_' and '-', starting with a letter or ` +
        'digit); ' +
        "'dbbackup list' shows them.",
    );
  }
}

/**
 * A full ISO-8601 moment with a zone: date, 'T', hours and minutes (seconds and fractions
 * optional), then 'Z' or an offset. A bare date, a time without a zone or words are refused:
 * they would be read in whatever zone the runner happens to run in.
 */
export function parseMoment(raw: string, what: string): Date {
  const date = String.raw`(\d{4})-(\d{2})-(\d{2})`;
  const time = String.raw`(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?`;
  const zone = String.raw`(?:([Zz])|([+-])(\d{2}):?(\d{2}))`;
  const m = new RegExp(`^${date}[Tt ]${time}${zone}$`).exec(raw);
  const fix = 'use a full ISO-8601 moment with a zone, e.g. 2026-11-25T04:30:00Z or 2026-11-25T05:30:00+01:00';
  if (m === null) throw new ConfigError(`${what} '${redact(raw)}' is not a full ISO-8601 moment with a zone; ${fix}.`);
  const [, y, mo, d, h, mi, sec = '0', frac = '', , sign, oh = '0', om = '0'] = m;
  const fields = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)];
  const utc = new Date(Date.UTC(fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]));
  const real =
    utc.getUTCFullYear() === fields[0] &&
    utc.getUTCMonth() === fields[1] &&
    utc.getUTCDate() === fields[2] &&
    utc.getUTCHours() === fields[3] &&
    utc.getUTCMinutes() === fields[4] &&
    utc.getUTCSeconds() === fields[5];
  if (!real || Number(oh) > 23 || Number(om) > 59) {
    throw new ConfigError(`${what} '${redact(raw)}' is not a real moment (check the day, hour and offset); ${fix}.`);
  }
  const offsetMinutes = sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  const ms = frac === '' ? 0 : Math.floor(Number(frac) * 1000);
  return new Date(utc.getTime() + ms - offsetMinutes * 60000);
}

function build(cmd: RunnerCommand, v: Record<string, string | number | boolean>, positionals: string[]): Invocation {
  const json = v.json === true;
  const noPositionals = () => {
    if (positionals.length > 0)
      throw new ConfigError(`'${cmd}' takes no argument '${redact(positionals[0])}'; options start with --.`);
  };
  switch (cmd) {
    case RunnerCommand.BACKUP: {
      noPositionals();
      const engine = need(v, cmd, 'engine') as Engine;
      const source = parseSourceUrl(need(v, cmd, 'source'), '--source', engine);
      checkOptionEngines(cmd, v, engine);
      const to = parseStorageUrl(need(v, cmd, 'to'), '--to');
      const type = (v.type as BackupType | undefined) ?? BackupType.FULL;
      // The engine's record says its methods (PostgreSQL incrementals: physical unless said otherwise).
      const method = (v.method as BackupMethod | undefined) ?? defaultMethod(engine, type);
      if (!ENGINE_CAPABILITIES[engine].methods.includes(method)) {
        const methods = ENGINE_CAPABILITIES[engine].methods;
        throw new ConfigError(
          `--method ${method} is not available for engine '${engine}'; it takes --method ${methods.join(' or ')}.`,
        );
      }
      const cfg: BackupConfig = {
        command: cmd,
        engine,
        source,
        to,
        type,
        method,
        compression: (v.compression as Compression | undefined) ?? DEFAULT_COMPRESSION,
        encryption: parseEncryption(String(v.encrypt ?? 'none')),
        tier: v.tier as RetentionTier | undefined,
        tierDays: v['tier-days'] !== undefined ? parseTierDays(String(v['tier-days'])) : undefined,
        lockWaitSeconds: (v['lock-wait'] as number | undefined) ?? 0,
        lockTimeoutSeconds: (v['lock-timeout'] as number | undefined) ?? 60,
        maxReplicaLagSeconds:
          v['max-replica-lag'] !== undefined
            ? parseDurationSeconds(String(v['max-replica-lag']), `--max-replica-lag`)
            : undefined,
        leftoverHours: leftoverHours(v),
        jobs: jobsOf(v),
        rowCounts: (v['row-counts'] as RowCounts | undefined) ?? RowCounts.EXACT,
        json,
      };
      const required = v['require-encryption'] as EncryptionScheme | undefined;
      if (required !== undefined && cfg.encryption.scheme !== required) {
        throw new ConfigError(
          `--encrypt ${cfg.encryption.scheme === EncryptionScheme.NONE ? 'none' : `${cfg.encryption.scheme}:…`} ` +
            `does not use the scheme --require-encryption ${required} requires; give --encrypt ${required}:….`,
        );
      }
      return cfg;
    }
    case RunnerCommand.RESTORE: {
      noPositionals();
      const from = parseStorageUrl(need(v, cmd, 'from'), '--from');
      const target = v.target !== undefined ? parseSourceUrl(String(v.target), '--target') : undefined;
      // A --target-dir restore learns its engine from the manifest, after parsing.
      checkOptionEngines(cmd, v, target?.engine);
      const targetDir = v['target-dir'] as string | undefined;
      if (target === undefined && targetDir === undefined) {
        throw new ConfigError(
          `'restore' needs --target URL (a database to restore into) or --target-dir DIR (for a physical backup).`,
        );
      }
      const toLatest = v['to-time'] === 'latest';
      if (toLatest && targetDir === undefined)
        throw new ConfigError(
          '--to-time latest restores a PostgreSQL data directory to the end of its WAL archive ' +
            'and needs --target-dir DIR; ' +
            'for a --target URL give a moment (ISO-8601 with a zone).',
        );
      const toTime =
        v['to-time'] !== undefined && !toLatest ? parseMoment(String(v['to-time']), '--to-time') : undefined;
      const latest: Selector = { kind: 'latest', database: v.database as string | undefined };
      const sel: Selector =
        (toTime !== undefined || toLatest) && v.latest === undefined && v.id === undefined
          ? latest
          : selector(v, cmd, false);
      return {
        command: cmd,
        from,
        selector: sel,
        toTime,
        ...(toLatest ? { toLatest } : {}),
        target,
        targetDir,
        identity: v.identity as string | undefined,
        withGlobals: v['with-globals'] === true,
        clean: v.clean === true,
        jobs: jobsOf(v),
        json,
      };
    }
    case RunnerCommand.VERIFY:
      noPositionals();
      return {
        command: cmd,
        from: parseStorageUrl(need(v, cmd, 'from'), '--from'),
        selector: selector(v, cmd, true),
        deep: v.deep === true,
        identity: v.identity as string | undefined,
        json,
      };
    case RunnerCommand.LIST:
      noPositionals();
      return { command: cmd, from: parseStorageUrl(need(v, cmd, 'from'), '--from'), json };
    case RunnerCommand.PRUNE: {
      noPositionals();
      const from = parseStorageUrl(need(v, cmd, 'from'), '--from');
      if (from.kind !== StorageKind.FILE) {
        throw new ConfigError(
          `prune works on file:// storage only; '${from.display}' is ${from.kind} storage, where the bucket's ` +
            'lifecycle rules expire each retention tier (the runner never deletes there).',
        );
      }
      const keep = (name: string) => Number(need(v, cmd, name));
      const cfg: PruneConfig = {
        command: cmd,
        from,
        keepDaily: keep('keep-daily'),
        keepWeekly: keep('keep-weekly'),
        keepMonthly: keep('keep-monthly'),
        dryRun: v['dry-run'] === true,
        leftoverHours: leftoverHours(v),
        json,
      };
      if (cfg.keepDaily + cfg.keepWeekly + cfg.keepMonthly === 0) {
        throw new ConfigError(
          'prune with --keep-daily 0 --keep-weekly 0 --keep-monthly 0 would delete every backup; keep at least one.',
        );
      }
      return cfg;
    }
    case RunnerCommand.DRILL: {
      noPositionals();
      const from = parseStorageUrl(need(v, cmd, 'from'), '--from');
      const target = parseSourceUrl(need(v, cmd, 'target'), '--target');
      checkOptionEngines(cmd, v, target.engine);
      return {
        command: cmd,
        from,
        target,
        identity: v.identity as string | undefined,
        database: v.database as string | undefined,
        seed: v['drill-seed'] as string | undefined,
        jobs: jobsOf(v),
        json,
      };
    }
    case RunnerCommand.RUNBOOK:
      noPositionals();
      return {
        command: cmd,
        from: parseStorageUrl(need(v, cmd, 'from'), '--from'),
        selector: selector(v, cmd, false),
        target: v.target !== undefined ? parseSourceUrl(String(v.target), '--target') : undefined,
      };
    case RunnerCommand.WAL_PUSH: {
      if (positionals.length !== 1) {
        throw new ConfigError(
          `'wal-push' takes one file, the %p of archive_command, not ` +
            `${positionals.length === 0 ? 'none' : positionals.map((p) => `'${redact(p)}'`).join(' ')}. Use ` +
            `archive_command = 'dbbackup wal-push %p --to STORAGE_URL'.`,
        );
      }
      return {
        command: cmd,
        file: positionals[0],
        to: parseStorageUrl(need(v, cmd, 'to'), '--to'),
        compression: (v.compression as Compression | undefined) ?? DEFAULT_COMPRESSION,
        encryption: parseEncryption(String(v.encrypt ?? 'none')),
      };
    }
    case RunnerCommand.WAL_FETCH: {
      if (positionals.length !== 2) {
        throw new ConfigError(
          `'wal-fetch' takes two arguments, %f and %p of restore_command, not ` +
            `${positionals.length === 0 ? 'none' : positionals.map((p) => `'${redact(p)}'`).join(' ')}. Use ` +
            `restore_command = 'dbbackup wal-fetch %f %p --from STORAGE_URL --abort-recovery'.`,
        );
      }
      return {
        command: cmd,
        file: positionals[0],
        dest: positionals[1],
        from: parseStorageUrl(need(v, cmd, 'from'), '--from'),
        identity: v.identity as string | undefined,
        abortRecovery: v['abort-recovery'] === true,
      };
    }
    case RunnerCommand.BINLOG_STREAM: {
      noPositionals();
      const engine = (v.engine as Engine | undefined) ?? Engine.MYSQL;
      if (ENGINE_CAPABILITIES[engine]?.logShipping !== LogShipping.BINLOG)
        throw new ConfigError(
          `binlog-stream ships MySQL/MariaDB binary logs; --engine is '${engine}'. Use --engine mysql (PostgreSQL ` +
            `archives with archive_command = 'dbbackup wal-push %p --to …').`,
        );
      return {
        command: cmd,
        engine,
        source: parseSourceUrl(need(v, cmd, 'source'), '--source', engine),
        to: parseStorageUrl(need(v, cmd, 'to'), '--to'),
        compression: (v.compression as Compression | undefined) ?? DEFAULT_COMPRESSION,
        encryption: parseEncryption(String(v.encrypt ?? 'none')),
      };
    }
    case RunnerCommand.WAL_RECEIVE: {
      noPositionals();
      const source = parseSourceUrl(need(v, cmd, 'source'), '--source');
      if (source.engine !== Engine.POSTGRES)
        throw new ConfigError(
          `wal-receive streams PostgreSQL's WAL; --source '${source.display}' is ${source.engine}. ` +
            'Use binlog-stream for MySQL/MariaDB.',
        );
      const slot = String(v.slot ?? optionSpec('slot')!.default);
      if (!/^[a-z0-9_]{1,63}$/.test(slot))
        throw new ConfigError(
          `--slot '${redact(slot)}' is not a replication slot name PostgreSQL takes; ` +
            'use lower-case letters, digits and underscores (at most 63), e.g. dbbackup.',
        );
      return {
        command: cmd,
        source,
        to: parseStorageUrl(need(v, cmd, 'to'), '--to'),
        compression: (v.compression as Compression | undefined) ?? DEFAULT_COMPRESSION,
        encryption: parseEncryption(String(v.encrypt ?? 'none')),
        slot,
        createSlot: v['create-slot'] === true,
        synchronous: v.synchronous === true,
        partialIntervalMs: parseInterval(
          String(v['partial-interval'] ?? optionSpec('partial-interval')!.default),
          '--partial-interval',
        ),
        spoolDir: v['spool-dir'] as string | undefined,
      };
    }
    case RunnerCommand.SCHEDULE:
      // commands/schedule.ts parses it: it splits its own options from those of the job it runs.
      throw new ConfigError(
        `'schedule' takes a scheduler first: dbbackup schedule systemd|cron [backup|drill|verify] --calendar SPEC ….`,
      );
  }
}

/** The commands whose `--help` lists each engine's capabilities. */
const ENGINE_HELP_COMMANDS: readonly RunnerCommand[] = [RunnerCommand.BACKUP, RunnerCommand.RESTORE];

/** The help text: every command and option, from the contract table, and each engine's record. */
export function usage(cmd?: RunnerCommand): string {
  const lines = [
    'dbbackup: backups of PostgreSQL, MySQL/MariaDB and MongoDB to file://, s3:// and gs:// storage',
    '',
    'Usage:',
    '  dbbackup backup  --engine postgres|mysql|mongodb --source URL --to STORAGE_URL [options]',
    '  dbbackup restore --from STORAGE_URL (--latest | --id ID) [--to-time ISO-8601] --target URL [options]',
    '  dbbackup verify  --from STORAGE_URL (--latest | --id ID | --all) [--deep [--identity FILE]]',
    '  dbbackup list    --from STORAGE_URL [--json]',
    '  dbbackup prune   --from file:///DIR --keep-daily N --keep-weekly N --keep-monthly N [--dry-run]',
    '  dbbackup drill   --from STORAGE_URL --target URL',
    '  dbbackup runbook --from STORAGE_URL (--latest | --id ID) [--target URL]   (the restore runbook, markdown)',
    '  dbbackup restore --from STORAGE_URL --to-time ISO-8601 --target-dir DIR   (PostgreSQL: base backup + WAL ' +
      'archive)',
    '  dbbackup wal-push %p --to STORAGE_URL          (PostgreSQL archive_command)',
    '  dbbackup wal-fetch %f %p --from STORAGE_URL --abort-recovery   (PostgreSQL restore_command)',
    '  dbbackup binlog-stream --source mysql://… --to STORAGE_URL   (MySQL/MariaDB binary log shipper)',
    '  dbbackup wal-receive --source postgres://… --to STORAGE_URL  (PostgreSQL streaming WAL shipper)',
    '  dbbackup schedule systemd|cron [backup|drill|verify] --calendar SPEC [its options] [--out DIR]',
    '',
    'Passwords never go on the command line: DBBACKUP_SOURCE_PASSWORD / DBBACKUP_TARGET_PASSWORD or',
    "the engine's own variable (PGPASSWORD, MYSQL_PWD). Exit codes: 0 ok, 1 failed, 2 bad usage, 3 damaged backup.",
    '',
  ];
  if (cmd === undefined || ENGINE_HELP_COMMANDS.includes(cmd)) {
    // What each engine takes, from its record in lib/core/engines.ts (the parser checks the same).
    lines.push('Engines (methods, backup types, point-in-time restore, log shipping):', ...engineCapabilityLines(), '');
  }
  lines.push('Options (each also read from its environment variable):');
  for (const o of RUNNER_OPTIONS.filter((s) => cmd === undefined || s.commands.includes(cmd))) {
    const flag = `--${o.name}${o.kind === OptionKind.FLAG ? '' : o.kind === OptionKind.INTEGER ? ' N' : ' VALUE'}`;
    const def = o.default !== undefined ? ` (default ${o.default})` : '';
    const engines = o.engines !== undefined ? ` [engines: ${o.engines.join(', ')}]` : '';
    const commands = cmd === undefined ? ` [${o.commands.join(', ')}]` : '';
    lines.push(`  ${flag.padEnd(24)} ${o.env.padEnd(28)} ${o.help}${def}${engines}${commands}`);
  }
  return lines.join('\n');
}
