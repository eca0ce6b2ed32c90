/**
 * The log-shipping commands: `wal-push` and `wal-fetch` (PostgreSQL's archive_command and
 * restore_command) and `binlog-stream` (MySQL/MariaDB). Each goes to the driver of the engine
 * whose record in lib/core/engines.ts names that way of shipping its log.
 */
import { LogShipping } from '../../../lib/core/engines';
import { BinlogStreamConfig, WalFetchConfig, WalPushConfig, WalReceiveConfig } from '../config';
import { LogStreamResult, shipperOf } from '../engines';
import { checkBeforeWork } from '../preflight';

export async function runWalPush(cfg: WalPushConfig, signal: AbortSignal): Promise<void> {
  await shipperOf(LogShipping.WAL).walPush!(cfg, signal);
}

export async function runWalFetch(cfg: WalFetchConfig, signal: AbortSignal): Promise<void> {
  // restore_command: the programs that read the archived file back are checked before %p is written.
  await shipperOf(LogShipping.WAL).walFetch!(cfg, signal, checkBeforeWork(cfg.identity));
}

export function runBinlogStream(cfg: BinlogStreamConfig, signal: AbortSignal): Promise<LogStreamResult> {
  return shipperOf(LogShipping.BINLOG).binlogStream!(cfg, signal);
}

export function runWalReceive(cfg: WalReceiveConfig, signal: AbortSignal): Promise<LogStreamResult> {
  return shipperOf(LogShipping.WAL).walReceive!(cfg, signal);
}
