// --notify URL: post a JSON summary of the run to a webhook. A webhook that is down or slow
// costs a logged warning and at most NOTIFY_TIMEOUT_MS, never the run's exit code. The URL may
// carry a token (userinfo, query or path), so only its scheme and host are ever logged.
import { log } from '../log';
import { NotifyOn, webhookDisplay } from './config';
import { RunOutcome } from './outcome';

export const NOTIFY_TIMEOUT_MS = 5000;

/** The JSON body posted. `text` is one human line, which chat webhooks (Slack, Mattermost) show as is. */
export interface NotifySummary {
  readonly text: string;
  readonly status: 'success' | 'failure';
  readonly command: string;
  readonly database: string;
  readonly host: string;
  readonly exitCode: number;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationSeconds: number;
  readonly error?: string;
  readonly backupId?: string;
  readonly sizeBytes?: number;
  readonly restoreSeconds?: number;
  readonly verified?: boolean;
}

export function summaryOf(o: RunOutcome): NotifySummary {
  const durationSeconds = (o.endedAt.getTime() - o.startedAt.getTime()) / 1000;
  const what = `dbbackup ${o.command} of ${o.database} on ${o.host}`;
  return {
    text: o.ok
      ? `${what} succeeded in ${durationSeconds.toFixed(1)} s`
      : `${what} FAILED (exit ${o.exitCode}): ${o.error}`,
    status: o.ok ? 'success' : 'failure',
    command: o.command,
    database: o.database,
    host: o.host,
    exitCode: o.exitCode,
    startedAt: o.startedAt.toISOString(),
    endedAt: o.endedAt.toISOString(),
    durationSeconds,
    error: o.error,
    backupId: o.backupId,
    sizeBytes: o.sizeBytes,
    restoreSeconds: o.restoreSeconds,
    verified: o.verified,
  };
}

export function shouldNotify(on: NotifyOn, ok: boolean): boolean {
  return on === NotifyOn.ALWAYS || (on === NotifyOn.SUCCESS) === ok;
}

/** Post the summary. Never throws: a failure is a warning naming the webhook by scheme and host only. */
export async function postSummary(url: URL, outcome: RunOutcome): Promise<void> {
  const shown = webhookDisplay(url);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'dbbackup' };
  // fetch refuses a URL with user:password@; send them as Basic authentication instead.
  const target = new URL(url.href);
  if (target.username !== '' || target.password !== '') {
    const user = decodeURIComponent(target.username);
    const pass = decodeURIComponent(target.password);
    headers.authorization = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
    target.username = '';
    target.password = '';
  }
  try {
    const res = await fetch(target, {
      method: 'POST',
      headers,
      body: JSON.stringify(summaryOf(outcome)),
      signal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS),
      redirect: 'error',
    });
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) {
      log.warn(`the webhook ${shown} answered ${res.status}; the run's result stands`, { event: 'notify-failed' });
    } else log.info(`posted the ${outcome.ok ? 'success' : 'failure'} summary to ${shown}`, { event: 'notified' });
  } catch (e) {
    const err = e as Error & { cause?: Error };
    const why =
      err.name === 'TimeoutError' ? `no answer in ${NOTIFY_TIMEOUT_MS / 1000} s` : (err.cause?.message ?? err.message);
    log.warn(`could not post to the webhook ${shown}: ${why.split(url.href).join(shown)}; the run's result stands`, {
      event: 'notify-failed',
    });
  }
}
