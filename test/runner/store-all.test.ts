// The order and concurrency of a backup's artifacts (commands/backup.ts storeAll): in order, with
// `alongside` ones at the same time; the first failure stops the others and is what is thrown.
import { describe, expect, test } from '@jest/globals';
import { ManifestArtifact } from '../../lib/core/manifest';
import { storeAll } from '../../runner/src/commands/backup';
import { ArtifactPlan } from '../../runner/src/engines';

const plan = (name: string, alongside = false): ArtifactPlan => ({
  name,
  role: name,
  format: 'test',
  producer: { cmd: 'true', args: [] },
  alongside,
});
const artifact = (name: string): ManifestArtifact => ({ name, role: name, format: 'test', size: 1, sha256: 'x' });
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    });
  });

describe('storeAll', () => {
  test('in order; an alongside artifact runs while the first streams; results keep the plans order', async () => {
    const events: string[] = [];
    const results = await storeAll(
      [plan('database'), plan('toc'), plan('globals', true)],
      new AbortController().signal,
      async (p) => {
        events.push(`start ${p.name}`);
        await sleep(p.name === 'database' ? 60 : 5);
        events.push(`end ${p.name}`);
        return artifact(p.name);
      },
    );
    expect(results.map((a) => a?.name)).toEqual(['database', 'toc', 'globals']);
    expect(events).toEqual(['start database', 'start globals', 'end globals', 'end database', 'start toc', 'end toc']);
  });

  test('the first failure aborts the others, is thrown once all ended, and what follows never starts', async () => {
    const started: string[] = [];
    let globalsSaw: unknown;
    const failure = new Error('pg_dump failed');
    const run = storeAll(
      [plan('database'), plan('toc'), plan('globals', true)],
      new AbortController().signal,
      async (p, s) => {
        started.push(p.name);
        if (p.name === 'database') {
          await sleep(20);
          throw failure;
        }
        await sleep(5000, s).catch((e) => {
          globalsSaw = e;
          throw new Error('aborted');
        });
        return artifact(p.name);
      },
    );
    await expect(run).rejects.toBe(failure);
    expect(globalsSaw).toBe(failure);
    expect(started).toEqual(['database', 'globals']);
  });

  test('an interrupt aborts every pipeline and is what is thrown', async () => {
    const outer = new AbortController();
    const reason = new Error('interrupted by SIGTERM');
    setTimeout(() => outer.abort(reason), 20);
    const run = storeAll([plan('database'), plan('globals', true)], outer.signal, async (_p, s) => {
      await sleep(5000, s);
      return undefined;
    });
    await expect(run).rejects.toBe(reason);
  });
});
