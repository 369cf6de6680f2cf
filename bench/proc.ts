/** What /proc tells of the processes a bench section measures: memory, CPU time, the CLIs of a config dir. */
import fs from 'node:fs';

/** Resident and proportional set size of a process, in bytes (0 once it is gone). */
export function memOf(pid: number): { rss: number; pss: number } {
  try {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    const pss = Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
    return { rss, pss };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU time (user + system) a process has used so far, in ms; NaN once it is gone. */
export function cpuOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name (which may hold spaces), from field 3 on.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return NaN;
  }
}

/**
 * The CLI processes of one server or harness: processes whose environment holds
 * CLAUDE_CONFIG_DIR=`configDir` and whose program is the CLI. With `helpers`, also what else has
 * that environment (the server itself, the sandbox's socat proxies, tools): for CPU accounting.
 */
export function cliPids(configDir: string, opts: { helpers?: boolean } = {}): number[] {
  const needle = Buffer.from(`CLAUDE_CONFIG_DIR=${configDir}\0`);
  const out: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue;
    try {
      if (!fs.readFileSync(`/proc/${n}/environ`).includes(needle)) continue;
      if (opts.helpers || fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0')[0]!.endsWith('/claude')) out.push(Number(n));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Samples the CPU time of a config dir's CLIs every `everyMs`: `total()` is the CPU they used
 * since the start (a process that ends between two samples loses at most one interval's worth).
 */
export function cliCpuMeter(configDir: string, exclude: number[] = [], everyMs = 200) {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const sample = () => {
    for (const pid of cliPids(configDir, { helpers: true })) {
      if (exclude.includes(pid)) continue;
      const c = cpuOf(pid);
      if (Number.isNaN(c)) continue;
      if (!first.has(pid)) first.set(pid, c);
      last.set(pid, c);
    }
  };
  sample();
  // Processes alive at the start count from there on; later ones from 0.
  const startedBefore = new Set(first.keys());
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      sample();
      clearInterval(timer);
    },
    total() {
      let ms = 0;
      for (const [pid, c] of last) ms += c - (startedBefore.has(pid) ? first.get(pid)! : 0);
      return ms;
    },
    processes: () => last.size,
  };
}
