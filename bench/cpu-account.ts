// CPU used during one benchmark round, to tell a network-bound result from a CPU-bound one (two
// cores shared by every mirror and client): the user+system seconds of this process's descendants
// (mirrors, registries, clients; by command name), of the children that exited and were reaped
// during the round (the clients), of the bench process itself, and the whole machine's busy time
// from /proc/stat over the same span. All from /proc (proc(5)), in USER_HZ ticks.
import { readdir, readFile } from 'node:fs/promises';

/** /proc counts CPU time in USER_HZ ticks, 100 per second on Linux (getconf CLK_TCK). */
const TICKS_PER_SECOND = 100;

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime of the process itself, in ticks. */
  ticks: number;
  /** cutime + cstime: children it waited for, in ticks. */
  childTicks: number;
  /** When it started (ticks after boot): a reused pid is another process. */
  start: number;
}

async function readStat(pid: number): Promise<ProcStat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  // After "pid (comm) ": state ppid ... utime(14) stime(15) cutime(16) cstime(17) ... starttime(22).
  const f = text.slice(close + 2).split(' ');
  const n = (i: number) => Number(f[i - 3]);
  return {
    pid,
    comm: text.slice(open + 1, close),
    ppid: n(4),
    ticks: n(14) + n(15),
    childTicks: n(16) + n(17),
    start: n(22),
  };
}

/** Every live descendant of `root`, found by walking parent pids across /proc. */
async function descendants(root: number): Promise<ProcStat[]> {
  const all: ProcStat[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = await readStat(Number(entry));
    if (s) all.push(s);
  }
  const children = new Map<number, ProcStat[]>();
  for (const s of all) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  const out: ProcStat[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift() as number) ?? []) {
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

interface MachineTicks {
  busy: number;
  total: number;
}

/** The "cpu" line of /proc/stat: busy is everything but idle and iowait. */
async function machineTicks(): Promise<MachineTicks> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n').find((l) => l.startsWith('cpu '));
  const v = (line ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const total = v.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

export interface RoundCpu {
  /** user+system seconds of live descendants over the round, by command name (node = hoist mirrors). */
  byCommandSeconds: Record<string, number>;
  /** Children that exited during the round and were reaped by this process (the clients). */
  reapedChildrenSeconds: number;
  /** Every mirror, registry and client: byCommandSeconds summed, plus reapedChildrenSeconds. */
  processSeconds: number;
  /** The bench process itself (orchestration, access-log parsing). */
  benchSeconds: number;
  /** The whole machine over the round: busy CPU-seconds, of capacity = cores × wall seconds. */
  machineBusySeconds: number;
  machineCapacitySeconds: number;
  /** machineBusySeconds ÷ machineCapacitySeconds: near 1 means the round was CPU-bound. */
  machineBusyFraction: number;
}

export interface CpuMark {
  procs: Map<number, ProcStat>;
  self: ProcStat;
  machine: MachineTicks;
}

/** A snapshot to measure a round from (take it after the round's servers are up). */
export async function markCpu(): Promise<CpuMark> {
  const procs = new Map((await descendants(process.pid)).map((s) => [s.pid, s]));
  const self = await readStat(process.pid);
  if (!self) throw new Error('cannot read /proc/self/stat');
  return { procs, self, machine: await machineTicks() };
}

/** CPU used since `mark`; call before the round's servers stop (their time is read while alive). */
export async function cpuSince(mark: CpuMark): Promise<RoundCpu> {
  const now = await descendants(process.pid);
  const self = await readStat(process.pid);
  const machine = await machineTicks();
  if (!self) throw new Error('cannot read /proc/self/stat');
  const byCommand: Record<string, number> = {};
  for (const s of now) {
    const before = mark.procs.get(s.pid);
    const base = before && before.start === s.start ? before.ticks : 0;
    byCommand[s.comm] = (byCommand[s.comm] ?? 0) + (s.ticks - base) / TICKS_PER_SECOND;
  }
  const reaped = (self.childTicks - mark.self.childTicks) / TICKS_PER_SECOND;
  const live = Object.values(byCommand).reduce((a, b) => a + b, 0);
  const busy = (machine.busy - mark.machine.busy) / TICKS_PER_SECOND;
  const capacity = (machine.total - mark.machine.total) / TICKS_PER_SECOND;
  return {
    byCommandSeconds: byCommand,
    reapedChildrenSeconds: reaped,
    processSeconds: live + reaped,
    benchSeconds: (self.ticks - mark.self.ticks) / TICKS_PER_SECOND,
    machineBusySeconds: busy,
    machineCapacitySeconds: capacity,
    machineBusyFraction: capacity > 0 ? busy / capacity : 0,
  };
}
