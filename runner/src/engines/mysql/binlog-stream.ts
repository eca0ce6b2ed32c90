/**
 * `dbbackup binlog-stream --source mysql://… --to STORAGE_URL`: the MySQL/MariaDB binary log
 * shipper, a long-running process (one task of an ECS service).
 *
 * `mariadb-binlog --read-from-remote-server --raw --stop-never` copies the server's binary logs
 * into a private temporary directory as the server writes them. This process uploads, through the
 * shared pipeline (compress → encrypt → sha256 → storage):
 * - each log as soon as it is closed (the next one appears), then removes the local copy;
 * - the open log's new complete events at least every DBBACKUP_BINLOG_UPLOAD_INTERVAL seconds
 *   (default 60), cut at an event boundary, as a chunk (binlog-archive.ts);
 * and then records in shipped.json how far the archive is complete (checked against the server's
 * SHOW MASTER STATUS), and the lag as the LogShippingLagSeconds metric.
 *
 * Where to start comes from the storage, not local disk: after a restart (or a SIGKILL) the newest
 * archived log is streamed again from the server and only the bytes after what is archived are
 * uploaded. Uploads are whole objects, so a kill at any moment loses nothing that was uploaded and
 * leaves no half-written object. SIGTERM stops the copy, uploads what is complete, and exits 0.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RUNNER_ENV, SECRET_ENV } from '../../../../lib/core/contract';
import { METRICS } from '../../../../lib/core/metrics';
import { BinlogStreamConfig } from '../../config';
import { BackupError, ConfigError } from '../../errors';
import { formatBytes, log } from '../../log';
import { emitMetrics } from '../../metrics';
import {
  BINLOG_PREFIX,
  binlogBase,
  binlogName,
  binlogSeq,
  chunkName,
  readBinlogIndexes,
  Shipped,
} from './binlog-archive';
import { archiveEncryption, ArchiveEncryption, objectName } from '../../archive/log-archive';
import { capture, Child, findTool } from '../../pipeline/stages';
import { openStorage, Storage } from '../../storage';
import { runPipeline } from '../../pipeline/store';
import { clientTool, mysqlConnArgs, mysqlEnv } from './client';
import { LogStreamResult } from '../shared/engine';

export type BinlogStreamResult = LogStreamResult;

/** The event boundary reached and the time of the last event, scanning a binary log from `from`. */
export async function scanEvents(
  file: string,
  from: number,
): Promise<{ boundary: number; lastEvent?: Date; size: number }> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    let pos = Math.max(from, 4);
    let lastEvent: Date | undefined;
    const buf = Buffer.alloc(1 << 20);
    while (pos + 19 <= size) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      let off = 0;
      while (off + 19 <= bytesRead) {
        const ts = buf.readUInt32LE(off);
        const len = buf.readUInt32LE(off + 9);
        if (len < 19) return { boundary: pos + off, lastEvent, size };
        if (pos + off + len > size) return { boundary: pos + off, lastEvent, size };
        if (ts > 0) lastEvent = new Date(ts * 1000);
        off += len;
      }
      if (off === 0) break;
      pos += off;
    }
    return { boundary: pos, lastEvent, size };
  } finally {
    await fh.close();
  }
}

interface LogState {
  uploaded: number;
  scanned: number;
  lastEvent?: Date;
  lastArchivedEvent?: Date;
}

class Shipper {
  private readonly storage: Storage;
  private readonly env: Record<string, string | undefined>;
  private readonly connArgs: string[];
  private readonly interval: number;
  private readonly databaseId: string;
  private enc?: ArchiveEncryption;
  private readonly states = new Map<string, LogState>();
  public chunks = 0;
  public bytes = 0;
  public logs = 0;
  private lastShipped?: Date;

  constructor(
    private readonly cfg: BinlogStreamConfig,
    private readonly signal: AbortSignal,
  ) {
    this.storage = openStorage(cfg.to);
    this.env = mysqlEnv(process.env[SECRET_ENV.SOURCE_PASSWORD]);
    this.connArgs = mysqlConnArgs(cfg.source);
    const every = Number(process.env[RUNNER_ENV.BINLOG_UPLOAD_INTERVAL] ?? '60');
    if (!Number.isFinite(every) || every <= 0)
      throw new ConfigError(
        `${RUNNER_ENV.BINLOG_UPLOAD_INTERVAL} is ` +
          `'${process.env[RUNNER_ENV.BINLOG_UPLOAD_INTERVAL]}'; give seconds, e.g. 60.`,
      );
    this.interval = every * 1000;
    this.databaseId =
      process.env[RUNNER_ENV.DATABASE_ID] ?? `${cfg.source.host ?? cfg.source.socket ?? 'local'}:${cfg.source.port}`;
  }

  private async query(sql: string): Promise<string[][]> {
    const out = await capture({
      cmd: clientTool(),
      args: [...this.connArgs, '--batch', '--skip-column-names', '--raw', '-e', sql],
      env: this.env,
      label: 'mariadb',
    });
    return out
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\t'));
  }

  /**
   * Where to start: the newest archived log (streamed again, uploaded from where the archive ends), else the server's
   * oldest.
   */
  private async startPoint(): Promise<{ base: string; start: string; archived: number }> {
    const onServer = (await this.query('SHOW BINARY LOGS')).map((r) => r[0]);
    if (onServer.length === 0)
      throw new ConfigError(
        `binary logging is off on ${this.cfg.source.display}; start the server with ` +
          `log_bin (and binlog_format=ROW or MIXED) for point-in-time recovery.`,
      );
    const base = binlogBase(onServer[0]);
    const index = (await readBinlogIndexes(this.storage)).find((i) => i.base === base);
    if (index === undefined || index.files.size === 0) {
      log.info(
        `the archive ${this.storage.url.display}/${BINLOG_PREFIX}/${base} is ` +
          `empty; starting at the server's oldest binary log ${onServer[0]}`,
      );
      return { base, start: onServer[0], archived: 0 };
    }
    const newest = index.files.get(Math.max(...index.files.keys()))!;
    if (onServer.includes(newest.name)) {
      log.info(`resuming at ${newest.name}: ${newest.length} bytes of it are archived`, {
        event: 'binlog-resume',
        log: newest.name,
        archived: newest.length,
      });
      return { base, start: newest.name, archived: newest.length };
    }
    const after = onServer.filter((n) => (binlogSeq(n) ?? 0) > newest.seq);
    if (after.length === 0)
      throw new BackupError(
        `the archive holds ${newest.name}, newer than every binary log ` +
          `on ${this.cfg.source.display} (${onServer.join(', ')}): this storage ` +
          `belongs to another server. Give each server its own --to prefix.`,
      );
    if (binlogSeq(after[0]) !== newest.seq + 1) {
      log.error(
        `binary logs ${binlogName(base, newest.seq + 1)} ` +
          `to ${binlogName(base, binlogSeq(after[0])! - 1)} were purged from the server before ` +
          `they were archived: the archive has a gap there (take a full backup; raise ` +
          `binlog_expire_logs_seconds)`,
        { event: 'binlog-gap' },
      );
    }
    return { base, start: after[0], archived: 0 };
  }

  private async upload(
    base: string,
    name: string,
    file: string,
    offset: number,
    length: number,
    lastEvent: Date | undefined,
  ): Promise<void> {
    const hash = crypto.createHash('sha256');
    for await (const c of fs.createReadStream(file, {
      start: offset,
      end: offset + length - 1,
    }) as AsyncIterable<Buffer>)
      hash.update(c);
    this.enc ??= await archiveEncryption(this.storage, BINLOG_PREFIX, this.cfg.encryption);
    const enc = this.enc;
    const object = objectName({
      sha256: hash.digest('hex'),
      size: length,
      written: lastEvent ?? new Date(),
      compression: this.cfg.compression,
      encryption: enc.scheme,
      keyRef: enc.keyRef,
    });
    const key = `${BINLOG_PREFIX}/${base}/${name}/${chunkName(offset, object)}`;
    // Uploads are never aborted half-way: a stop waits for them (SIGKILL aside, which leaves nothing).
    await runPipeline(
      this.storage,
      key,
      {
        cmd: 'dd',
        args: [
          `if=${file}`,
          'bs=1M',
          'iflag=skip_bytes,count_bytes',
          `skip=${offset}`,
          `count=${length}`,
          'status=none',
        ],
        label: 'dd',
      },
      { compression: this.cfg.compression },
      enc.prepared,
      undefined,
      new AbortController().signal,
    );
    this.chunks++;
    this.bytes += length;
    log.info(`archived ${name} bytes ${offset} to ${offset + length}`, {
      event: 'binlog-upload',
      log: name,
      offset,
      bytes: length,
      lastEvent: lastEvent?.toISOString(),
    });
  }

  /**
   * One pass over the local copies: closed logs whole, the open one to its last complete event when due (or `final`).
   */
  private async pass(base: string, dir: string, due: boolean, final: boolean): Promise<void> {
    const files = (await fs.promises.readdir(dir))
      .filter((f) => binlogBase(f) === base && binlogSeq(f) !== undefined)
      .sort((a, b) => binlogSeq(a)! - binlogSeq(b)!);
    for (let i = 0; i < files.length; i++) {
      const name = files[i];
      const file = path.join(dir, name);
      const st = this.states.get(name) ?? { uploaded: 0, scanned: 4 };
      this.states.set(name, st);
      const scan = await scanEvents(file, Math.max(st.scanned, st.uploaded));
      st.scanned = scan.boundary;
      if (scan.lastEvent !== undefined) st.lastEvent = scan.lastEvent;
      const closed = i < files.length - 1;
      if (closed) {
        if (scan.boundary !== scan.size)
          log.warn(
            `${name} was closed with ${scan.size - scan.boundary} bytes after its ` +
              `last complete event; archiving it as the server sent it`,
            { log: name },
          );
        if (scan.size > st.uploaded)
          await this.upload(base, name, file, st.uploaded, scan.size - st.uploaded, st.lastEvent);
        st.uploaded = Math.max(st.uploaded, scan.size);
        st.lastArchivedEvent = st.lastEvent;
        await fs.promises.rm(file);
        this.logs++;
        log.info(`${name} is closed and archived`, { event: 'binlog-closed', log: name, bytes: scan.size });
      } else if ((due || final) && st.scanned > st.uploaded) {
        await this.upload(base, name, file, st.uploaded, st.scanned - st.uploaded, st.lastEvent);
        st.uploaded = st.scanned;
        st.lastArchivedEvent = st.lastEvent;
      }
    }
  }

  /** Record how far the archive is complete, when the local copy has everything the server wrote. */
  private async recordShipped(base: string, dir: string): Promise<void> {
    const asked = new Date();
    let status: string[] | undefined;
    try {
      status = (await this.query('SHOW MASTER STATUS'))[0];
    } catch (e) {
      log.warn('could not read the server position; the archive completeness is not updated', {
        error: (e as Error).message.split('\n')[0],
      });
    }
    if (status !== undefined) {
      const [file, pos] = [status[0], Number(status[1])];
      const st = this.states.get(file);
      const local = fs.existsSync(path.join(dir, file));
      if (st !== undefined && local && st.uploaded >= pos) {
        const shipped: Shipped = { file, size: st.uploaded, at: asked.toISOString() };
        await this.storage.putBytes(
          `${BINLOG_PREFIX}/${base}/shipped.json`,
          Buffer.from(JSON.stringify(shipped) + '\n'),
          { contentType: 'application/json' },
        );
        this.lastShipped = asked;
      }
    }
    const lag = this.lastShipped === undefined ? undefined : (Date.now() - this.lastShipped.getTime()) / 1000;
    if (lag !== undefined)
      emitMetrics(this.databaseId, { [METRICS.LOG_LAG]: Math.round(lag) }, { [METRICS.LOG_LAG]: 'Seconds' });
  }

  /** Copy and upload until mariadb-binlog ends or a stop is asked for. */
  public async session(): Promise<void> {
    const { base, start, archived } = await this.startPoint();
    this.states.clear();
    this.states.set(start, { uploaded: archived, scanned: Math.max(4, archived) });
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-binlog-stream-'));
    const tool = findTool(['mariadb-binlog', 'mysqlbinlog']) ?? 'mariadb-binlog';
    const serverId =
      0x40000000 + (crypto.createHash('sha256').update(this.storage.url.display).digest().readUInt32BE(0) % 0x3fffffff);
    const child = new Child(
      {
        cmd: tool,
        args: [
          ...this.connArgs,
          '--read-from-remote-server',
          '--raw',
          '--stop-never',
          `--stop-never-slave-server-id=${serverId}`,
          `--result-file=${dir}/`,
          start,
        ],
        env: this.env,
        label: path.basename(tool),
      },
      ['ignore', 'ignore', 'pipe'],
    );
    let ended = false;
    child.done.then(
      () => (ended = true),
      () => (ended = true),
    );
    const onStop = () => child.kill('SIGTERM');
    this.signal.addEventListener('abort', onStop);
    let lastFlush = Date.now();
    try {
      while (!ended && !this.signal.aborted) {
        await new Promise((r) => setTimeout(r, 250));
        const due = Date.now() - lastFlush >= this.interval;
        try {
          await this.pass(base, dir, due, false);
          if (due) {
            lastFlush = Date.now();
            await this.recordShipped(base, dir);
          }
        } catch (e) {
          // Storage or server trouble: keep the local copy and try again on the next pass.
          log.error(`archiving failed; retrying: ${(e as Error).message}`, { event: 'binlog-upload-failed' });
        }
      }
      child.kill('SIGTERM');
      await child.done.catch(() => undefined);
      // What is complete is uploaded before this session ends (SIGTERM: a clean stop).
      await this.pass(base, dir, true, true);
      await this.recordShipped(base, dir).catch(() => undefined);
      if (!this.signal.aborted) {
        throw new BackupError(
          `${child.label} ended: ${child.stderr.trim().split('\n').slice(-3).join(' | ') || 'no message'}`,
        );
      }
    } finally {
      this.signal.removeEventListener('abort', onStop);
      await fs.promises.rm(dir, { recursive: true, force: true });
    }
  }
}

export async function runBinlogStream(cfg: BinlogStreamConfig, signal: AbortSignal): Promise<BinlogStreamResult> {
  const started = Date.now();
  const shipper = new Shipper(cfg, signal);
  log.info(`shipping the binary logs of ${cfg.source.display} to ${cfg.to.display}`, { event: 'binlog-stream-start' });
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      await shipper.session();
    } catch (e) {
      if (signal.aborted) break;
      if ((e as Error).name === 'ConfigError') throw e;
      const wait = Math.min(30, 2 ** Math.min(attempt, 5));
      log.error(
        `binary log shipping stopped: ${(e as Error).message}; starting again in ${wait} s from what the archive holds`,
        { event: 'binlog-stream-restart' },
      );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait * 1000);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
  const seconds = (Date.now() - started) / 1000;
  log.info(
    `binary log shipping stopped cleanly: ${shipper.logs} closed ` +
      `log(s), ${shipper.chunks} upload(s), ${formatBytes(shipper.bytes)} in ${seconds.toFixed(0)} s`,
    { event: 'binlog-stream-stop' },
  );
  return { logs: shipper.logs, chunks: shipper.chunks, bytes: shipper.bytes, seconds };
}
