// The reporting options of backup, restore, verify and drill (--metrics-file, --notify,
// --notify-on), validated with the rest of the command line before any work starts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../../lib/core/errors';

/** When `--notify` posts. */
export enum NotifyOn {
  FAILURE = 'failure',
  SUCCESS = 'success',
  ALWAYS = 'always',
}

export interface ReportConfig {
  /** The Prometheus textfile to merge this run's metrics into (absolute, ending in .prom). */
  readonly metricsFile?: string;
  /** The webhook that receives the JSON summary. It may carry a token: log only `webhookDisplay`. */
  readonly notify?: URL;
  readonly notifyOn: NotifyOn;
}

/**
 * A webhook URL as it may be logged: scheme, host and port only. Tokens travel in the userinfo,
 * the query and, for Slack- or Teams-style hooks, the path, so all three are left out.
 */
export function webhookDisplay(url: URL): string {
  const rest = url.pathname !== '/' || url.search !== '' || url.username !== '' || url.password !== '';
  return `${url.protocol}//${url.host}/${rest ? '…' : ''}`;
}

function metricsFile(raw: string): string {
  const where = `--metrics-file '${raw}'`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
  if (/[\x00-\x1f]/.test(raw)) {
    throw new ConfigError(`--metrics-file holds a control character; name a plain file path.`);
  }
  if (!path.isAbsolute(raw)) {
    throw new ConfigError(
      `${where} is relative; use an absolute path, e.g. /var/lib/node_exporter/textfile/dbbackup.prom.`,
    );
  }
  if (!raw.endsWith('.prom')) {
    throw new ConfigError(
      `${where} does not end in .prom; node_exporter's textfile collector reads only *.prom files.`,
    );
  }
  const dir = path.dirname(raw);
  let isDir = false;
  try {
    isDir = fs.statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) {
    throw new ConfigError(
      `${where}: the directory ${dir} does not exist; create it (the collector's --collector.textfile.directory).`,
    );
  }
  return raw;
}

function webhook(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      `--notify is not a URL; use https://host/path (the value is not shown: it may carry a token).`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(`--notify is a ${url.protocol} URL; use an https:// (or http://) webhook URL.`);
  }
  return url;
}

/** The reporting settings among a command's parsed option values, or undefined when none is set. */
export function parseReport(values: Readonly<Record<string, string | number | boolean>>): ReportConfig | undefined {
  const file = values['metrics-file'];
  const notify = values.notify;
  const on = values['notify-on'];
  if (file === undefined && notify === undefined && on === undefined) return undefined;
  if (on !== undefined && notify === undefined) {
    throw new ConfigError(`--notify-on ${String(on)} needs --notify URL (or DBBACKUP_NOTIFY), the webhook to post to.`);
  }
  return {
    metricsFile: file === undefined ? undefined : metricsFile(String(file)),
    notify: notify === undefined ? undefined : webhook(String(notify)),
    notifyOn: (on as NotifyOn | undefined) ?? NotifyOn.FAILURE,
  };
}
