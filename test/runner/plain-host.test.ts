// A plain host (a VM, an on-premises server, a cron box): `dbbackup schedule systemd|cron`
// renders units that systemd-analyze verifies and a cron line that /bin/sh really runs (a real
// PostgreSQL backup under flock), whose command the runner's own parser reads back as given;
// --metrics-file merges a backup's and a drill's metrics into one file that promtool accepts;
// the alert rules of docs/plain-host.md pass promtool's checker and its rule unit test; --notify
// posts to a local webhook without ever logging its token, and never changes the exit code.
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { RunnerCommand } from '../../lib/core/contract';
import { parseInvocation } from '../../runner/src/config';
import { mergeSamples, parseSamples, renderSamples, samplesOf } from '../../runner/src/report/metrics-file';
import { outcomeOf } from '../../runner/src/report/outcome';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { loadFixture } from '../harness/pg-fixture';
import { DBBACKUP, dbbackup, logLines } from '../harness/runner';

const ROOT = path.join(__dirname, '..', '..');
const SCRIPT = fs.realpathSync(DBBACKUP);

/** The Environment= lines of a unit, unquoted as systemd reads them. */
function unitEnvironment(unit: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment="((?:[^"\\]|\\.)*)"$/gm)) {
    const assignment = m[1].replace(/\\(.)/g, '$1').replace(/%%/g, '%');
    const eq = assignment.indexOf('=');
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }
  return env;
}

/** NAME='value' lines of an environment file (comments skipped). */
function envFileValues(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^([A-Z_]+)='([^']*)'$/gm)) env[m[1]] = m[2];
  return env;
}

/** The words of a shell command, as /bin/sh splits them. */
function shellWords(command: string): string[] {
  const r = spawnSync('sh', ['-c', `set -- ${command}; printf '%s\\0' "$@"`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\0').slice(0, -1);
}

/** JSON form, so URL objects compare by their text. */
function plainOf(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}

function promtool(args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { input, encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

function metricLine(text: string, name: string, command: string): number | undefined {
  const m = new RegExp(`^${name}\\{database="shop-prod",command="${command}"\\} (\\S+)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

describe('plain host: schedule systemd', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-plainhost-sd-'));
    fs.mkdirSync(path.join(dir, 'units'));
    fs.mkdirSync(path.join(dir, 'store'));
    fs.mkdirSync(path.join(dir, 'textfile'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const hookToken = 'https://hooks.example.com/services/T0/B0/Zm9vYmFy?token=s3cr3t';
  const jobArgs = () => [
    '--engine', 'postgres', '--source', 'postgres://backup@db.internal:5432/app?sslmode=require',
    '--to', `file://${dir}/store`, '--compression', 'zstd', '--tier', 'daily', '--json',
    '--metrics-file', `${dir}/textfile/dbbackup.prom`, '--notify', hookToken, '--notify-on', 'always',
  ];

  test('service + timer: systemd-analyze verify accepts them; hardening; secrets only in the 0600 file', async () => {
    const r = await dbbackup(
      ['schedule', 'systemd', 'backup', '--calendar', 'Mon..Fri *-*-* 02:30:00', '--out', `${dir}/units`,
        '--randomized-delay', '900', ...jobArgs()],
      { env: { DBBACKUP_SOURCE_PASSWORD: 'pw-never-rendered' } },
    );
    assert.equal(r.code, 0, r.stderr);
    const units = path.join(dir, 'units');
    const names = ['dbbackup-backup-app.env', 'dbbackup-backup-app.service', 'dbbackup-backup-app.timer'];
    assert.deepEqual(fs.readdirSync(units).sort(), names);
    assert.equal(fs.statSync(path.join(units, 'dbbackup-backup-app.service')).mode & 0o777, 0o644);
    assert.equal(fs.statSync(path.join(units, 'dbbackup-backup-app.timer')).mode & 0o777, 0o644);
    assert.equal(fs.statSync(path.join(units, 'dbbackup-backup-app.env')).mode & 0o777, 0o600);
    const service = fs.readFileSync(path.join(units, 'dbbackup-backup-app.service'), 'utf8');
    const timer = fs.readFileSync(path.join(units, 'dbbackup-backup-app.timer'), 'utf8');
    const envFile = fs.readFileSync(path.join(units, 'dbbackup-backup-app.env'), 'utf8');
    const serviceLines = [
      'Type=oneshot', 'ProtectSystem=strict', 'ProtectHome=true', 'PrivateTmp=true', 'NoNewPrivileges=true',
      `ReadWritePaths=${dir}/store ${dir}/textfile`, `EnvironmentFile=${units}/dbbackup-backup-app.env`,
      'User=dbbackup', `ExecStart=${process.execPath} ${SCRIPT} backup`, 'TimeoutStartSec=infinity',
    ];
    for (const line of serviceLines) {
      assert.ok(service.split('\n').includes(line), `${line} in\n${service}`);
    }
    const timerLines = [
      'OnCalendar=Mon..Fri *-*-* 02:30:00', 'Persistent=true', 'RandomizedDelaySec=900', 'WantedBy=timers.target',
    ];
    for (const line of timerLines) {
      assert.ok(timer.split('\n').includes(line), `${line} in\n${timer}`);
    }
    // The webhook URL (it carries a token) and the password never reach a unit or stdout.
    for (const text of [service, timer, r.stdout, r.stderr]) {
      assert.doesNotMatch(text, /s3cr3t|Zm9vYmFy|pw-never-rendered/);
    }
    assert.equal(envFileValues(envFile).DBBACKUP_NOTIFY, hookToken);
    assert.doesNotMatch(envFile, /pw-never-rendered/);

    const unitFiles = [path.join(units, 'dbbackup-backup-app.service'), path.join(units, 'dbbackup-backup-app.timer')];
    const analyze = ['verify', '--man=no', '--recursive-errors=no'];
    const verify = spawnSync('systemd-analyze', [...analyze, ...unitFiles], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    // The same check refuses a unit with a misspelt key: it is a real check.
    const bad = path.join(dir, 'bad.service');
    fs.writeFileSync(bad, service.replace('ProtectSystem=strict', 'ProtectSystm=strict'));
    assert.notEqual(spawnSync('systemd-analyze', [...analyze, bad]).status, 0);

    // The runner's own parser reads the unit's command and environment back as the options given.
    const execStart = service.split('\n').find((l) => l.startsWith('ExecStart='))!;
    const argv = execStart.slice('ExecStart='.length).split(' ').slice(2);
    const fromUnit = parseInvocation(argv, { ...unitEnvironment(service), ...envFileValues(envFile) });
    assert.deepEqual(plainOf(fromUnit), plainOf(parseInvocation(['backup', ...jobArgs()], {})));
  });

  test('printed drill units: the target password slot, a read-only store, the database id, no token', async () => {
    const r = await dbbackup(['schedule', 'systemd', 'drill', '--calendar', 'Sun *-*-* 05:00', '--name', 'drill-app',
      '--database-id', 'app-prod', '--from', `file://${dir}/store`,
      '--target', 'postgres://drill@127.0.0.1:5432/drill_scratch', '--notify', hookToken]);
    assert.equal(r.code, 0, r.stderr);
    // Printed, the webhook is only named: its token would land in a terminal's scrollback.
    assert.doesNotMatch(r.stdout + r.stderr, /s3cr3t|Zm9vYmFy/);
    assert.match(r.stdout, /^#DBBACKUP_NOTIFY='…' {2}\(https:\/\/hooks\.example\.com\/…: paste the --notify URL/m);
    assert.match(r.stdout, /^#DBBACKUP_TARGET_PASSWORD='…'$/m);
    assert.match(r.stdout, /^Environment="DBBACKUP_DATABASE_ID=app-prod"$/m);
    assert.match(r.stdout, /^Environment="DBBACKUP_FROM=file:\/\/.*\/store"$/m);
    assert.doesNotMatch(r.stdout, /ReadWritePaths=/);
    assert.match(r.stdout, /^ExecStart=\S+ \S+ drill$/m);
  });

  test('bad input is refused with exit 2 naming the value and the fix', async () => {
    const base = ['--engine', 'postgres', '--source', 'postgres://b@h/app', '--to', `file://${dir}/store`];
    const cases: [string[], RegExp][] = [
      [['schedule', 'systemd', '--calendar', 'every day', ...base], /'every day' is not a calendar expression.*daily/],
      [['schedule', 'systemd', '--calendar', '30 2 * * *', ...base], /looks like a cron expression.*OnCalendar=/],
      [['schedule', 'systemd', ...base], /needs --calendar SPEC/],
      [['schedule', 'upstart', '--calendar', 'daily', ...base], /'upstart' is not a scheduler/],
      [['schedule', 'systemd', 'prune', '--calendar', 'daily'], /runs one of backup, drill, verify/],
      [['schedule', 'systemd', '--calendar', 'daily', ...base.slice(0, 4)], /'backup' needs --to/],
      [['schedule', 'systemd', '--calendar', 'daily', '--name', 'a.b', ...base], /--name 'a\.b' is not a unit name/],
      [['schedule', 'systemd', '--calendar', 'daily', ...base, '--tier', 'daily\nExecStart=/x'], /--tier is 'daily/],
      [['schedule', 'systemd', '--calendar', 'daily\nExecStartPre=/bin/evil', ...base], /--calendar holds a control/],
      [['schedule', 'cron', '--calendar', 'daily', ...base], /has 1 field\(s\) \(that looks like systemd OnCalendar=/],
      [['schedule', 'cron', '--calendar', '61 2 * * *', ...base], /the minute field '61' is not valid \(0-59\)/],
      [['schedule', 'cron', '--calendar', '0 2 * * *', '--out', `${dir}/none`, ...base], /--out .* is not a dir/],
    ];
    for (const [args, message] of cases) {
      const r = await dbbackup(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});

describe('plain host: cron line, metrics file and webhook against PostgreSQL', () => {
  let pg: LocalPostgres;
  let dir: string;
  let store: string;
  let metrics: string;
  let bin: string;

  beforeAll(async () => {
    pg = await startLocalPostgres();
    await loadFixture(pg, 'shop', 200);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-plainhost-'));
    store = path.join(dir, 'store');
    fs.mkdirSync(store);
    fs.mkdirSync(path.join(dir, 'textfile'));
    fs.mkdirSync(path.join(dir, 'cron'));
    metrics = path.join(dir, 'textfile', 'dbbackup.prom');
    // cron's logger, replaced: syslog is not running in a test, so the output goes to a file.
    bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    const stub = `#!/bin/sh\necho "logger $*" >> "${dir}/syslog"\ncat >> "${dir}/syslog"\n`;
    fs.writeFileSync(path.join(bin, 'logger'), stub, { mode: 0o755 });
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const name = `dbbackup-test-${process.pid}`;
  const backups = () =>
    fs.readdirSync(store).filter((d) => fs.existsSync(path.join(store, d, 'manifest.json'))).length;
  let cronJob = '';

  test('schedule cron: the line parses back to the same backup; sh runs it: a real backup under flock', async () => {
    const job = ['--engine', 'postgres', '--source', pg.url('shop'), '--to', `file://${store}`,
      '--metrics-file', metrics, '--json'];
    const r = await dbbackup(['schedule', 'cron', '--calendar', '30 2 * * *', '--name', name, '--user', 'root',
      '--database-id', 'shop-prod', '--out', path.join(dir, 'cron'), ...job]);
    assert.equal(r.code, 0, r.stderr);
    const cron = fs.readFileSync(path.join(dir, 'cron', name), 'utf8');
    assert.equal(fs.statSync(path.join(dir, 'cron', `${name}.env`)).mode & 0o777, 0o600);
    assert.match(cron, /^DBBACKUP_DATABASE_ID=shop-prod$/m);
    const line = cron.split('\n').find((l) => l.startsWith('30 2 * * * root '))!;
    assert.ok(line, cron);
    const command = line.slice('30 2 * * * root '.length).replace(/\\%/g, '%');
    assert.ok(command.endsWith(` 2>&1 | logger -t ${name}`), command);
    cronJob = command;
    const words = shellWords(command.slice(0, -` 2>&1 | logger -t ${name}`.length));
    assert.deepEqual(words.slice(0, 3), ['flock', '-n', `/run/lock/${name}.lock`]);
    assert.deepEqual(words.slice(7, 9), [process.execPath, SCRIPT]);
    assert.deepEqual(plainOf(parseInvocation(words.slice(9), {})), plainOf(parseInvocation(['backup', ...job], {})));

    // The administrator fills the password in; the job gets it from there and from nowhere else.
    fs.appendFileSync(path.join(dir, 'cron', `${name}.env`), `DBBACKUP_SOURCE_PASSWORD='${pg.password}'\n`);
    // The environment cron gives the job: the file's variables, nothing else (the password comes
    // from the environment file); the logger stub first on PATH.
    const env: Record<string, string> = {};
    for (const m of cron.matchAll(/^([A-Z_]+)=(.*)$/gm)) env[m[1]] = m[2];
    assert.equal(env.DBBACKUP_DATABASE_ID, 'shop-prod');
    env.PATH = `${bin}:${env.PATH}`;
    const run = spawnSync('sh', ['-c', cronJob], { env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, run.stderr + fs.readFileSync(path.join(dir, 'syslog'), 'utf8'));
    const syslog = fs.readFileSync(path.join(dir, 'syslog'), 'utf8');
    assert.match(syslog, new RegExp(`^logger -t ${name}$`, 'm'));
    assert.match(syslog, /"event":"backup-done"/);
    assert.doesNotMatch(syslog, new RegExp(pg.password));
    assert.equal(backups(), 1);

    // While another run holds the lock, the next one exits at once and takes no backup.
    const holder: ChildProcess = spawn('flock', [`/run/lock/${name}.lock`, 'sleep', '30'], { stdio: 'ignore' });
    try {
      await new Promise((res) => setTimeout(res, 300));
      const started = Date.now();
      const second = spawnSync('sh', ['-c', cronJob], { env, encoding: 'utf8', timeout: 60_000 });
      assert.ok(Date.now() - started < 5000);
      assert.equal(backups(), 1, second.stderr);
    } finally {
      holder.kill('SIGKILL');
      fs.rmSync(`/run/lock/${name}.lock`, { force: true });
    }
  });

  test('one metrics file: backup and drill merge, promtool accepts it; a failed drill keeps its success', async () => {
    const afterBackup = fs.readFileSync(metrics, 'utf8');
    assert.equal(metricLine(afterBackup, 'dbbackup_last_run_success', 'backup'), 1);
    assert.ok(metricLine(afterBackup, 'dbbackup_backup_size_bytes', 'backup')! > 1000);
    const env = { ...pg.env, DBBACKUP_DATABASE_ID: 'shop-prod' };
    const drill = await dbbackup(
      ['drill', '--from', `file://${store}`, '--target', pg.url('drill_scratch'), '--metrics-file', metrics], { env });
    assert.equal(drill.code, 0, drill.stderr);
    const text = fs.readFileSync(metrics, 'utf8');
    const check = promtool(['check', 'metrics'], text);
    assert.equal(check.status, 0, check.out + text);
    assert.equal(metricLine(text, 'dbbackup_last_run_success', 'backup'), 1, 'the backup samples are kept');
    assert.equal(metricLine(text, 'dbbackup_drill_success', 'drill'), 1);
    assert.ok(metricLine(text, 'dbbackup_restore_duration_seconds', 'drill')! > 0);
    const drillSuccess = metricLine(text, 'dbbackup_last_success_timestamp_seconds', 'drill')!;
    assert.ok(Math.abs(drillSuccess - Date.now() / 1000) < 120);
    assert.equal(fs.statSync(metrics).mode & 0o777, 0o644);
    assert.deepEqual(fs.readdirSync(path.dirname(metrics)), ['dbbackup.prom'], 'no temporary or lock file is left');

    // A drill that cannot reach its target fails: its result is 0, its last success stays.
    const unreachable = 'postgres://postgres@127.0.0.1:1/drill_x';
    const failed = await dbbackup(
      ['drill', '--from', `file://${store}`, '--target', unreachable, '--metrics-file', metrics], { env });
    assert.notEqual(failed.code, 0);
    const after = fs.readFileSync(metrics, 'utf8');
    assert.equal(promtool(['check', 'metrics'], after).status, 0, after);
    assert.equal(metricLine(after, 'dbbackup_drill_success', 'drill'), 0);
    assert.equal(metricLine(after, 'dbbackup_last_run_success', 'drill'), 0);
    assert.equal(metricLine(after, 'dbbackup_last_success_timestamp_seconds', 'drill'), drillSuccess);
    assert.equal(metricLine(after, 'dbbackup_last_run_success', 'backup'), 1);

    // verify reports whether the backups are whole.
    const v = await dbbackup(['verify', '--from', `file://${store}`, '--all', '--metrics-file', metrics], { env });
    assert.equal(v.code, 0, v.stderr);
    assert.equal(metricLine(fs.readFileSync(metrics, 'utf8'), 'dbbackup_verified', 'verify'), 1);
    // A restore reports its time too.
    const restore = await dbbackup(['restore', '--from', `file://${store}`, '--latest', '--target', pg.url('restored'),
      '--metrics-file', metrics], { env });
    assert.equal(restore.code, 0, restore.stderr);
    assert.ok(metricLine(fs.readFileSync(metrics, 'utf8'), 'dbbackup_restore_duration_seconds', 'restore')! > 0);
    // A damaged copy of the store: verify exits 3 and the file says 0, under the same label.
    const damaged = path.join(dir, 'damaged');
    fs.cpSync(store, damaged, { recursive: true });
    const id = fs.readdirSync(damaged).find((d) => fs.existsSync(path.join(damaged, d, 'manifest.json')))!;
    const artifact = fs.readdirSync(path.join(damaged, id)).find((f) => f !== 'manifest.json')!;
    fs.appendFileSync(path.join(damaged, id, artifact), 'x');
    const bad = await dbbackup(['verify', '--from', `file://${damaged}`, '--all', '--metrics-file', metrics], { env });
    assert.equal(bad.code, 3, bad.stderr);
    const afterDamage = fs.readFileSync(metrics, 'utf8');
    assert.equal(metricLine(afterDamage, 'dbbackup_verified', 'verify'), 0);
    assert.equal(metricLine(afterDamage, 'dbbackup_last_run_success', 'verify'), 0);
    fs.rmSync(damaged, { recursive: true });
    // promtool's checker is a real check: it refuses a broken exposition.
    const twice = '# TYPE dbbackup_drill_success gauge\n# TYPE dbbackup_drill_success counter';
    const broken = after.replace('# TYPE dbbackup_drill_success gauge', twice);
    assert.notEqual(promtool(['check', 'metrics'], broken).status, 0);
  });

  test('label values are escaped and read back; four runs ending together all land in one file', async () => {
    const odd = 'we"ird\\db\nid';
    const o = outcomeOf(RunnerCommand.BACKUP, odd, new Date(Date.now() - 1500), { sizeBytes: 4096 }, undefined);
    const text = renderSamples(samplesOf(o));
    assert.match(text, /^dbbackup_backup_size_bytes\{database="we\\"ird\\\\db\\nid",command="backup"\} 4096$/m);
    assert.equal(promtool(['check', 'metrics'], text).status, 0, text);
    assert.deepEqual(parseSamples(text), samplesOf(o));
    assert.equal(renderSamples(mergeSamples(parseSamples(text), samplesOf(o))), text);

    const shared = path.join(dir, 'textfile', 'shared.prom');
    const ids = ['db-a', 'db-b', 'db-c', 'db-d'];
    const verify = (id: string) => dbbackup(['verify', '--from', `file://${store}`, '--all', '--metrics-file', shared],
      { env: { DBBACKUP_DATABASE_ID: id } });
    const runs = await Promise.all(ids.map(verify));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const merged = fs.readFileSync(shared, 'utf8');
    for (const id of ids) {
      assert.match(merged, new RegExp(`^dbbackup_verified\\{database="${id}",command="verify"\\} 1$`, 'm'));
    }
    assert.equal(promtool(['check', 'metrics'], merged).status, 0, merged);
    fs.rmSync(shared);
  });

  test('the alert rules of docs/plain-host.md pass promtool check rules; the stale alert fires after 26 h', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'plain-host.md'), 'utf8');
    const block = /```yaml\n(# dbbackup-alerts\.yml\n[\s\S]*?)```/.exec(doc);
    assert.ok(block, 'docs/plain-host.md holds a ```yaml block starting with # dbbackup-alerts.yml');
    const rules = path.join(dir, 'dbbackup-alerts.yml');
    fs.writeFileSync(rules, block[1]);
    const check = promtool(['check', 'rules', rules]);
    assert.equal(check.status, 0, check.out);
    // A backup that last succeeded at time 0: no alert 25 h later, the alert 27 h later.
    const unit = path.join(dir, 'alerts-test.yml');
    fs.writeFileSync(unit, [
      'rule_files: [dbbackup-alerts.yml]',
      'evaluation_interval: 1m',
      'tests:',
      '  - interval: 10m',
      '    input_series:',
      `      - series: 'dbbackup_last_success_timestamp_seconds{database="shop-prod",command="backup"}'`,
      `        values: '0x200'`,
      `      - series: 'dbbackup_last_run_success{database="shop-prod",command="backup"}'`,
      `        values: '1x200'`,
      '    alert_rule_test:',
      '      - eval_time: 25h',
      '        alertname: DbBackupStale',
      '        exp_alerts: []',
      '      - eval_time: 27h',
      '        alertname: DbBackupStale',
      '        exp_alerts:',
      '          - exp_labels: { severity: critical, database: shop-prod, command: backup }',
      '            exp_annotations:',
      `              summary: 'No successful backup of shop-prod for 1d 3h 0m 0s'`,
      '      - eval_time: 27h',
      '        alertname: DbBackupFailed',
      '        exp_alerts: []',
      '',
    ].join('\n'));
    const unitTest = spawnSync('promtool', ['test', 'rules', unit], { cwd: dir, encoding: 'utf8' });
    assert.equal(unitTest.status, 0, unitTest.stdout + unitTest.stderr);
  });

  describe('--notify', () => {
    let server: http.Server;
    let port: number;
    let hang: http.Server;
    let hangPort: number;
    const received: { url: string; auth?: string; body: Record<string, unknown> }[] = [];
    let answer = 204;

    beforeAll(async () => {
      server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          received.push({ url: req.url ?? '', auth: req.headers.authorization, body: JSON.parse(body) });
          res.writeHead(answer).end();
        });
      });
      hang = http.createServer(() => undefined);
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
      await new Promise<void>((res) => hang.listen(0, '127.0.0.1', res));
      port = (server.address() as AddressInfo).port;
      hangPort = (hang.address() as AddressInfo).port;
    });
    afterAll(async () => {
      hang?.closeAllConnections();
      await new Promise((res) => hang?.close(res));
      await new Promise((res) => server?.close(res));
    });

    const hook = () => `http://hook:pa55word@127.0.0.1:${port}/hooks/T0K3NPATH?token=qu3rytoken`;
    const secrets = /pa55word|T0K3NPATH|qu3rytoken/;

    test('a failed backup posts its summary (Basic auth from the URL), exits 1, never logs the token', async () => {
      received.length = 0;
      const unreachable = 'postgres://postgres@127.0.0.1:1/shop';
      const r = await dbbackup(['backup', '--engine', 'postgres', '--source', unreachable, '--to', `file://${store}`,
        '--notify', hook()], { env: { ...pg.env, DBBACKUP_DATABASE_ID: 'shop-prod' } });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(received.length, 1);
      const [post] = received;
      assert.equal(post.url, '/hooks/T0K3NPATH?token=qu3rytoken');
      assert.equal(Buffer.from(post.auth!.replace(/^Basic /, ''), 'base64').toString(), 'hook:pa55word');
      assert.equal(post.body.status, 'failure');
      assert.equal(post.body.command, 'backup');
      assert.equal(post.body.database, 'shop-prod');
      assert.equal(post.body.exitCode, 1);
      assert.equal(post.body.host, os.hostname());
      assert.match(String(post.body.text), /^dbbackup backup of shop-prod on .* FAILED \(exit 1\): /);
      assert.doesNotMatch(r.stderr + r.stdout, secrets);
      const shown = `http://127.0.0.1:${port}/…`;
      assert.ok(logLines(r.stderr).some((l) => l.event === 'notified' && String(l.msg).includes(shown)));
    });

    test('success posts only with --notify-on success|always; a failing or silent webhook warns, exit 0', async () => {
      const backup = (extra: string[]) =>
        dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', `file://${store}`, ...extra],
          { env: pg.env, timeoutMs: 60_000 });
      const warned = (stderr: string, why: RegExp) =>
        logLines(stderr).some((l) => l.event === 'notify-failed' && why.test(String(l.msg)));
      received.length = 0;
      assert.equal((await backup(['--notify', hook()])).code, 0);
      assert.equal(received.length, 0, 'the default posts on failure only');
      const ok = await backup(['--notify', hook(), '--notify-on', 'success', '--json']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(received.length, 1);
      assert.equal(received[0].body.status, 'success');
      assert.equal(received[0].body.backupId, JSON.parse(ok.stdout).id);
      assert.ok(Number(received[0].body.sizeBytes) > 1000);

      answer = 500;
      const refused = await backup(['--notify', hook(), '--notify-on', 'always']);
      answer = 204;
      assert.equal(refused.code, 0, refused.stderr);
      assert.ok(warned(refused.stderr, /answered 500/), refused.stderr);
      assert.doesNotMatch(refused.stderr, secrets);

      const started = Date.now();
      const silentHook = `http://127.0.0.1:${hangPort}/x?token=qu3rytoken`;
      const silent = await backup(['--notify', silentHook, '--notify-on', 'always']);
      assert.equal(silent.code, 0, silent.stderr);
      assert.ok(Date.now() - started < 30_000);
      assert.ok(warned(silent.stderr, /no answer in 5 s/), silent.stderr);
      assert.doesNotMatch(silent.stderr, secrets);
    });

    test('bad reporting options are refused before any work, exit 2, without echoing the URL', async () => {
      const base = ['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', `file://${store}`];
      const cases: [string[], RegExp][] = [
        [[...base, '--notify', 'ftp://u:qu3rytoken@example.com/'], /--notify is a ftp: URL/],
        [[...base, '--notify', 'not a url qu3rytoken'], /--notify is not a URL/],
        [[...base, '--notify-on', 'always'], /--notify-on always needs --notify URL/],
        [[...base, '--metrics-file', 'dbbackup.prom'], /is relative; use an absolute path/],
        [[...base, '--metrics-file', `${dir}/textfile/dbbackup.txt`], /does not end in \.prom/],
        [[...base, '--metrics-file', `${dir}/nowhere/dbbackup.prom`], /the directory .* does not exist/],
      ];
      for (const [args, message] of cases) {
        const r = await dbbackup(args, { env: pg.env });
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, message);
        assert.doesNotMatch(r.stderr, /qu3rytoken/);
      }
    });
  });
});
