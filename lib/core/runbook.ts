/**
 * The day of the restore, written once: the exact commands of an on-demand backup and of a
 * restore (the newest backup, one by id, to a moment), and the runbook around them (how long
 * the last drill took, and the by-hand path with standard tools). The AWS CDK flavour renders
 * its stack outputs and the `<stack>.runbook.md` beside the template from these functions, and
 * `dbbackup runbook` renders the same page from a stored manifest, so the three never disagree.
 */
import { codecOf } from './codecs';
import { ENGINE_CAPABILITIES } from './engines';
import type { Manifest } from './manifest';
import { METRIC_DIMENSION, METRIC_NAMESPACE, METRICS } from './metrics';
import { Compression, Engine } from './model';
import { RUNNER_CONTAINER } from './drill';
import { ENCRYPTION_EXT, EncryptionScheme } from './urls';

/** Stands for the id of the backup to restore (`dbbackup list` shows them). */
export const RUNBOOK_BACKUP_ID = 'BACKUP_ID';
/** Stands for the moment to restore to. */
export const RUNBOOK_MOMENT = '2026-01-31T23:59:00Z';
/** Stands for a database URL to restore into (without a password). */
export const RUNBOOK_TARGET_URL = 'TARGET_URL';

/** An ECS task to start with `aws ecs run-task` on Fargate. */
export interface RunbookTask {
  /** The cluster (name or ARN). */
  readonly cluster: string;
  /** The task definition (family, family:revision or ARN). */
  readonly taskDefinition: string;
  readonly subnets: string[];
  readonly securityGroups: string[];
  /** The runner's container. @default 'runner' */
  readonly container?: string;
  /** The task's log group, for `aws logs tail`. @default - not shown */
  readonly logGroup?: string;
}

/** What the runbook of one database is rendered from. */
export interface RunbookInput {
  readonly databaseId: string;
  readonly engine: Engine;
  /** Where the backups are: `s3://bucket/prefix`, `file:///dir`, … */
  readonly storageUrl: string;
  readonly encryption: EncryptionScheme;
  /** kms: the wrapping key (id or ARN). */
  readonly keyId?: string;
  readonly compression: Compression;
  /**
   * Whether restores to a moment are possible here (MySQL/MariaDB with binary log shipping to a
   * URL target; PostgreSQL restores to a moment into a data directory, see pitr.md).
   */
  readonly pointInTime?: boolean;
  /** The scheduled backup's task, for an on-demand backup. */
  readonly backupTask?: RunbookTask;
  /** The restore task (reader's rights, network access to the target). */
  readonly restoreTask?: RunbookTask;
  /** The restore task's target, as configured. */
  readonly restoreTarget?: string;
  /** The AWS region of the commands. @default - the CLI's configured region */
  readonly region?: string;
  /** A title line. @default - `Restore runbook: <databaseId>` */
  readonly title?: string;
  /** A backup's manifest (`dbbackup runbook`): its id and its own manual restore lines. */
  readonly manifest?: Manifest;
  /** Lines that tell where the names in the commands come from (e.g. how to read a stack's resources). */
  readonly preamble?: string[];
}

/** The exact commands of one database. */
export interface RunbookCommands {
  /** Start an on-demand backup (the scheduled task, now). */
  readonly backupNow?: string;
  /** Restore the newest backup with the restore task. */
  readonly restoreLatest?: string;
  /** Restore one backup by id with the restore task (`BACKUP_ID`). */
  readonly restoreById?: string;
  /** Restore to a moment with the restore task. */
  readonly restoreToTime?: string;
  /** The same three with the runner on a machine of yours. */
  readonly localLatest: string;
  readonly localById: string;
  readonly localToTime?: string;
}

function runTask(task: RunbookTask, region: string | undefined, command?: string[]): string {
  const network =
    `awsvpcConfiguration={subnets=[${task.subnets.join(',')}],` +
    `securityGroups=[${task.securityGroups.join(',')}],assignPublicIp=DISABLED}`;
  const parts = [
    'aws ecs run-task',
    ...(region !== undefined ? [`--region ${region}`] : []),
    `--cluster ${task.cluster}`,
    `--task-definition ${task.taskDefinition}`,
    '--launch-type FARGATE',
    `--network-configuration "${network}"`,
  ];
  if (command !== undefined) {
    const overrides = { containerOverrides: [{ name: task.container ?? RUNNER_CONTAINER, command }] };
    parts.push(`--overrides '${JSON.stringify(overrides)}'`);
  }
  parts.push("--query 'tasks[0].taskArn' --output text");
  return parts.join(' ');
}

/** The exact commands: one function, read by the stack outputs, the runbook file and `dbbackup runbook`. */
export function runbookCommands(input: RunbookInput): RunbookCommands {
  const r = input.region;
  const from = input.storageUrl;
  const target = input.restoreTarget ?? RUNBOOK_TARGET_URL;
  const id = input.manifest?.id ?? RUNBOOK_BACKUP_ID;
  const moment = input.pointInTime === true;
  // PostgreSQL restores to a moment into a data directory (base backup + WAL), not into a
  // database over a connection: no restore task line, and the local line names a directory.
  const physicalMoment = moment && input.engine === Engine.POSTGRES;
  const restore = input.restoreTask;
  const local = `dbbackup restore --from ${from}`;
  return {
    backupNow: input.backupTask !== undefined ? runTask(input.backupTask, r) : undefined,
    restoreLatest: restore !== undefined ? runTask(restore, r, ['restore', '--latest']) : undefined,
    restoreById: restore !== undefined ? runTask(restore, r, ['restore', '--id', id]) : undefined,
    restoreToTime:
      restore !== undefined && moment && !physicalMoment
        ? runTask(restore, r, ['restore', '--to-time', RUNBOOK_MOMENT])
        : undefined,
    localLatest: `${local} --latest --target ${target}`,
    localById: `${local} --id ${id} --target ${target}`,
    localToTime: physicalMoment
      ? `${local} --to-time ${RUNBOOK_MOMENT} --target-dir /var/lib/postgresql/restored`
      : moment
        ? `${local} --to-time ${RUNBOOK_MOMENT} --target ${target}`
        : undefined,
  };
}

/** What a backup's artifacts are called in storage, before the manifest is at hand. */
const ARTIFACTS: Readonly<Record<Engine, { name: string; role: string; consumer: string }[]>> = {
  [Engine.POSTGRES]: [
    { name: 'globals.sql', role: 'roles (with --with-globals backups)', consumer: 'psql -X -d postgres -f -' },
    {
      name: 'database.pgdump',
      role: 'the database',
      consumer: 'pg_restore --single-transaction --exit-on-error -d TARGET_DATABASE',
    },
  ],
  [Engine.MYSQL]: [{ name: 'database.sql', role: 'the database', consumer: 'mariadb --binary-mode TARGET_DATABASE' }],
  [Engine.MONGODB]: [
    {
      name: 'database.archive',
      role: 'the database',
      consumer: 'mongorestore --archive --oplogReplay --uri TARGET_URI',
    },
  ],
};

function fetch(storageUrl: string, key: string): string {
  if (storageUrl.startsWith('file://')) return `cat ${storageUrl.slice('file://'.length)}/${key}`;
  if (storageUrl.startsWith('gs://')) return `gcloud storage cat ${storageUrl}/TIER/${key}`;
  return `aws s3 cp ${storageUrl}/${key} -`;
}

/** The by-hand lines for a backup not yet chosen (no manifest at hand): the same shape as a manifest's. */
function genericManualLines(input: RunbookInput): string[] {
  const lines: string[] = [];
  const id = RUNBOOK_BACKUP_ID;
  const enc = input.encryption;
  if (enc === EncryptionScheme.KMS) {
    lines.push(
      `${fetch(input.storageUrl, `${id}/manifest.json`)} | jq -r .pipeline.encryption.wrappedKey ` +
        '| base64 -d > wrapped-key.bin',
      `aws kms decrypt --key-id ${input.keyId ?? 'KEY_ID'} --ciphertext-blob fileb://wrapped-key.bin ` +
        `--encryption-context dbbackup-backup-id=${id} --query Plaintext --output text | base64 -d > identity.txt`,
    );
  }
  const codec = codecOf(input.compression);
  for (const a of ARTIFACTS[input.engine]) {
    const stored = `${a.name}${codec?.extension ?? ''}${ENCRYPTION_EXT[enc]}`;
    const stages = [fetch(input.storageUrl, `${id}/${stored}`)];
    if (enc === EncryptionScheme.KMS || enc === EncryptionScheme.AGE) stages.push('age -d -i identity.txt');
    else if (enc === EncryptionScheme.GPG) stages.push('gpg --batch --decrypt');
    else if (enc === EncryptionScheme.OPENSSL)
      stages.push('openssl enc -d -aes-256-ctr -pbkdf2 -iter 100000 -md sha256 -pass file:KEYFILE');
    if (codec !== undefined) stages.push(`${codec.label} -d -c`);
    stages.push(a.consumer);
    lines.push(`# ${a.role}:`, stages.join(' | '));
  }
  return lines;
}

function fence(lines: (string | undefined)[]): string[] {
  return ['```sh', ...lines.filter((l): l is string => l !== undefined), '```'];
}

/** The runbook of one database, as markdown. */
export function renderRunbook(input: RunbookInput): string {
  const c = runbookCommands(input);
  const m = input.manifest;
  const out: string[] = [`# ${input.title ?? `Restore runbook: ${input.databaseId}`}`, ''];
  out.push(
    `Database \`${input.databaseId}\` (${input.engine}), backups in \`${input.storageUrl}\`, ` +
      `compression ${input.compression}, encryption ${input.encryption}` +
      `${input.keyId !== undefined && input.encryption === EncryptionScheme.KMS ? ` (key \`${input.keyId}\`)` : ''}.`,
  );
  if (m !== undefined) {
    const seconds = (Date.parse(m.endedAt) - Date.parse(m.startedAt)) / 1000;
    out.push(
      '',
      `This page is rendered for backup \`${m.id}\` (${m.type}, ${m.tier}, ended ${m.endedAt}, ` +
        `server ${m.serverVersion}); its backup took ${seconds.toFixed(0)} s.`,
    );
    // What the backup could not record or had to leave out, before anyone restores it.
    if (m.warnings !== undefined && m.warnings.length > 0) {
      out.push('', '## What this backup lacks', '', 'Its manifest records these warnings from when it was taken:', '');
      // Text from the manifest, one line each (the runner's oneLine): no backtick opens code or a fence.
      out.push(...m.warnings.map((w) => `- ${w.replace(/`/g, "'")}`));
    }
  }
  if (input.preamble !== undefined && input.preamble.length > 0) out.push('', ...input.preamble);

  out.push('', '## How long it takes', '');
  out.push(
    'The last restore drill measured it: the drill publishes the seconds its restore took as the ' +
      `CloudWatch metric \`${METRIC_NAMESPACE}/${METRICS.RESTORE_TIME}\` (dimension ` +
      `\`${METRIC_DIMENSION}=${input.databaseId}\`). The newest figures:`,
    '',
    ...fence([
      `aws cloudwatch get-metric-statistics --namespace ${METRIC_NAMESPACE} --metric-name ${METRICS.RESTORE_TIME} ` +
        `--dimensions Name=${METRIC_DIMENSION},Value=${input.databaseId} --statistics Maximum --period 86400 ` +
        `--start-time "$(date -u -d '-35 days' +%FT%TZ)" --end-time "$(date -u +%FT%TZ)" ` +
        "--query 'sort_by(Datapoints,&Timestamp)[-1]'",
    ]),
    '',
    'Without drills (or outside AWS), run `dbbackup drill` into a scratch server and read its ' +
      '`restoreSeconds`; a restore takes about as long as the drill of the same backup.',
  );

  if (c.backupNow !== undefined) {
    out.push('', '## Back up now', '', 'Before a risky change, or to make a fresh backup to restore:', '');
    out.push(...fence([c.backupNow]));
  }
  if (c.restoreLatest !== undefined) {
    out.push('', '## Restore with the restore task', '');
    out.push(
      `The restore task reads the backups (never writes or deletes them) and restores into ` +
        `\`${input.restoreTarget ?? RUNBOOK_TARGET_URL}\`. A restore into a database that already has ` +
        'tables is refused; empty it, or restore into a new database.',
      '',
      'The newest backup:',
      '',
      ...fence([c.restoreLatest]),
      '',
      `One backup by id (\`dbbackup list --from ${input.storageUrl}\` shows them; put the id for ` +
        `\`${RUNBOOK_BACKUP_ID}\`):`,
      '',
      ...fence([c.restoreById]),
    );
    if (c.restoreToTime !== undefined) {
      out.push(
        '',
        `To a moment (replace \`${RUNBOOK_MOMENT}\`; ISO-8601 with a zone):`,
        '',
        ...fence([c.restoreToTime]),
      );
    }
    const task = input.restoreTask!;
    out.push(
      '',
      'Then wait for the task and read its exit code (0 restored, 1 failed, 2 bad usage, 3 damaged backup):',
      '',
      ...fence([
        `TASK=...   # the task ARN printed above`,
        `aws ecs wait tasks-stopped --cluster ${task.cluster} --tasks "$TASK"`,
        `aws ecs describe-tasks --cluster ${task.cluster} --tasks "$TASK" ` +
          `--query 'tasks[0].containers[?name==\`${task.container ?? RUNNER_CONTAINER}\`].exitCode' --output text`,
        task.logGroup !== undefined ? `aws logs tail ${task.logGroup} --since 1h` : undefined,
      ]),
    );
  }

  out.push('', '## Restore from a machine of yours', '');
  out.push(
    "With the `dbbackup` runner and the reader's rights (S3 read, `kms:Decrypt` on the key); the " +
      "target's password comes from `DBBACKUP_TARGET_PASSWORD` or the engine's own variable, never the command line:",
    '',
    ...fence([c.localLatest, c.localById, c.localToTime]),
  );
  if (!ENGINE_CAPABILITIES[input.engine].pointInTime) {
    out.push('', `${input.engine} has no restore to a moment here: restore the backup nearest before it.`);
  } else if (c.localToTime === undefined) {
    out.push(
      '',
      input.engine === Engine.POSTGRES
        ? 'PostgreSQL restores to a moment into a data directory from a base backup and the WAL archive ' +
            '(`dbbackup restore --to-time … --target-dir DIR`, see pitr.md).'
        : 'No log archive is shipped for this database, so there is no restore to a moment: restore the ' +
            'backup nearest before it.',
    );
  }

  out.push('', '## By hand, with standard tools only', '');
  const manual = m?.manualRestore;
  if (manual !== undefined && manual.length > 0) {
    out.push(
      `When this program is not at hand: the lines recorded in the manifest of \`${m!.id}\` ` +
        '(run in a scratch directory; `TARGET_DATABASE` / `TARGET_URI` stand for where to restore to):',
      '',
      ...fence([...manual]),
    );
  } else {
    out.push(
      'When this program is not at hand (run in a scratch directory; `TARGET_DATABASE` / `TARGET_URI` stand ' +
        `for where to restore to). Pick the backup (ids begin with their time, so the newest sorts last):`,
      '',
      ...fence([
        input.storageUrl.startsWith('s3://')
          ? `aws s3 ls ${input.storageUrl}/ | awk '{print $2}' | grep -E '^[0-9]{8}T' | sort | tail -n 1`
          : `dbbackup list --from ${input.storageUrl}`,
      ]),
      '',
      `then, with its id for \`${RUNBOOK_BACKUP_ID}\` (each backup's \`manifest.json\` holds its own exact ` +
        'lines in `manualRestore`; `dbbackup runbook --from … --id …` prints them):',
      '',
      ...fence(genericManualLines(input)),
    );
  }
  out.push(
    '',
    'Check the stored files first ' +
      '(`jq -r \'.artifacts[] | "\\(.sha256)  \\(.name)"\' manifest.json | sha256sum -c -` ' +
      'in a folder holding the backup): `openssl enc` checks nothing, and gpg checks only at the end.',
    '',
  );
  return out.join('\n');
}
