// What the mirror process used, from /proc: VmRSS sampled while clients pull, VmHWM (the kernel's
// own peak-RSS mark) at the end, and CPU time (user and system) around a measurement.
import { readdir, readFile } from 'node:fs/promises';

/** /proc/PID/stat counts CPU time in USER_HZ ticks, 100 per second on Linux (getconf CLK_TCK). */
const TICKS_PER_SECOND = 100;

export interface CpuTime {
  userSeconds: number;
  systemSeconds: number;
}

export async function readCpuTime(pid: number): Promise<CpuTime> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name, which may itself contain spaces (proc(5)).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after "pid (comm) ".
  return {
    userSeconds: Number(fields[11]) / TICKS_PER_SECOND,
    systemSeconds: Number(fields[12]) / TICKS_PER_SECOND,
  };
}

export function cpuSince(before: CpuTime, after: CpuTime): CpuTime {
  return {
    userSeconds: after.userSeconds - before.userSeconds,
    systemSeconds: after.systemSeconds - before.systemSeconds,
  };
}

export interface MemoryStatus {
  rssBytes: number;
  hwmBytes: number;
}

export async function readMemory(pid: number): Promise<MemoryStatus> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]) * 1024;
  };
  return { rssBytes: kib('VmRSS'), hwmBytes: kib('VmHWM') };
}

export interface MemoryReport {
  /** VmRSS just before the clients started. */
  startRssBytes: number;
  /** Highest VmRSS sampled. */
  peakSampledRssBytes: number;
  /** VmHWM at the end: the peak over the process's life, which began just before this scenario. */
  hwmBytes: number;
  samples: number;
}

/** Samples VmRSS every `intervalMs` until stop(). */
export class RssSampler {
  private readonly pid: number;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private peak = 0;
  private count = 0;
  private start = 0;

  constructor(pid: number, intervalMs = 50) {
    this.pid = pid;
    this.intervalMs = intervalMs;
  }

  async begin(): Promise<void> {
    this.start = (await readMemory(this.pid)).rssBytes;
    this.peak = this.start;
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
  }

  async end(): Promise<MemoryReport> {
    clearInterval(this.timer);
    const last = await readMemory(this.pid);
    this.peak = Math.max(this.peak, last.rssBytes);
    return {
      startRssBytes: this.start,
      peakSampledRssBytes: this.peak,
      hwmBytes: last.hwmBytes,
      samples: this.count + 1,
    };
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const { rssBytes } = await readMemory(this.pid);
      this.peak = Math.max(this.peak, rssBytes);
      this.count += 1;
    } catch {
      // The process exited; end() reports the failure.
    } finally {
      this.busy = false;
    }
  }
}

/** The pid of the process whose command line contains `needle` (e.g. a config path). */
export async function findPid(needle: string): Promise<number> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(needle)) return Number(entry);
  }
  throw new Error(`no process with "${needle}" on its command line`);
}
