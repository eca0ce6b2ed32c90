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
  /**
   * CPU seconds spent: the command's process tree (user + system, GNU time) and, when a server's
   * pid is given, the server's processes (its own and its reaped children's counters, plus its
   * live children's). On a machine shared with other work this varies far less than wall time.
   */
  readonly cpuSeconds?: number;
}

const TICK = 100; // USER_HZ on Linux

/** The 1, 5 and 15 minute load averages, from /proc/loadavg ("0.52 1.10 0.90"). */
export function loadAverage(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** The conditions of one table's measurements, printed above it. */
export interface Conditions {
  readonly date: string;
  readonly loadAtStart: string;
  readonly loadAtEnd: string;
}

/** Run `work`, noting the date and the load average before and after it. */
export async function underConditions(work: () => Promise<void>): Promise<Conditions> {
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const loadAtStart = loadAverage();
  await work();
  return { date, loadAtStart, loadAtEnd: loadAverage() };
}

/** CPU seconds of `pid` and its reaped children, plus its live children's own (from /proc). */
export function serverCpuSeconds(pid: number): number {
  const fields = (p: number) => {
    const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After ')': state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
  };
  let ticks = 0;
  try {
    const root = fields(pid);
    ticks += root.own + root.reaped;
  } catch {
    return 0;
  }
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const f = fields(Number(p));
      if (f.ppid === pid) ticks += f.own;
    } catch {
      // gone
    }
  }
  return ticks / TICK;
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
  serverPid?: number,
): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const timeFile = `${fs.mkdtempSync('/tmp/dbbackup-measure-')}/time`;
    const serverBefore = serverPid === undefined ? 0 : serverCpuSeconds(serverPid);
    const started = process.hrtime.bigint();
    // GNU time reports the CPU of the command and every descendant it waited for.
    const child = spawn('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, cmd, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    let topPeak = 0;
    let treePeak = 0;
    const timer = setInterval(() => {
      // The command is the child of GNU time.
      const top = tree(child.pid!)[1];
      if (top !== undefined) topPeak = Math.max(topPeak, statusKiB(top, 'VmHWM'));
      treePeak = Math.max(
        treePeak,
        tree(child.pid!).reduce((s, p) => s + statusKiB(p, 'VmRSS'), 0),
      );
    }, 50);
    child.on('close', (code) => {
      clearInterval(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${label} exited with ${code}: ${stderr}`));
      const [user, sys] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      fs.rmSync(timeFile.replace(/\/time$/, ''), { recursive: true, force: true });
      const server = serverPid === undefined ? 0 : serverCpuSeconds(serverPid) - serverBefore;
      // The time process itself is the top process now: VmHWM of its child is what was measured before.
      resolve({
        label,
        seconds,
        topPeakMiB: topPeak / 1024,
        treePeakMiB: treePeak / 1024,
        cpuSeconds: user + sys + server,
      });
    });
  });
}
