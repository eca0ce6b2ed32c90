import { ENGINE_CAPABILITIES, LogShipping } from '../../../lib/core/engines';
import { renderRunbook } from '../../../lib/core/runbook';
import { selectBackups } from '../catalog';
import { RunbookConfig } from '../config';
import { openStorage } from '../storage';

/** What `dbbackup runbook` prints: the page, and the backup it was rendered for. */
export interface RunbookResult {
  readonly id: string;
  readonly markdown: string;
}

/**
 * The restore runbook of a stored backup: its manifest read from the store, rendered by the
 * same lib/core function that writes a CDK stack's `<stack>.runbook.md` and its outputs, with
 * the manifest's own by-hand lines. Reads only; touches no database.
 */
export async function runRunbook(cfg: RunbookConfig): Promise<RunbookResult> {
  const storage = openStorage(cfg.from);
  const [m] = await selectBackups(storage, cfg.selector);
  const enc = m.pipeline.encryption;
  const markdown = renderRunbook({
    databaseId: m.databaseId,
    engine: m.engine,
    storageUrl: cfg.from.display.replace(/\/+$/, ''),
    encryption: enc.scheme,
    keyId: enc.keyId,
    compression: m.pipeline.compression,
    // A restore to a moment into a database URL: the engines whose binary logs are shipped.
    pointInTime: ENGINE_CAPABILITIES[m.engine].logShipping === LogShipping.BINLOG,
    restoreTarget: cfg.target?.display,
    manifest: m,
  });
  return { id: m.id, markdown };
}
