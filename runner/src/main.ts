// dbbackup: the thin entry. Parse and validate everything first, run one command, map the
// outcome to the fixed exit codes (0 ok, 1 failed, 2 bad usage, 3 damaged or missing backup).
import { RunnerCommand } from '../../lib/core/contract';
import { ExitCode } from '../../lib/core/model';
import { runBackup } from './commands/backup';
import { runDrill } from './commands/drill';
import { formatList, runList } from './commands/list';
import { runPrune } from './commands/prune';
import { runRestore } from './commands/restore';
import { runRunbook } from './commands/runbook';
import { assertAllOk, runVerify } from './commands/verify';
import { runBinlogStream, runWalFetch, runWalPush, runWalReceive } from './commands/log-shipping';
import { HelpRequest, Invocation, parseInvocation } from './config';
import { BackupError, exitCodeOf } from './errors';
import { formatBytes, log } from './log';
import { backupPlan, preflight } from './preflight';
import { reportRun } from './report';
import { parseSchedule, runSchedule, ScheduleConfig } from './commands/schedule';

function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text + '\n');
}

async function run(inv: Invocation, signal: AbortSignal): Promise<unknown> {
  switch (inv.command) {
    case RunnerCommand.BACKUP: {
      const r = await runBackup(inv, signal);
      const size = r.manifest.artifacts.reduce((s, a) => s + a.size, 0);
      print(
        inv.json,
        r.manifest,
        `backup ${r.id} committed to ${r.location} (${formatBytes(size)}, ${r.manifest.tier}, ` +
          `${r.seconds.toFixed(1)} s)`,
      );
      return r;
    }
    case RunnerCommand.RESTORE: {
      const r = await runRestore(inv, signal);
      print(inv.json, r, `restored backup ${r.id} into ${r.target} in ${r.seconds.toFixed(1)} s`);
      return r;
    }
    case RunnerCommand.VERIFY: {
      const reports = await runVerify(inv, signal);
      print(
        inv.json,
        reports,
        reports
          .map((r) =>
            r.ok
              ? `ok       ${r.id}${r.deep ? ' (deep)' : ''}${r.warnings?.length ? ` (${r.warnings.join('; ')})` : ''}`
              : `DAMAGED  ${r.id}: ${r.problems.map((p) => `${p.artifact ?? ''} ${p.reason}`.trim()).join('; ')}`,
          )
          .join('\n'),
      );
      assertAllOk(reports);
      return reports;
    }
    case RunnerCommand.LIST: {
      const r = await runList(inv);
      print(inv.json, r, formatList(r));
      return;
    }
    case RunnerCommand.PRUNE: {
      const r = await runPrune(inv);
      print(
        inv.json,
        r,
        `${r.dryRun ? 'would delete' : 'deleted'} ${r.deleted.length} backup(s), kept ` +
          `${r.kept.length}${r.deleted.length ? ': ' + r.deleted.join(', ') : ''}`,
      );
      return;
    }
    case RunnerCommand.DRILL: {
      const r = await runDrill(inv, signal);
      print(
        inv.json,
        r,
        `drill ok: backup ${r.id} restored in ${r.restoreSeconds.toFixed(1)} s; ${r.tablesChecked} tables and ` +
          `${r.rowsChecked} rows match the manifest`,
      );
      return r;
    }
    case RunnerCommand.RUNBOOK: {
      const r = await runRunbook(inv);
      process.stdout.write(r.markdown);
      return;
    }
    case RunnerCommand.WAL_PUSH:
      // archive_command: the exit status is the answer; the log line goes to PostgreSQL's log.
      await runWalPush(inv, signal);
      return;
    case RunnerCommand.WAL_FETCH:
      await runWalFetch(inv, signal);
      return;
    case RunnerCommand.BINLOG_STREAM: {
      // Runs until SIGTERM (or SIGINT); then uploads what is complete and exits 0.
      const r = await runBinlogStream(inv, signal);
      print(
        false,
        r,
        `binlog-stream stopped: ${r.logs} closed log(s) and ${r.chunks} upload(s), ${formatBytes(r.bytes)}`,
      );
      return;
    }
    case RunnerCommand.WAL_RECEIVE: {
      // Runs until SIGTERM (or SIGINT); then uploads what it received (the partial segment too) and exits 0.
      const r = await runWalReceive(inv, signal);
      print(
        false,
        r,
        `wal-receive stopped: ${r.logs} segment(s) and ${r.chunks} partial upload(s), ${formatBytes(r.bytes)}`,
      );
      return;
    }
    default:
      throw new BackupError(`'${(inv as Invocation).command}' is not available in this release`);
  }
}

// Node's own warnings (e.g. the AWS SDK's notice about Node versions) go through our logger, so
// stderr stays JSON lines when it is not a terminal.
process.removeAllListeners('warning');
process.on('warning', (w) => log.debug(w.message, { warning: w.name }));

async function main(): Promise<number> {
  let inv: Invocation | ScheduleConfig | HelpRequest;
  try {
    const argv = process.argv.slice(2);
    const schedule = argv[0] === RunnerCommand.SCHEDULE;
    inv = schedule ? parseSchedule(argv.slice(1), process.env) : parseInvocation(argv, process.env);
  } catch (e) {
    process.stderr.write(`dbbackup: ${(e as Error).message}\n`);
    return exitCodeOf(e);
  }
  if (inv instanceof HelpRequest) {
    process.stdout.write(inv.text + '\n');
    return ExitCode.OK;
  }
  const controller = new AbortController();
  // The first SIGINT/SIGTERM stops the work; the cleanup it starts (a restore's or drill's new
  // database dropped, partial files removed, locks released) is awaited. A second signal (an
  // impatient Ctrl-C, `docker stop` after `kill`) must not skip that cleanup: it is only noted.
  // A third exits at once, leaving behind what the cleanup had not removed yet.
  let signals = 0;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      signals++;
      if (signals === 1) {
        log.warn(`received ${sig}; stopping and discarding what was not committed`);
        controller.abort(new BackupError(`interrupted by ${sig}`));
      } else if (signals === 2) {
        log.warn(
          `received ${sig} again; still removing what this run made (a third signal exits without finishing that)`,
        );
      } else {
        log.error(`received ${sig} a third time; exiting without finishing the cleanup`);
        process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
      }
    });
  }
  try {
    if (inv.command === RunnerCommand.SCHEDULE) {
      runSchedule(inv);
      return ExitCode.OK;
    }
    const job = inv;
    // --metrics-file / --notify report the whole run, the preflight included.
    await reportRun(job, async () => {
      // Commands that write check their tools here; those that read stored backups check theirs
      // once they know the backup (its compression, encryption and engine), before any session.
      const cmd = job.command;
      if (
        cmd === RunnerCommand.BACKUP ||
        cmd === RunnerCommand.WAL_PUSH ||
        cmd === RunnerCommand.BINLOG_STREAM ||
        cmd === RunnerCommand.WAL_RECEIVE
      ) {
        await preflight(backupPlan(job));
      }
      return run(job, controller.signal);
    });
    return ExitCode.OK;
  } catch (e) {
    const code = exitCodeOf(e);
    if (code !== ExitCode.DAMAGED || !(e instanceof Error) || e.name !== 'DamagedError')
      log.error((e as Error).message, { error: (e as Error).name });
    else log.error((e as Error).message);
    process.stderr.write(`dbbackup: ${(e as Error).message}\n`);
    return code;
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`dbbackup: unexpected failure: ${(e as Error)?.stack ?? e}\n`);
    process.exit(ExitCode.FAILED);
  },
);
