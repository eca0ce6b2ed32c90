// Reporting outside AWS, around one command: run it, then merge its metrics into the
// --metrics-file and post to the --notify webhook, and hand back its result or rethrow its error
// unchanged (reporting never changes the exit code; a reporting failure is a logged warning).
import { RunnerCommand } from '../../../lib/core/contract';
import type { BackupResult } from '../commands/backup';
import { databaseIdOf } from '../commands/backup';
import type { DrillResult } from '../commands/drill';
import type { RestoreResult } from '../commands/restore';
import type { Invocation } from '../config';
import { log } from '../log';
import { writeMetricsFile } from './metrics-file';
import { postSummary, shouldNotify } from './notify';
import { databaseLabel, OutcomeFacts, outcomeOf } from './outcome';

/** The database label of a run, from its configuration alone (so a failed run reports under the same one). */
function databaseOf(inv: Invocation): string | undefined {
  switch (inv.command) {
    case RunnerCommand.BACKUP:
      return databaseIdOf(inv);
    // The database a store holds several of, when --database names it; else the store.
    case RunnerCommand.RESTORE:
    case RunnerCommand.VERIFY:
      return databaseLabel((inv.selector.kind !== 'id' ? inv.selector.database : undefined) ?? inv.from.display);
    case RunnerCommand.DRILL:
      return databaseLabel(inv.database ?? inv.from.display);
    default:
      return undefined;
  }
}

function factsOf(command: RunnerCommand, result: unknown, error: unknown): OutcomeFacts {
  // A failed drill carries its result on the error.
  const r = result ?? (error as { result?: unknown } | undefined)?.result;
  if (r === undefined || r === null) return {};
  switch (command) {
    case RunnerCommand.BACKUP: {
      const b = r as BackupResult;
      return { backupId: b.id, sizeBytes: b.manifest.artifacts.reduce((s, a) => s + a.size, 0) };
    }
    case RunnerCommand.RESTORE: {
      const x = r as RestoreResult;
      return { backupId: x.id, restoreSeconds: x.seconds };
    }
    case RunnerCommand.DRILL: {
      const d = r as DrillResult;
      return { backupId: d.id, restoreSeconds: d.restoreSeconds > 0 ? d.restoreSeconds : undefined };
    }
    default:
      return {};
  }
}

/** Run `work` (the command's dispatch) and report its outcome as the invocation's options ask. */
export async function reportRun<T>(inv: Invocation, work: () => Promise<T>): Promise<T> {
  const report = inv.report;
  const database = databaseOf(inv);
  if (report === undefined || database === undefined) return work();
  const startedAt = new Date();
  let result: T | undefined;
  let error: unknown;
  try {
    result = await work();
  } catch (e) {
    error = e ?? new Error('failed');
  }
  const outcome = outcomeOf(inv.command, database, startedAt, factsOf(inv.command, result, error), error);
  if (report.metricsFile !== undefined) {
    await writeMetricsFile(report.metricsFile, outcome).then(
      () => log.info(`metrics written to ${report.metricsFile}`, { event: 'metrics-file' }),
      (e: Error) =>
        log.warn(`could not write the metrics file ${report.metricsFile}: ${e.message}`, {
          event: 'metrics-file-failed',
        }),
    );
  }
  if (report.notify !== undefined && shouldNotify(report.notifyOn, outcome.ok)) {
    await postSummary(report.notify, outcome);
  }
  if (error !== undefined) throw error;
  return result as T;
}
