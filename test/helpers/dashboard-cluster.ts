// A PrePull controller with its dashboard, in-process, against the real kube-apiserver: the
// CRDs applied, the controller's service account bound to exactly src/prepull/rbac.ts, Nodes
// made, and the controller's HTTP listener (probes, metrics, dashboard) on 127.0.0.1. Tests play
// the agent by patching NodePull status, or run a real one (startMirroredNode: a node's mirror on
// 127.0.0.1 with its metrics socket, containerd, and `hoist agent` under the agent's RBAC).
// Shared by test/dashboard.test.ts and the browser test.
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { Dashboard, type DashboardOptions } from '../../src/dashboard/index.js';
import { KubeClient, loadKubeConfig } from '../../src/kube/index.js';
import {
  ControllerMetrics,
  createControllerServer,
  listen,
  PrePullController,
  summariseNodePullStatus,
  type NodePullImageStatus,
} from '../../src/prepull/index.js';
import { startCriNode, startHoist, type LongRunning } from './cri.js';
import { buildImage, pushImage } from './images.js';
import type { KubeApiServer } from './kube.js';
import { startMirrorProcess, type MirrorProcess } from './mirror.js';
import { testTempDir } from './peers.js';
import { agentKubeconfig, nodePulls, ok, SYSTEM, TEAM, testControllerOptions } from './prepull-cluster.js';
import { waitUntil } from './process.js';
import { startRegistry, type RegistryPeer } from './registry.js';

// The cluster setup is shared with test/controller.test.ts (test/helpers/prepull-cluster.ts).
export {
  agentKubeconfig,
  eventually,
  makeNode,
  nodePulls,
  prepareCluster,
  SYSTEM,
  TEAM,
} from './prepull-cluster.js';

export interface MirroredNode {
  registry: RegistryPeer;
  mirror: MirrorProcess;
  /** The mirror's metrics socket, which the agent reads. */
  socket: string;
  agent: LongRunning;
  /** An image in the registry: its digest reference, and the repository path in it. */
  image: { ref: string; repo: string; digest: string };
}

/**
 * One node as the chart's default runs it: a real docker-registry upstream, `hoist mirror` on
 * 127.0.0.1 with `--metrics-socket`, a real containerd, and `hoist agent` in cluster mode (its
 * kubeconfig bound to the agent's RBAC) that configures containerd to pull through the mirror and
 * reads the mirror's /metrics only over the socket, every `intervalSeconds`. Stopped after `t`.
 */
export async function startMirroredNode(
  t: TestContext,
  api: KubeApiServer,
  node: string,
  intervalSeconds = 1,
): Promise<MirroredNode> {
  const work = await testTempDir(t, 'hoist-dashboard-node-');
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const repo = 'ml/cached';
  const built = await buildImage(join(work, 'image'), {
    tag: 'v1',
    layers: [{ files: [{ path: 'weights.bin', size: 400_000, seed: `dashboard-${node}` }] }],
  });
  await pushImage(built.dir, 'v1', `${registry.host}/${repo}:v1`);
  const socket = join(work, 'mirror-metrics.sock');
  const mirror = await startMirrorProcess(
    { [registry.host]: registry.url },
    { defaultUpstream: registry.host, args: ['--metrics-socket', socket] },
  );
  t.after(() => mirror.stop());
  const { ctd, endpoint } = await startCriNode(t);
  const kubeconfig = await agentKubeconfig(api);
  const agent = startHoist([
    'agent',
    '--runtime-endpoint',
    endpoint,
    '--listen',
    '127.0.0.1:0',
    '--certs-dir',
    ctd.hostsDir,
    '--disk-high-water',
    'none',
    '--kubeconfig',
    kubeconfig,
    '--node-name',
    node,
    '--namespace',
    SYSTEM,
    '--mirror',
    mirror.url,
    '--registries',
    `${registry.host}=${registry.url}`,
    '--mirror-metrics',
    `unix://${socket}`,
    '--mirror-metrics-interval-seconds',
    String(intervalSeconds),
  ]);
  t.after(() => agent.stop());
  const url = await agent.url;
  await waitUntil('the agent lists its NodePull', async () => (await fetch(`${url}/readyz`)).status === 200, {
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  return {
    registry,
    mirror,
    socket,
    agent,
    image: { ref: `${registry.host}/${repo}@${built.digest}`, repo, digest: built.digest },
  };
}

export interface ControllerReplica {
  url: string;
  controller: PrePullController;
  dashboard: Dashboard;
  server: Server;
  stop(): Promise<void>;
}

/** One controller replica with its dashboard and listener, as `hoist controller` wires them. */
export async function startReplica(
  kubeconfig: string,
  identity: string,
  dashboardOptions: Partial<DashboardOptions> = {},
): Promise<ControllerReplica> {
  const client = new KubeClient(await loadKubeConfig({ kubeconfig }), {
    userAgent: `hoist-controller-${identity}`,
  });
  const logger = pino({ level: 'warn', base: { identity } });
  const metrics = new ControllerMetrics();
  const controller = new PrePullController({
    client,
    ...testControllerOptions(identity),
    logger,
    metrics,
  });
  const dashboard = new Dashboard({
    client,
    identity,
    isLeader: () => controller.isLeader,
    logger,
    ...dashboardOptions,
  });
  const server = createControllerServer({
    metrics,
    ready: () => controller.ready,
    routes: (req, res, url) => dashboard.handle(req, res, url),
  });
  const address = await listen(server, '127.0.0.1', 0);
  const stop = new AbortController();
  dashboard.start(stop.signal);
  const done = controller.run(stop.signal);
  return {
    url: `http://127.0.0.1:${address.port}`,
    controller,
    dashboard,
    server,
    async stop() {
      stop.abort();
      await done.catch(() => {});
      await new Promise<void>((resolve) => server.close(() => resolve()));
      client.close();
    },
  };
}

/** The agent's part: a status for each spec image of NodePull `name`. */
export async function report(
  api: KubeApiServer,
  name: string,
  phase: (image: string) => Partial<NodePullImageStatus> & Pick<NodePullImageStatus, 'phase'>,
): Promise<void> {
  const np = (await nodePulls(api)).find((n) => n.metadata.name === name);
  assert.ok(np, `NodePull ${name} exists`);
  const images = np.spec.images.map((e) => ({ image: e.image, attempts: 1, ...phase(e.image) }));
  const r = await api.kubectl([
    'patch',
    'nodepull',
    name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status: { observedGeneration: 1, images, summary: summariseNodePullStatus(images) } }),
  ]);
  assert.equal(r.code, 0, r.stderr);
}

/** A digest reference the controller takes as is (no registry needed to resolve it). */
export function digestImage(repo: string, fill: string): string {
  return `127.0.0.1:5999/${repo}@sha256:${fill.repeat(64).slice(0, 64)}`;
}

export async function createPrePull(
  api: KubeApiServer,
  name: string,
  images: string[],
  pool: string,
): Promise<void> {
  await ok(
    api.request('POST', `/apis/prepull.hoist.dev/v1alpha1/namespaces/${TEAM}/prepulls`, {
      body: {
        apiVersion: 'prepull.hoist.dev/v1alpha1',
        kind: 'PrePull',
        metadata: { name },
        spec: { images, nodeSelector: { pool }, maxConcurrentNodes: '100%' },
      },
    }),
    `PrePull ${name}`,
  );
}

export interface SseEvent {
  event: string;
  data: string;
}

/** A Server-Sent Events reader over node:http: collects events, waits for one that matches. */
export class SseClient {
  readonly events: SseEvent[] = [];
  comments = 0;
  private res: IncomingMessage | undefined;
  private waiters: Array<() => void> = [];

  static async open(url: string): Promise<SseClient> {
    const c = new SseClient();
    await new Promise<void>((resolve, reject) => {
      const req = request(url, { headers: { accept: 'text/event-stream' } }, (res) => {
        c.res = res;
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /^text\/event-stream/);
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            c.parse(buf.slice(0, end));
            buf = buf.slice(end + 2);
          }
        });
        resolve();
      });
      req.on('error', reject);
      req.end();
    });
    return c;
  }

  private parse(block: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.comments++;
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) this.events.push({ event, data: data.join('\n') });
    for (const w of this.waiters.splice(0)) w();
  }

  /** The first event from index `from` on for which `match` holds. */
  async waitFor<T>(
    what: string,
    match: (e: SseEvent) => T | undefined,
    from = 0,
    timeoutMs = 30_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (let i = from; ;) {
      for (; i < this.events.length; i++) {
        const v = match(this.events[i]!);
        if (v !== undefined) return v;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: no such event in ${this.events.length} events`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.res?.destroy();
  }
}
