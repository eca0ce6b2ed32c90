import { ENGINE_CAPABILITIES, LogShipping } from '../../../lib/core/engines';
import { Manifest } from '../../../lib/core/manifest';
import { renderRunbook } from '../../../lib/core/runbook';
import { oneLine, shellQuote } from '../../../lib/core/shell';
import { selectBackups } from '../catalog';
import { RunbookConfig } from '../config';
import { manualRestoreSteps } from '../pipeline/manual';
import { openStorage } from '../storage';

/** What `dbbackup runbook` prints: the page, and the backup it was rendered for. */
export interface RunbookResult {
  readonly id: string;
  readonly markdown: string;
}

/**
 * The restore runbook of a stored backup: its manifest read from the store, rendered by the
 * same lib/core function that writes a CDK stack's `<stack>.runbook.md` and its outputs. Reads
 * only; touches no database.
 *
 * A manifest is data, and anyone who can write the store can write one (only kms: manifests are
 * MACed): so every value from it or from a URL that lands in a printed command is one quoted
 * shell word, the text around them stays on one line, and the by-hand lines are made again here
 * from the manifest's fields (quoted) instead of printing the shell lines the manifest stores.
 */
export async function runRunbook(cfg: RunbookConfig): Promise<RunbookResult> {
  const storage = openStorage(cfg.from);
  const [stored] = await selectBackups(storage, cfg.selector);
  const m: Manifest = {
    ...stored,
    serverVersion: oneLine(stored.serverVersion),
    endedAt: oneLine(stored.endedAt),
    warnings: stored.warnings?.map(oneLine),
    manualRestore: manualRestoreSteps(cfg.from, stored),
  };
  const enc = m.pipeline.encryption;
  const markdown = renderRunbook({
    databaseId: shellQuote(m.databaseId),
    engine: m.engine,
    storageUrl: shellQuote(cfg.from.display.replace(/\/+$/, '')),
    encryption: enc.scheme,
    keyId: enc.keyId === undefined ? undefined : shellQuote(enc.keyId),
    compression: m.pipeline.compression,
    // A restore to a moment into a database URL: the engines whose binary logs are shipped.
    pointInTime: ENGINE_CAPABILITIES[m.engine].logShipping === LogShipping.BINLOG,
    restoreTarget: cfg.target === undefined ? undefined : shellQuote(cfg.target.display),
    manifest: m,
  });
  return { id: m.id, markdown };
}
