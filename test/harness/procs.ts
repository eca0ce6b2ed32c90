import * as fs from 'node:fs';

/** The command lines of every process on the machine right now (argv joined by spaces). */
export function allCmdlines(): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      out.push(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      // gone already
    }
  }
  return out;
}

/** Descendants of `root` whose program name is `name` (from /proc/PID/stat). */
export function findDescendant(root: number, name: string): number | undefined {
  const parents = new Map<number, { ppid: number; comm: string }>();
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
      if (m !== null) parents.set(Number(pid), { ppid: Number(m[2]), comm: m[1] });
    } catch {
      // gone
    }
  }
  for (const [pid, info] of parents) {
    if (info.comm !== name) continue;
    for (let p = info.ppid, depth = 0; p > 1 && depth < 10; p = parents.get(p)?.ppid ?? 0, depth++) {
      if (p === root) return pid;
    }
  }
  return undefined;
}

/** Poll `fn` every `everyMs` until it returns a value or `timeoutMs` passes. */
export async function poll<T>(fn: () => T | undefined, timeoutMs = 30000, everyMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`nothing after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
