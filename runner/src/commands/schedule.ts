// dbbackup schedule systemd|cron [backup|drill|verify] --calendar SPEC [that command's options]
//   [--out DIR] [--name NAME] [--user USER] [--exec PATH] [--randomized-delay S] [--database-id ID]
//
// Renders the files that run a backup, a drill or a verify on a plain host: a systemd service +
// timer pair, or an /etc/cron.d file with a lock (flock -n) and logging (logger). The job's options
// are parsed by the runner's own parser first (so a job that would fail on bad usage is refused
// now, exit 2), then rendered from the option table: Environment=DBBACKUP_… lines for systemd,
// the command line for cron. Secrets never go into a unit or the cron line: the source/target
// password and the --notify URL (it may carry a token) go into an environment file of mode 0600.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  OptionKind,
  optionSpec,
  renderRunnerEnvironment,
  RUNNER_ENV,
  RUNNER_OPTIONS,
  RunnerCommand,
  SECRET_ENV,
} from '../../../lib/core/contract';
import { ConfigError } from '../../../lib/core/errors';
import { StorageKind } from '../../../lib/core/urls';
import { HelpRequest, Invocation, parseInvocation, usage } from '../config';
import { webhookDisplay } from '../report/config';

export enum ScheduleKind {
  SYSTEMD = 'systemd',
  CRON = 'cron',
}

/** The commands a schedule can run. */
export const SCHEDULABLE: readonly RunnerCommand[] = [RunnerCommand.BACKUP, RunnerCommand.DRILL, RunnerCommand.VERIFY];

/** Options whose value may carry a token: rendered into the 0600 environment file, never a unit. */
const SECRET_OPTIONS = new Set(['notify']);

export interface ScheduleConfig {
  readonly command: RunnerCommand.SCHEDULE;
  readonly kind: ScheduleKind;
  /** The scheduled command and its parsed configuration. */
  readonly job: Invocation;
  /** The job's options as given (name → value), in the order given. */
  readonly settings: Readonly<Record<string, string | boolean>>;
  readonly calendar: string;
  readonly out?: string;
  readonly name: string;
  readonly user: string;
  /** The program and its script: [node, dbbackup.js] by default. */
  readonly exec: readonly string[];
  readonly randomizedDelaySeconds: number;
  readonly databaseId?: string;
}

/** One file to write (or print). */
export interface ScheduleFile {
  readonly name: string;
  readonly mode: number;
  readonly text: string;
  /** Never overwrite it (the environment file, once an administrator filled in the secrets). */
  readonly keepExisting: boolean;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\x00-\x1f\x7f]/;

function plain(value: string, what: string): string {
  if (CONTROL.test(value)) {
    throw new ConfigError(`${what} holds a control character (a line break?); it cannot go into a unit or cron file.`);
  }
  return value;
}

/**
 * Parse `schedule …` (argv after the word `schedule`). The job's options come from the command line
 * only; schedule's own also from their DBBACKUP_… variables.
 */
export function parseSchedule(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ScheduleConfig | HelpRequest {
  const [kindRaw, ...rest] = argv;
  if (kindRaw === undefined || kindRaw === '--help' || kindRaw === '-h') return new HelpRequest(scheduleUsage());
  if (!(Object.values(ScheduleKind) as string[]).includes(kindRaw)) {
    throw new ConfigError(
      `schedule '${plain(kindRaw, 'the scheduler')}' is not a scheduler; ` +
        `use 'dbbackup schedule systemd …' or 'dbbackup schedule cron …'.`,
    );
  }
  const kind = kindRaw as ScheduleKind;
  let jobCommand = RunnerCommand.BACKUP;
  let i = 0;
  if (rest[0] !== undefined && !rest[0].startsWith('--')) {
    if (!(SCHEDULABLE as string[]).includes(rest[0])) {
      throw new ConfigError(
        `schedule ${kind} '${plain(rest[0], 'the job')}': ` +
          `a schedule runs one of ${SCHEDULABLE.join(', ')} (default backup).`,
      );
    }
    jobCommand = rest[0] as RunnerCommand;
    i = 1;
  }
  const own = RUNNER_OPTIONS.filter((o) => o.commands.includes(RunnerCommand.SCHEDULE));
  const ownValues: Record<string, string> = {};
  for (const spec of own) {
    const raw = env[spec.env];
    if (raw !== undefined && raw !== '') ownValues[spec.name] = raw;
  }
  const jobArgs: string[] = [];
  const settings: Record<string, string | boolean> = {};
  for (; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === '--help' || arg === '-h') return new HelpRequest(scheduleUsage());
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') ? arg.slice(2, eq < 0 ? undefined : eq) : '';
    const ownSpec = own.find((s) => s.name === name);
    const jobSpec = optionSpec(name);
    const takesValue = (ownSpec ?? jobSpec)?.kind !== OptionKind.FLAG;
    let value: string | undefined;
    if (ownSpec !== undefined || jobSpec !== undefined) {
      value = eq >= 0 ? arg.slice(eq + 1) : takesValue ? rest[i + 1] : undefined;
    }
    if (ownSpec !== undefined) {
      if (value === undefined || (eq < 0 && value.startsWith('--'))) {
        throw new ConfigError(`option --${name} needs a value (${ownSpec.help}).`);
      }
      ownValues[name] = value;
      if (eq < 0) i++;
      continue;
    }
    // Everything else is the job's; its parser below names what is wrong with it.
    jobArgs.push(arg);
    if (jobSpec === undefined) continue;
    if (takesValue && eq < 0 && value !== undefined) {
      jobArgs.push(value);
      i++;
    }
    settings[name] = takesValue ? (value ?? '') : eq < 0 ? true : !/^(false|0|no)$/i.test(arg.slice(eq + 1));
  }
  // The job's own parser, with no environment: the files must say everything the job needs.
  let job: Invocation | HelpRequest;
  try {
    job = parseInvocation([jobCommand, ...jobArgs], {});
  } catch (e) {
    const ownNames = own.map((o) => '--' + o.name).join(' ');
    throw new ConfigError(`${(e as Error).message} (schedule's own options: ${ownNames}.)`);
  }
  if (job instanceof HelpRequest) return job;
  for (const [name, value] of Object.entries(settings)) if (typeof value === 'string') plain(value, `--${name}`);

  const calendar = ownValues.calendar;
  if (calendar === undefined) {
    throw new ConfigError(
      kind === ScheduleKind.SYSTEMD
        ? `'schedule systemd' needs --calendar SPEC, an OnCalendar= expression such as daily or '*-*-* 02:30:00'.`
        : `'schedule cron' needs --calendar SPEC, a 5-field cron expression such as '30 2 * * *'.`,
    );
  }
  const name = ownValues.name ?? defaultName(job);
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/.test(name)) {
    throw new ConfigError(
      `--name '${plain(name, '--name')}' is not a unit name; ` +
        `use letters, digits, '-' and '_' (cron.d skips names with a dot).`,
    );
  }
  const user = ownValues.user ?? 'dbbackup';
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) {
    throw new ConfigError(`--user '${plain(user, '--user')}' is not a system user name; use e.g. dbbackup.`);
  }
  const delay = ownValues['randomized-delay'] ?? '300';
  if (!/^\d+$/.test(delay)) {
    const shown = plain(delay, '--randomized-delay');
    throw new ConfigError(`--randomized-delay '${shown}' is not a number of seconds; use e.g. 300.`);
  }
  let out: string | undefined;
  if (ownValues.out !== undefined) {
    out = path.resolve(plain(ownValues.out, '--out'));
    if (!fs.statSync(out, { throwIfNoEntry: false })?.isDirectory()) {
      throw new ConfigError(`--out '${ownValues.out}' is not a directory; create it first.`);
    }
  }
  const rawId = ownValues['database-id'];
  const databaseId = rawId !== undefined ? plain(rawId, '--database-id') : undefined;
  const spec = plain(calendar, '--calendar');
  return {
    command: RunnerCommand.SCHEDULE,
    kind,
    job,
    settings,
    calendar: kind === ScheduleKind.SYSTEMD ? checkOnCalendar(spec) : checkCron(spec),
    out,
    name,
    user,
    exec: execOf(ownValues.exec),
    randomizedDelaySeconds: Number(delay),
    databaseId,
  };
}

function defaultName(job: Invocation): string {
  let db = 'store';
  if (job.command === RunnerCommand.BACKUP) db = job.source.database;
  else if (job.command === RunnerCommand.DRILL) db = job.target.database;
  else if (job.command === RunnerCommand.VERIFY) db = path.basename(job.from.path) || job.from.bucket || 'store';
  return `dbbackup-${job.command}-${db.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+/, '') || 'db'}`.slice(0, 100);
}

function execOf(raw: string | undefined): string[] {
  if (raw !== undefined) {
    plain(raw, '--exec');
    if (!path.isAbsolute(raw) || /\s/.test(raw)) {
      throw new ConfigError(`--exec '${raw}' must be an absolute path without spaces, e.g. /usr/local/bin/dbbackup.`);
    }
    return [raw];
  }
  // This very program, run by this very node: no PATH lookup at run time.
  const script = fs.realpathSync(process.argv[1]);
  for (const p of [process.execPath, script]) {
    if (/\s/.test(p) || CONTROL.test(p)) {
      throw new ConfigError(`this program's path '${p}' holds a space; give --exec /path/to/dbbackup.`);
    }
  }
  return [process.execPath, script];
}

const SYSTEMD_SHORTHANDS = [
  'minutely',
  'hourly',
  'daily',
  'weekly',
  'monthly',
  'quarterly',
  'semiannually',
  'yearly',
  'annually',
];

/**
 * An OnCalendar= expression: checked by `systemd-analyze calendar` when it is installed, else by
 * the shape of the common forms (shorthands, `[weekdays] [date] time`).
 */
export function checkOnCalendar(spec: string): string {
  const fix = `use a systemd calendar expression such as daily, 'Mon..Fri *-*-* 02:30:00' or '*-*-* 00/6:00'`;
  if (/^\s*(\S+\s+){4}\S+\s*$/.test(spec) && !spec.includes(':')) {
    throw new ConfigError(
      `--calendar '${spec}' looks like a cron expression; 'schedule systemd' takes OnCalendar= syntax: ${fix}.`,
    );
  }
  const r = spawnSync('systemd-analyze', ['calendar', spec], { encoding: 'utf8', timeout: 10_000 });
  if (r.error === undefined) {
    if (r.status === 0) return spec;
    const said = (r.stderr || r.stdout).trim();
    throw new ConfigError(`--calendar '${spec}' is not a calendar expression (systemd-analyze: ${said}); ${fix}.`);
  }
  const word = '[A-Za-z0-9*,./~:-]+';
  const shape = new RegExp(`^(${SYSTEMD_SHORTHANDS.join('|')}|(${word} ){0,2}${word})$`, 'i');
  if (!shape.test(spec.trim())) throw new ConfigError(`--calendar '${spec}' is not a calendar expression; ${fix}.`);
  return spec;
}

const CRON_FIELDS: readonly { name: string; min: number; max: number; names?: string[] }[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
  },
  { name: 'day of week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];

/** A cron schedule: five fields (numbers, ranges, steps, lists, month and day names) or @hourly…@yearly. */
export function checkCron(spec: string): string {
  const s = spec.trim().replace(/\s+/g, ' ');
  if (/^@(hourly|daily|midnight|weekly|monthly|yearly|annually)$/.test(s)) return s;
  const fix = `'schedule cron' takes a 5-field cron expression such as '30 2 * * *' (02:30 daily) or @daily`;
  const fields = s.split(' ');
  if (fields.length !== 5) {
    const systemdLike = SYSTEMD_SHORTHANDS.includes(s) || s.includes(':');
    const hint = systemdLike ? ' (that looks like systemd OnCalendar= syntax)' : '';
    throw new ConfigError(`--calendar '${spec}' has ${fields.length} field(s)${hint}; ${fix}.`);
  }
  fields.forEach((f, k) => {
    const def = CRON_FIELDS[k];
    const value = (v: string): boolean => {
      const byName = def.names?.indexOf(v.toLowerCase()) ?? -1;
      if (byName >= 0) return true;
      return /^\d+$/.test(v) && Number(v) >= def.min && Number(v) <= def.max;
    };
    const ok = f.split(',').every((part) => {
      const m = /^(\*|([^-/]+)(?:-([^-/]+))?)(?:\/(\d+))?$/.exec(part);
      if (m === null) return false;
      if (m[4] !== undefined && Number(m[4]) < 1) return false;
      return m[1] === '*' || (value(m[2]) && (m[3] === undefined || value(m[3])));
    });
    if (!ok) {
      const range = `${def.min}-${def.max}`;
      throw new ConfigError(`--calendar '${spec}': the ${def.name} field '${f}' is not valid (${range}); ${fix}.`);
    }
  });
  return s;
}

/** The environment file's path as the units and cron line name it. */
export function envFilePath(cfg: ScheduleConfig): string {
  return path.join(cfg.out ?? '/etc/dbbackup', `${cfg.name}.env`);
}

/** The job's non-secret settings as DBBACKUP_… variables (from the option table). */
function jobEnvironment(cfg: ScheduleConfig): Record<string, string> {
  const open = Object.fromEntries(Object.entries(cfg.settings).filter(([n]) => !SECRET_OPTIONS.has(n)));
  const env = renderRunnerEnvironment(cfg.job.command, open);
  if (cfg.databaseId !== undefined) env[RUNNER_ENV.DATABASE_ID] = cfg.databaseId;
  return env;
}

function what(cfg: ScheduleConfig): string {
  const job = cfg.job;
  const db = job.command === RunnerCommand.BACKUP ? job.source.display : 'from' in job ? job.from.display : '';
  return `dbbackup ${job.command} of ${db}`;
}

function envFile(cfg: ScheduleConfig, printed: boolean): ScheduleFile {
  const password = cfg.job.command === RunnerCommand.BACKUP ? SECRET_ENV.SOURCE_PASSWORD : SECRET_ENV.TARGET_PASSWORD;
  const lines = [
    `# ${cfg.name}.env: the secrets of ${cfg.name} (${what(cfg)}). Keep it mode 0600.`,
    cfg.kind === ScheduleKind.SYSTEMD
      ? `# systemd reads it as root before the job drops to User=${cfg.user}: leave it owned by root.`
      : `# cron sources it as ${cfg.user}: chown ${cfg.user} it, and keep it mode 0600.`,
    `# One NAME='value' a line; a value cannot hold a single quote.`,
  ];
  if (cfg.job.command !== RunnerCommand.VERIFY) lines.push(`#${password}='…'`);
  lines.push(`# For s3:// without an instance role: AWS_ACCESS_KEY_ID='…' and AWS_SECRET_ACCESS_KEY='…'`);
  const notify = cfg.settings.notify;
  if (typeof notify === 'string') {
    const url = new URL(notify);
    lines.push(
      printed
        ? `#${optionSpec('notify')!.env}='…'  (${webhookDisplay(url)}: ` +
            'paste the --notify URL; not printed, it may hold a token)'
        : `${optionSpec('notify')!.env}='${url.href.replace(/'/g, '%27')}'`,
    );
  }
  return { name: `${cfg.name}.env`, mode: 0o600, text: lines.join('\n') + '\n', keepExisting: true };
}

/** `"NAME=value"` for Environment=: quotes and backslashes escaped, `%` doubled (systemd specifiers). */
function systemdQuote(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%') + '"';
}

/** An ExecStart= word: `%` and `$` doubled, quoted when needed. */
function execWord(s: string): string {
  const escaped = s.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@+=:,./-]+$/.test(escaped) ? escaped : systemdQuote(s).replace(/\$/g, '$$$$');
}

/** The paths a job writes to on this host, for ReadWritePaths=. */
function writablePaths(cfg: ScheduleConfig): string[] {
  const paths: string[] = [];
  if (cfg.job.command === RunnerCommand.BACKUP && cfg.job.to.kind === StorageKind.FILE) paths.push(cfg.job.to.path);
  if (cfg.job.report?.metricsFile !== undefined) paths.push(path.dirname(cfg.job.report.metricsFile));
  for (const p of paths) {
    if (/\s/.test(p)) throw new ConfigError(`'${p}' holds a space; ReadWritePaths= needs a path without one.`);
  }
  return [...new Set(paths)];
}

/** The systemd service and timer, and the environment file. */
export function renderSystemd(cfg: ScheduleConfig, printed = cfg.out === undefined): ScheduleFile[] {
  const underHome = cfg.exec.some((p) => /^\/(home|root)(\/|$)/.test(p));
  const rw = writablePaths(cfg);
  const service = [
    `# ${cfg.name}.service: generated by 'dbbackup schedule systemd'; started by ${cfg.name}.timer.`,
    '[Unit]',
    `Description=${what(cfg).replace(/%/g, '%%')}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    `User=${cfg.user}`,
    `ExecStart=${cfg.exec.map(execWord).join(' ')} ${cfg.job.command}`,
    ...Object.entries(jobEnvironment(cfg)).map(([k, v]) => `Environment=${systemdQuote(`${k}=${v}`)}`),
    '# Secrets (password, webhook URL): mode 0600, never in this unit.',
    `EnvironmentFile=${envFilePath(cfg)}`,
    '# A large backup takes as long as it takes; a stuck one shows as a stale backup.',
    'TimeoutStartSec=infinity',
    'Nice=10',
    'IOSchedulingClass=best-effort',
    'IOSchedulingPriority=7',
    'UMask=0077',
    '# Hardening. Node compiles code at run time, so no MemoryDenyWriteExecute=.',
    'ProtectSystem=strict',
    ...(rw.length > 0 ? [`ReadWritePaths=${rw.join(' ')}`] : []),
    ...(underHome ? ['# The program is under a home directory: it stays readable.'] : []),
    `ProtectHome=${underHome ? 'read-only' : 'true'}`,
    'PrivateTmp=true',
    'PrivateDevices=true',
    'NoNewPrivileges=true',
    'ProtectKernelTunables=true',
    'ProtectKernelModules=true',
    'ProtectKernelLogs=true',
    'ProtectControlGroups=true',
    'ProtectClock=true',
    'ProtectHostname=true',
    'RestrictSUIDSGID=true',
    'RestrictRealtime=true',
    'RestrictNamespaces=true',
    'LockPersonality=true',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
    'CapabilityBoundingSet=',
    'SystemCallArchitectures=native',
  ];
  const timer = [
    `# ${cfg.name}.timer: generated by 'dbbackup schedule systemd'.`,
    `# Enable it: systemctl enable --now ${cfg.name}.timer`,
    '[Unit]',
    `Description=Run ${cfg.name}.service (${what(cfg).replace(/%/g, '%%')}) on schedule`,
    '',
    '[Timer]',
    `OnCalendar=${cfg.calendar}`,
    '# A run missed while the host was off starts at the next boot.',
    'Persistent=true',
    `RandomizedDelaySec=${cfg.randomizedDelaySeconds}`,
    'AccuracySec=1min',
    '',
    '[Install]',
    'WantedBy=timers.target',
  ];
  return [
    { name: `${cfg.name}.service`, mode: 0o644, text: service.join('\n') + '\n', keepExisting: false },
    { name: `${cfg.name}.timer`, mode: 0o644, text: timer.join('\n') + '\n', keepExisting: false },
    envFile(cfg, printed),
  ];
}

/** A word for /bin/sh: as is when plain, else in single quotes. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The job's command line (program, script, command, options) rendered from its settings. */
export function jobArgv(cfg: ScheduleConfig): string[] {
  const argv: string[] = [cfg.job.command];
  for (const [name, value] of Object.entries(cfg.settings)) {
    if (SECRET_OPTIONS.has(name)) continue;
    if (optionSpec(name)!.kind === OptionKind.FLAG) {
      if (value === true) argv.push(`--${name}`);
    } else argv.push(`--${name}`, String(value));
  }
  return argv;
}

/** The /etc/cron.d file (one job line, run under flock -n, logged through logger) and the environment file. */
export function renderCron(cfg: ScheduleConfig, printed = cfg.out === undefined): ScheduleFile[] {
  const lock = `/run/lock/${cfg.name}.lock`;
  const words = [
    'flock',
    '-n',
    lock,
    'sh',
    '-c',
    'set -a; . "$0"; set +a; exec "$@"',
    envFilePath(cfg),
    ...cfg.exec,
    ...jobArgv(cfg),
  ];
  // cron turns an unescaped % into a line break.
  const command = words.map(shellWord).join(' ').replace(/%/g, '\\%');
  const lines = [
    `# ${cfg.name}: generated by 'dbbackup schedule cron' (${what(cfg).replace(/%/g, '')}).`,
    `# Install it as /etc/cron.d/${cfg.name} (owned by root, mode 0644). A run that finds the previous`,
    `# one still holding ${lock} exits at once (flock -n); output goes to syslog as '${cfg.name}'.`,
    'SHELL=/bin/sh',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ...(cfg.databaseId !== undefined ? [`${RUNNER_ENV.DATABASE_ID}=${cfg.databaseId}`] : []),
    `${cfg.calendar} ${cfg.user} ${command} 2>&1 | logger -t ${cfg.name}`,
  ];
  return [{ name: cfg.name, mode: 0o644, text: lines.join('\n') + '\n', keepExisting: false }, envFile(cfg, printed)];
}

export interface ScheduleResult {
  readonly files: readonly { readonly path: string; readonly written: boolean }[];
}

/** Print the files, or write them into --out (units 0644, the environment file 0600 and never overwritten). */
export function runSchedule(
  cfg: ScheduleConfig,
  write: (text: string) => void = (t) => process.stdout.write(t),
): ScheduleResult {
  const files = cfg.kind === ScheduleKind.SYSTEMD ? renderSystemd(cfg) : renderCron(cfg);
  if (cfg.out === undefined) {
    write(files.map((f) => `# ==> ${f.name} (mode ${f.mode.toString(8).padStart(4, '0')}) <==\n${f.text}`).join('\n'));
    return { files: files.map((f) => ({ path: f.name, written: false })) };
  }
  const result: { path: string; written: boolean }[] = [];
  for (const f of files) {
    const target = path.join(cfg.out, f.name);
    if (f.keepExisting && fs.existsSync(target)) {
      result.push({ path: target, written: false });
      continue;
    }
    const tmp = path.join(cfg.out, `.${f.name}.${process.pid}.tmp`);
    const fd = fs.openSync(tmp, 'wx', f.mode);
    try {
      fs.fchmodSync(fd, f.mode);
      fs.writeSync(fd, f.text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
    result.push({ path: target, written: true });
  }
  const lines = result.map((r) =>
    r.written ? `wrote ${r.path}` : `kept ${r.path} (it exists; add new settings to it by hand)`,
  );
  write(lines.join('\n') + '\n');
  return { files: result };
}

/** The help of `schedule`. */
export function scheduleUsage(): string {
  const options = usage(RunnerCommand.SCHEDULE).split('\n');
  return [
    'Usage:',
    "  dbbackup schedule systemd|cron [backup|drill|verify] --calendar SPEC [that command's options]",
    '                   [--out DIR] [--name NAME] [--user USER] [--exec PATH] [--randomized-delay S]',
    '                   [--database-id ID]',
    '',
    "systemd: --calendar is an OnCalendar= expression (daily, '*-*-* 02:30:00'); cron: five fields ('30 2 * * *').",
    ...options.slice(options.indexOf('Options (each also read from its environment variable):')),
  ].join('\n');
}
