// Whole-process measurements for the benchmarks: wall time, and peak RSS of the top process
// (its VmHWM) and of its whole process tree (sampled sum of VmRSS every 50 ms).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

export interface Measurement {
  readonly label: string;
  readonly seconds: number;
  readonly topPeakMiB: number;
  readonly treePeakMiB: number;
  readonly outputBytes?: number;
}

function statusKiB(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function tree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const ppid = Number(/^\d+ \(.*\) \S+ (\d+)/.exec(fs.readFileSync(`/proc/${p}/stat`, 'utf8'))![1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(p)]);
    } catch {
      // gone
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

/** Run `cmd args` to completion, sampling memory; fails if it exits non-zero. */
export function measure(
  label: string,
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    let topPeak = 0;
    let treePeak = 0;
    const timer = setInterval(() => {
      topPeak = Math.max(topPeak, statusKiB(child.pid!, 'VmHWM'));
      treePeak = Math.max(
        treePeak,
        tree(child.pid!).reduce((s, p) => s + statusKiB(p, 'VmRSS'), 0),
      );
    }, 50);
    child.on('close', (code) => {
      clearInterval(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${label} exited with ${code}: ${stderr}`));
      resolve({ label, seconds, topPeakMiB: topPeak / 1024, treePeakMiB: treePeak / 1024 });
    });
  });
}
