// The ways the peers bench gets an image onto N nodes. Each mode says which extra hosts it needs
// in the topology and what it starts on them; the runner (bench/peers.ts) then starts one skopeo
// per node at once against the registry the mode names for that node, and measures.
//
// A mode is one object in MODES. Spegel needs a containerd on each node as the client, and cannot
// be built here; see BENCHMARKS.md ("Peers").
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistryPeer } from '../test/helpers/registry.js';
import type { MirrorProcess } from '../test/helpers/mirror.js';
import { startMirrorProcess } from '../test/helpers/mirror.js';
import type { HostSpec, NetnsHost, Topology } from '../test/helpers/netns.js';
import type { NodeMirror } from './peers-diagnostics.js';

export type ModeName = 'direct' | 'zonal' | 'peers' | 'spegel';

export interface LinkPlan {
  nodeMbit: number;
  upstreamMbit: number;
  /** The zonal mirror's link (both directions). */
  mirrorMbit: number;
}

export interface ModeContext {
  topology: Topology;
  upstream: RegistryPeer;
  /** The nodes of this round (the first N node hosts). */
  nodes: readonly NetnsHost[];
  /** Where a mode may write logs. */
  logDir: string;
  /** Extra flags for every Hoist peer mirror (bench/peers.ts --mirror-arg). */
  mirrorArgs?: readonly string[];
}

export interface RunningMode {
  /** The registry (HOST:PORT) a node's skopeo pulls from. */
  sourceFor(node: NetnsHost): string;
  /** What the mode ran, for the results (e.g. its mirrors' logs' paths). */
  notes: Record<string, unknown>;
  /** Each node's own mirror, when the mode runs one per node (for bench/peers-diagnostics.ts). */
  nodeMirrors?: NodeMirror[];
  stop(): Promise<void>;
}

export interface BenchMode {
  name: ModeName;
  /** Why it cannot run here; the runner records this instead of figures. */
  unavailable?: string;
  /** Hosts this mode adds to the topology besides `upstream` and the nodes. */
  extraHosts(links: LinkPlan): HostSpec[];
  /** Starts the mode's servers, cold (empty storage), for one round. */
  start(ctx: ModeContext): Promise<RunningMode>;
}

const direct: BenchMode = {
  name: 'direct',
  extraHosts: () => [],
  start: ({ upstream }) =>
    Promise.resolve({ sourceFor: () => upstream.host, notes: {}, stop: () => Promise.resolve() }),
};

/** One Hoist mirror on a host of its own, shared by every node (a zonal Deployment). */
const zonal: BenchMode = {
  name: 'zonal',
  extraHosts: (links) => [{ name: 'mirror', rate: { upMbit: links.mirrorMbit, downMbit: links.mirrorMbit } }],
  async start({ topology, upstream }) {
    const host = topology.host('mirror');
    const mirror: MirrorProcess = await startMirrorProcess(
      { [upstream.host]: upstream.url },
      { defaultUpstream: upstream.host, placement: host.placement() },
    );
    return { sourceFor: () => mirror.host, notes: { mirror: mirror.host }, stop: () => mirror.stop() };
  },
};

/**
 * Hoist peers (issue 13, docs/peers.md): one mirror per node, on the node, that knows every other
 * node's mirror; each node pulls through its own. The cluster token is a file all of them read.
 */
const peers: BenchMode = {
  name: 'peers',
  extraHosts: () => [],
  async start({ upstream, nodes, logDir, mirrorArgs = [] }) {
    const tokenFile = join(logDir, `peer-token-${process.pid}`);
    await writeFile(tokenFile, randomBytes(24).toString('hex'), { mode: 0o600 });
    const places = nodes.map((n) => n.placement());
    const urls = places.map((p) => `http://${p.address}:${p.port}`);
    const peerArgs = (self: string) => [
      '--peer-self',
      self,
      '--peer-token-file',
      tokenFile,
      ...urls.flatMap((u) => ['--peer', u]),
    ];
    const mirrors: MirrorProcess[] = [];
    try {
      for (const [i, placement] of places.entries()) {
        mirrors.push(
          await startMirrorProcess(
            { [upstream.host]: upstream.url },
            {
              defaultUpstream: upstream.host,
              placement,
              args: [...peerArgs(urls[i] as string), ...mirrorArgs],
            },
          ),
        );
      }
    } catch (err) {
      await Promise.all(mirrors.map((m) => m.stop()));
      throw err;
    }
    const byNode = new Map(nodes.map((n, i) => [n, mirrors[i] as MirrorProcess]));
    return {
      sourceFor: (node) => (byNode.get(node) as MirrorProcess).host,
      notes: { mirrors: mirrors.map((m) => m.host) },
      nodeMirrors: nodes.map((node, i) => {
        const m = mirrors[i] as MirrorProcess;
        return { node, url: m.url, stderr: () => m.stderr() };
      }),
      stop: async () => {
        await Promise.all(mirrors.map((m) => m.stop()));
        await rm(tokenFile, { force: true });
      },
    };
  },
};

function notYet(name: ModeName, why: string): BenchMode {
  return {
    name,
    unavailable: why,
    extraHosts: () => [],
    start: () => Promise.reject(new Error(`${name}: ${why}`)),
  };
}

export const MODES: Record<ModeName, BenchMode> = {
  direct,
  zonal,
  peers,
  spegel: notYet(
    'spegel',
    'cannot be built here: the Go module proxy answers 403 for github.com/spegel-org/spegel ' +
      '(checked 2026-12-01); it would also need a containerd per node as the client, since it serves ' +
      "only what a node's containerd content store holds (see BENCHMARKS.md)",
  ),
};
