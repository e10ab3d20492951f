// Several "machines" on one box: a network namespace per host, each joined by a veth pair to one
// bridge in a switch namespace, addresses in 127.77.0.0/24, links optionally shaped with `tc tbf`
// (netem is not available here). Nothing is added to the caller's own namespace: every veth lives
// in a namespace made here, so deleting the namespaces removes every link too.
//
// Loopback addresses on a wire: in each host namespace `route_localnet=1` (ip-sysctl.rst: loopback
// addresses are then neither martian source nor destination, and ARP answers for them), and the
// `local 127.0.0.0/8` route of `lo` is removed (only `local 127.0.0.1` stays), so the rest of 127/8
// leaves through the veth. The switch namespace brings no `lo` up: it would answer ARP for every
// 127 address on the bridge.
//
// Servers in a host listen on its address and are reachable only from the hosts of the same
// topology, not from the test process: talk to them with `host.run('curl', ...)` or another host.
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import { findBinary } from './peers.js';
import type { Daemon, RunOptions, RunResult } from './process.js';
import { run, startDaemon } from './process.js';

/** How to run a command on a host: `ip netns exec NS cmd args...` (ip execs, so the pid is the command's). */
export type CommandWrapper = (cmd: string, args: readonly string[]) => { cmd: string; args: string[] };

/** Where a server runs: the address and port it listens on, and how to run commands there. */
export interface HostPlacement {
  address: string;
  port: number;
  command: CommandWrapper;
}

/** Rates in Mbit/s as seen from the host: `up` leaves it, `down` reaches it. Omitted: unshaped. */
export interface LinkRate {
  upMbit?: number;
  downMbit?: number;
}

export interface HostSpec {
  /** Logical name, [a-z0-9-], unique in the topology (also part of the namespace name). */
  name: string;
  rate?: LinkRate;
}

export interface TopologyOptions {
  hosts: Array<HostSpec | string>;
  /** Namespace name prefix; a killed run's namespaces with this prefix are swept at the next start. */
  prefix?: string;
}

/** `tc -s qdisc` counters of one tbf (rate in bytes/s, as tc's JSON gives it). */
export interface TbfStats {
  rateBytesPerSecond: number;
  burstBytes: number;
  latencyMicroseconds: number;
  sentBytes: number;
  drops: number;
  overlimits: number;
}

export interface NetnsHost {
  readonly name: string;
  /** The network namespace, e.g. hoist-4242-1-node1. */
  readonly netns: string;
  /** Its address on the bridge, 127.77.0.N. */
  readonly address: string;
  readonly command: CommandWrapper;
  /** A port no other server of this run uses on this host (each namespace has its own ports). */
  nextPort(): number;
  /** address + a fresh port + command: the `placement` option of startRegistry/startMirrorProcess. */
  placement(port?: number): HostPlacement;
  run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  startDaemon(cmd: string, args: readonly string[], opts?: { env?: NodeJS.ProcessEnv }): Daemon;
  /** Shapes (or reshapes) this host's link; an omitted direction is left as it is. */
  shape(rate: LinkRate): Promise<void>;
  /** Unplugs (false) or plugs back (true) this host's cable at the switch: a partition. */
  setLinkUp(up: boolean): Promise<void>;
  /** The tbf on one direction of the link, undefined when that direction is unshaped. */
  tbfStats(direction: 'up' | 'down'): Promise<TbfStats | undefined>;
}

export interface Topology {
  readonly switchNetns: string;
  readonly hosts: readonly NetnsHost[];
  host(name: string): NetnsHost;
  /** Every namespace this topology made (switch last). */
  namespaces(): string[];
  /** Kills every process left in its namespaces and deletes them; safe to call twice. */
  destroy(): Promise<void>;
}

export const DEFAULT_PREFIX = 'hoist';
const SUBNET = '127.77.0';
const FIRST_HOST_OCTET = 2;
const FIRST_PORT = 5000;
const HOST_DEVICE = 'eth0';
const BRIDGE = 'br0';
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,23}$/;

/**
 * tbf parameters for a rate (tc-tbf(8)): the bucket must hold at least one timer tick of traffic
 * (rate/HZ, HZ=250 worst case) and at least one 64 KiB GSO segment, or tbf splits or drops it;
 * `latency` bounds the queue (limit = rate × latency + burst): 50 ms keeps drops rare at 200 Mbit/s
 * without hiding the rate behind a deep buffer.
 */
export function tbfArgs(mbit: number): string[] {
  if (!(mbit > 0)) throw new Error(`tbf rate must be a positive number of Mbit/s, got ${mbit}`);
  const bytesPerSecond = (mbit * 1e6) / 8;
  const burst = Math.max(64 * 1024, Math.ceil(bytesPerSecond / 250));
  return ['tbf', 'rate', `${mbit}mbit`, 'burst', String(burst), 'latency', '50ms'];
}

/** Why this machine cannot make topologies, or undefined when it can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  for (const bin of ['ip', 'tc']) {
    if (findBinary(bin) === undefined) return `missing peer: ${bin} (iproute2)`;
  }
  return undefined;
}

/** True when topologies can be made; otherwise skips with the reason, or throws under CI=true. */
export function requireNetns(t: TestContext): boolean {
  const reason = netnsUnavailable();
  if (reason === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI=true requires every peer test to run`);
  process.stderr.write(`${t.name}: skipped, ${reason}\n`);
  t.skip(reason);
  return false;
}

function ip(args: string[]): Promise<RunResult> {
  return run('ip', args, { timeoutMs: 30_000 });
}

/** Every network namespace name (`ip netns list` prints "NAME" or "NAME (id: N)"). */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await ip(['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills every process in a namespace, waits for them to go, and deletes it. */
async function deleteNamespace(name: string): Promise<void> {
  const { stdout } = await ip(['netns', 'pids', name]).catch(() => ({ stdout: '' }));
  const pids = stdout.split('\n').filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // SIGKILL has no completion event for processes that are not our children: poll, bounded.
  for (let i = 0; i < 100 && pids.some(pidAlive); i++) await new Promise((r) => setTimeout(r, 20));
  await ip(['netns', 'del', name]).catch((e: unknown) => {
    if (!/No such file/.test(String(e))) throw e;
  });
}

/**
 * Deletes namespaces `PREFIX-PID-...` whose PID no longer runs: what a killed earlier run left.
 * Namespaces of live runs (parallel tests) are left alone.
 */
export async function sweepStale(prefix: string = DEFAULT_PREFIX): Promise<string[]> {
  const re = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)-\\d+-`);
  const stale = (await listNamespaces()).filter((n) => {
    const pid = Number(re.exec(n)?.[1] ?? NaN);
    return Number.isInteger(pid) && pid !== process.pid && !pidAlive(pid);
  });
  // Hosts first, then switches, so a veth never outlives its peer's namespace for long.
  stale.sort((a, b) => Number(a.endsWith('-sw')) - Number(b.endsWith('-sw')));
  for (const n of stale) await deleteNamespace(n);
  return stale;
}

// Namespaces made by this process and not yet deleted: removed on exit even when a test forgot.
const live = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const name of live) {
      const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split('\n').filter(Boolean)) spawnSync('kill', ['-9', pid]);
      spawnSync('ip', ['netns', 'del', name]);
    }
  });
}

let counter = 0;

async function setupHost(
  switchNs: string,
  netns: string,
  index: number,
  address: string,
): Promise<{ switchDevice: string }> {
  const switchDevice = `v${index}`;
  await ip(['netns', 'add', netns]);
  await ip([
    '-n',
    switchNs,
    'link',
    'add',
    switchDevice,
    'type',
    'veth',
    'peer',
    'name',
    HOST_DEVICE,
    'netns',
    netns,
  ]);
  await ip(['-n', switchNs, 'link', 'set', switchDevice, 'master', BRIDGE, 'up']);
  await ip(['-n', netns, 'link', 'set', 'lo', 'up']);
  await ip(['-n', netns, 'route', 'del', 'local', '127.0.0.0/8', 'dev', 'lo', 'table', 'local']);
  await run('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv4.conf.all.route_localnet=1']);
  await ip(['-n', netns, 'addr', 'add', `${address}/24`, 'dev', HOST_DEVICE]);
  await ip(['-n', netns, 'link', 'set', HOST_DEVICE, 'up']);
  return { switchDevice };
}

async function waitOperstate(netns: string, device: string, up: boolean): Promise<void> {
  const want = up ? 'UP' : 'DOWN';
  let state = '';
  // No event to await without a netlink listener: poll, bounded (linkwatch acts within ~1 s).
  for (let i = 0; i < 250; i++) {
    const { stdout } = await ip(['-n', netns, '-j', 'link', 'show', 'dev', device]);
    state = (JSON.parse(stdout) as Array<{ operstate?: string }>)[0]?.operstate ?? '';
    if (state === want) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${netns} ${device}: operstate ${state}, not ${want}, after 5 s`);
}

async function readTbf(netns: string, device: string): Promise<TbfStats | undefined> {
  const { stdout } = await run('tc', ['-n', netns, '-s', '-j', 'qdisc', 'show', 'dev', device]);
  const qdiscs = JSON.parse(stdout) as Array<{
    kind: string;
    root?: boolean;
    options?: { rate?: number; burst?: number; lat?: number };
    bytes?: number;
    drops?: number;
    overlimits?: number;
  }>;
  const tbf = qdiscs.find((q) => q.kind === 'tbf' && q.root === true);
  if (tbf === undefined) return undefined;
  return {
    rateBytesPerSecond: tbf.options?.rate ?? 0,
    burstBytes: tbf.options?.burst ?? 0,
    latencyMicroseconds: tbf.options?.lat ?? 0,
    sentBytes: tbf.bytes ?? 0,
    drops: tbf.drops ?? 0,
    overlimits: tbf.overlimits ?? 0,
  };
}

function makeHost(
  name: string,
  netns: string,
  address: string,
  switchNs: string,
  switchDevice: string,
): NetnsHost {
  let port = FIRST_PORT;
  const command: CommandWrapper = (cmd, args) => ({
    cmd: 'ip',
    args: ['netns', 'exec', netns, cmd, ...args],
  });
  const ends = { up: [netns, HOST_DEVICE], down: [switchNs, switchDevice] } as const;
  const host: NetnsHost = {
    name,
    netns,
    address,
    command,
    nextPort: () => port++,
    placement: (p) => ({ address, port: p ?? port++, command }),
    run: (cmd, args, opts) => {
      const c = command(cmd, args);
      return run(c.cmd, c.args, opts);
    },
    startDaemon: (cmd, args, opts) => {
      const c = command(cmd, args);
      return startDaemon(c.cmd, c.args, opts);
    },
    async shape(rate) {
      for (const dir of ['up', 'down'] as const) {
        const mbit = dir === 'up' ? rate.upMbit : rate.downMbit;
        if (mbit === undefined) continue;
        const [ns, dev] = ends[dir];
        await run('tc', ['-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', ...tbfArgs(mbit)]);
      }
    },
    async setLinkUp(up) {
      await ip(['-n', switchNs, 'link', 'set', switchDevice, up ? 'up' : 'down']);
      // The kernel applies a carrier change later (linkwatch, up to a second), and drops packets
      // until then: wait until both ends show the new state, so the caller's next packet sees it.
      await waitOperstate(switchNs, switchDevice, up);
      await waitOperstate(netns, HOST_DEVICE, up);
      // ARP entries that failed while unplugged would wait out their retry timer: forget them.
      if (up) await ip(['-n', netns, 'neigh', 'flush', 'dev', HOST_DEVICE]);
    },
    tbfStats: (dir) => readTbf(ends[dir][0], ends[dir][1]),
  };
  return host;
}

/**
 * Makes a switch namespace with a bridge and one namespace per host (addresses 127.77.0.2, .3, ...
 * in the order given). Namespaces are named PREFIX-PID-N-NAME; stale ones of this prefix from a
 * killed run are swept first. The caller must `destroy()` it (tests: `t.after(() => topo.destroy())`);
 * on process exit whatever is left is deleted too.
 */
export async function createTopology(opts: TopologyOptions): Promise<Topology> {
  const reason = netnsUnavailable();
  if (reason !== undefined) throw new Error(`cannot create network namespaces: ${reason}`);
  const specs = opts.hosts.map((h) => (typeof h === 'string' ? { name: h } : h));
  const names = new Set<string>();
  for (const s of specs) {
    if (!NAME_RE.test(s.name)) throw new Error(`host name '${s.name}': use 1-24 of [a-z0-9-]`);
    if (names.has(s.name)) throw new Error(`host name '${s.name}' is used twice`);
    names.add(s.name);
  }
  if (specs.length > 250) throw new Error(`at most 250 hosts fit in ${SUBNET}.0/24`);
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  await sweepStale(prefix);
  installExitHook();

  const base = `${prefix}-${process.pid}-${++counter}`;
  const switchNetns = `${base}-sw`;
  const made: string[] = [];
  const hosts: NetnsHost[] = [];
  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    // Hosts first: deleting a host namespace also removes its veth's switch end.
    for (const n of [...made].reverse()) {
      await deleteNamespace(n);
      live.delete(n);
    }
  };

  try {
    made.push(switchNetns);
    live.add(switchNetns);
    await ip(['netns', 'add', switchNetns]);
    await ip(['-n', switchNetns, 'link', 'add', BRIDGE, 'type', 'bridge']);
    await ip(['-n', switchNetns, 'link', 'set', BRIDGE, 'up']);
    for (const [i, spec] of specs.entries()) {
      const netns = `${base}-${spec.name}`;
      const address = `${SUBNET}.${FIRST_HOST_OCTET + i}`;
      made.push(netns);
      live.add(netns);
      const { switchDevice } = await setupHost(switchNetns, netns, i, address);
      const host = makeHost(spec.name, netns, address, switchNetns, switchDevice);
      if (spec.rate !== undefined) await host.shape(spec.rate);
      hosts.push(host);
    }
  } catch (e) {
    await destroy();
    throw e;
  }

  return {
    switchNetns,
    hosts,
    host(name) {
      const h = hosts.find((x) => x.name === name);
      if (h === undefined) throw new Error(`no host '${name}' in this topology`);
      return h;
    },
    namespaces: () => [...made.slice(1), switchNetns],
    destroy,
  };
}
