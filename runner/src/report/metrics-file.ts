// The run's metrics in the Prometheus text exposition format, for node_exporter's textfile
// collector. One file can serve several jobs (a backup and its drill, several databases): the
// file is read, this run's samples replace those with the same name and labels, and the whole
// is written to a temporary file in the same directory, fsynced and renamed over the old one,
// so the collector never reads half a file. A lock file next to it serialises writers.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunOutcome } from './outcome';

/** Every metric family the file holds (all gauges, labelled by `database` and `command`). */
export const METRIC_FAMILIES = {
  dbbackup_last_run_timestamp_seconds: 'Unix time the last run of this command ended, successful or not.',
  dbbackup_last_run_success: '1 if the last run of this command succeeded, 0 if it failed.',
  dbbackup_last_run_duration_seconds: 'Seconds the last run of this command took.',
  dbbackup_last_success_timestamp_seconds: 'Unix time the last successful run of this command ended.',
  dbbackup_backup_size_bytes: 'Stored bytes of the last successful backup.',
  dbbackup_verified: '1 if the last verify found every checked backup whole, 0 if it found one damaged or missing.',
  dbbackup_drill_success: '1 if the last restore drill matched the manifest, 0 if it failed.',
  dbbackup_restore_duration_seconds: 'Seconds the last successful restore (or the restore of a drill) took.',
} as const;

export type MetricName = keyof typeof METRIC_FAMILIES;

/** One sample line: `name{labels} value`, keyed by name and labels. */
interface Sample {
  readonly name: MetricName;
  readonly labels: string;
  readonly value: string;
}

const LOCK_WAIT_MS = 10_000;
const LOCK_STALE_MS = 60_000;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelsOf(o: RunOutcome): string {
  return `{database="${escapeLabel(o.database)}",command="${escapeLabel(o.command)}"}`;
}

function num(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(3);
}

/** The samples this run sets. A failure leaves the last success time, size and restore time as they were. */
export function samplesOf(o: RunOutcome): Sample[] {
  const labels = labelsOf(o);
  const values: [MetricName, number][] = [
    ['dbbackup_last_run_timestamp_seconds', o.endedAt.getTime() / 1000],
    ['dbbackup_last_run_success', o.ok ? 1 : 0],
    ['dbbackup_last_run_duration_seconds', (o.endedAt.getTime() - o.startedAt.getTime()) / 1000],
  ];
  if (o.ok) values.push(['dbbackup_last_success_timestamp_seconds', o.endedAt.getTime() / 1000]);
  if (o.ok && o.sizeBytes !== undefined) values.push(['dbbackup_backup_size_bytes', o.sizeBytes]);
  if (o.verified !== undefined) values.push(['dbbackup_verified', o.verified ? 1 : 0]);
  if (o.drillOk !== undefined) values.push(['dbbackup_drill_success', o.drillOk ? 1 : 0]);
  if (o.ok && o.restoreSeconds !== undefined) values.push(['dbbackup_restore_duration_seconds', o.restoreSeconds]);
  return values.map(([name, v]) => ({ name, labels, value: num(v) }));
}

const SAMPLE_LINE = /^(dbbackup_[a-z_]+)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})\s+(\S+)$/;

/** The samples of an existing file that this program wrote; anything else in it is dropped. */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = SAMPLE_LINE.exec(line.trim());
    if (m === null || !(m[1] in METRIC_FAMILIES)) continue;
    out.push({ name: m[1] as MetricName, labels: m[2], value: m[3] });
  }
  return out;
}

/** The file's text: each family once, with HELP and TYPE, its samples in a stable order. */
export function renderSamples(samples: readonly Sample[]): string {
  const lines: string[] = [];
  for (const [name, help] of Object.entries(METRIC_FAMILIES)) {
    const mine = samples
      .filter((s) => s.name === name)
      .sort((a, b) => (a.labels < b.labels ? -1 : a.labels > b.labels ? 1 : 0));
    if (mine.length === 0) continue;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const s of mine) lines.push(`${s.name}${s.labels} ${s.value}`);
  }
  return lines.join('\n') + '\n';
}

/** Merge new samples over old ones with the same name and labels. */
export function mergeSamples(old: readonly Sample[], fresh: readonly Sample[]): Sample[] {
  const byKey = new Map<string, Sample>();
  for (const s of [...old, ...fresh]) byKey.set(s.name + s.labels, s);
  return [...byKey.values()];
}

async function acquire(lockPath: string): Promise<() => void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = fs.openSync(lockPath, 'wx', 0o644);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => fs.rmSync(lockPath, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    // A writer killed while holding the lock leaves it behind; a minute-old lock is abandoned.
    const age = Date.now() - (fs.statSync(lockPath, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > LOCK_STALE_MS) fs.rmSync(lockPath, { force: true });
    else if (Date.now() > deadline) {
      throw new Error(`${lockPath} has been held for ${LOCK_WAIT_MS / 1000} s by another run`);
    } else await new Promise((r) => setTimeout(r, 50));
  }
}

/** Merge this run's metrics into `file` and replace it atomically. */
export async function writeMetricsFile(file: string, outcome: RunOutcome): Promise<void> {
  const dir = path.dirname(file);
  const release = await acquire(file + '.lock');
  // Not *.prom, so the collector never picks the temporary file up.
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    let old = '';
    try {
      old = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const text = renderSamples(mergeSamples(parseSamples(old), samplesOf(outcome)));
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      // Readable by the collector's user whatever the job's umask (a unit's UMask=0077): no secret here.
      fs.fchmodSync(fd, 0o644);
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } finally {
    fs.rmSync(tmp, { force: true });
    release();
  }
}
