// `hoist agent` in cluster mode against the real kube-apiserver, a real containerd and real
// docker-registries: it follows the NodePull named after its node, pulls each entry on its own
// (a good image, a missing one that fails NotFound after its retry, a private one through a
// mirrored pull secret, one whose blob stalls and times out), writes the status subresource, drops
// a withdrawn entry from status, never logs the secret, and on containerd 2.x pins within the
// node's budget so that CRI reports the image pinned.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { NodePull } from '../src/agent/index.js';
import { writeHostsToml } from './helpers/containerd.js';
import { runHoist, startCriNode, startHoist } from './helpers/cri.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { buildImage, pushImage } from './helpers/images.js';
import { shareKubeApiServer, type KubeApiServer } from './helpers/kube.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { waitUntil } from './helpers/process.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 300_000 };
const NAMESPACE = 'hoist-system';
const USER = 'hoist-puller';
const PASSWORD = 'n0dePull:s3cret';
const CRD_FILE = new URL('../deploy/crds/prepull.hoist.dev_nodepulls.yaml', import.meta.url).pathname;
const NODEPULLS = '/apis/prepull.hoist.dev/v1alpha1/nodepulls';

/** What the agent may do, and no more: its NodePull (read, status) and Secrets of its namespace. */
const AGENT_RBAC = [
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'hoist-agent-test' },
    rules: [
      { apiGroups: ['prepull.hoist.dev'], resources: ['nodepulls'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['prepull.hoist.dev'], resources: ['nodepulls/status'], verbs: ['patch'] },
    ],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'hoist-agent-test' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'hoist-agent-test' },
    subjects: [{ kind: 'ServiceAccount', name: 'hoist-agent', namespace: NAMESPACE }],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'hoist-agent-test', namespace: NAMESPACE },
    rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'hoist-agent-test', namespace: NAMESPACE },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'hoist-agent-test' },
    subjects: [{ kind: 'ServiceAccount', name: 'hoist-agent', namespace: NAMESPACE }],
  },
];

async function kubectlOk(kube: KubeApiServer, args: string[], input?: string): Promise<string> {
  const res = await kube.kubectl(args, input === undefined ? {} : { input });
  assert.equal(res.code, 0, `kubectl ${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
}

/** The CRD, the agent's service account and RBAC; returns the agent's kubeconfig. */
let prepared: Promise<string> | undefined;
function prepareCluster(kube: KubeApiServer): Promise<string> {
  prepared ??= (async () => {
    await kubectlOk(kube, ['apply', '-f', CRD_FILE]);
    await kubectlOk(kube, [
      'wait',
      '--for',
      'condition=Established',
      '--timeout',
      '60s',
      'crd/nodepulls.prepull.hoist.dev',
    ]);
    const kubeconfig = await kube.serviceAccountKubeconfig(NAMESPACE, 'hoist-agent');
    await kubectlOk(
      kube,
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: AGENT_RBAC }),
    );
    return kubeconfig;
  })();
  return prepared;
}

async function getNodePull(kube: KubeApiServer, name: string): Promise<NodePull> {
  const res = await kube.request('GET', `${NODEPULLS}/${name}`);
  assert.equal(res.status, 200, res.body);
  return res.json as NodePull;
}

/** Polls the NodePull until `done` holds (the agent's writes are the event; nothing to subscribe to here). */
async function waitForNodePull(
  kube: KubeApiServer,
  name: string,
  what: string,
  done: (np: NodePull) => boolean,
  agentLog: () => string,
): Promise<NodePull> {
  let last: NodePull | undefined;
  try {
    await waitUntil(
      what,
      async () => {
        last = await getNodePull(kube, name);
        return done(last);
      },
      { timeoutMs: 180_000, intervalMs: 200 },
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\nlast NodePull: ${JSON.stringify(last, null, 2)}\nagent log:\n${agentLog()}`,
    );
  }
  return last!;
}

const byImage = (np: NodePull) => new Map((np.status?.images ?? []).map((i) => [i.image, i]));
const terminal = (np: NodePull, images: string[]) =>
  images.every((i) => ['Succeeded', 'Failed'].includes(byImage(np).get(i)?.phase ?? ''));

function agentArgs(
  kubeconfig: string,
  node: string,
  endpoint: string,
  hostsDir: string,
  extra: string[] = [],
) {
  return [
    'agent',
    '--runtime-endpoint',
    endpoint,
    '--listen',
    '127.0.0.1:0',
    '--log-level',
    'debug',
    '--certs-dir',
    hostsDir,
    '--disk-high-water',
    'none',
    '--kubeconfig',
    kubeconfig,
    '--node-name',
    node,
    '--namespace',
    NAMESPACE,
    ...extra,
  ];
}

function peersReady(t: TestContext): boolean {
  if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd', 'htpasswd')) return false;
  if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return false;
  return requireRoot(t, 'containerd mounts snapshots');
}

describe('hoist agent cluster mode', () => {
  const kubeServer = shareKubeApiServer();

  it('pulls its NodePull entries independently and reports them in status', TIMEOUT, async (t) => {
    if (!peersReady(t)) return;
    const kube = kubeServer();
    const kubeconfig = await prepareCluster(kube);
    const work = await testTempDir(t, 'hoist-agent-cluster-');

    const registry = await startRegistry();
    t.after(() => registry.stop());
    const privateRegistry = await startRegistry({ htpasswd: { username: USER, password: PASSWORD } });
    t.after(() => privateRegistry.stop());
    const built = async (name: string, size: number) =>
      buildImage(join(work, name), {
        tag: 'v1',
        layers: [{ files: [{ path: `${name}.bin`, size, seed: `cluster-${name}` }] }],
      });
    const good = await built('good', 300_000);
    await pushImage(good.dir, 'v1', `${registry.host}/team/good:v1`);
    const slow = await built('slow', 400_000);
    await pushImage(slow.dir, 'v1', `${registry.host}/team/slow:v1`);
    const priv = await built('private', 200_000);
    await pushImage(priv.dir, 'v1', `${privateRegistry.host}/team/private:v1`, {
      creds: `${USER}:${PASSWORD}`,
    });
    // The slow image's blobs come through a proxy that sends a few bytes and then nothing.
    const proxy = await startFaultProxy(registry.url);
    t.after(() => proxy.close());
    proxy.inject('blob', { kind: 'stall', afterBytes: 1000 }, 100);

    const refs = {
      good: `${registry.host}/team/good:v1`,
      missing: `${registry.host}/team/missing:v1`,
      private: `${privateRegistry.host}/team/private:v1`,
      slow: `${proxy.host}/team/slow:v1`,
    };
    const { ctd, cri, endpoint } = await startCriNode(t);
    for (const r of [registry, privateRegistry, proxy]) await writeHostsToml(ctd.hostsDir, r.host, r.url, []);

    // The pull secret as the controller mirrors it into the agents' namespace.
    const dockerconfigjson = JSON.stringify({
      auths: { [privateRegistry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } },
    });
    await kubectlOk(
      kube,
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'hoist-pull-test', namespace: NAMESPACE },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': Buffer.from(dockerconfigjson).toString('base64') },
      }),
    );
    const spec = {
      nodeName: 'node-a',
      maxConcurrentPulls: 2,
      images: [
        { image: refs.good, digest: good.digest, retryLimit: 0 },
        { image: refs.missing, retryLimit: 1, retryBackoffSeconds: 1 },
        { image: refs.private, pullSecrets: ['hoist-pull-test'], retryLimit: 0 },
        { image: refs.slow, retryLimit: 0, progressTimeoutSeconds: 10 },
      ],
    };
    await kubectlOk(
      kube,
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'prepull.hoist.dev/v1alpha1',
        kind: 'NodePull',
        metadata: { name: 'node-a' },
        spec,
      }),
    );

    const agent = startHoist(agentArgs(kubeconfig, 'node-a', endpoint, ctd.hostsDir));
    t.after(() => agent.stop());
    const url = await agent.url;
    await waitUntil(
      'the agent to list its NodePull',
      async () => (await fetch(`${url}/readyz`)).status === 200,
    );

    let np = await waitForNodePull(
      kube,
      'node-a',
      'every image done',
      (n) => terminal(n, Object.values(refs)),
      agent.stderr,
    );
    let status = byImage(np);
    const goodStatus = status.get(refs.good);
    const goodCri = await cri.imageStatus(refs.good);
    assert.equal(goodStatus?.phase, 'Succeeded', JSON.stringify(goodStatus));
    assert.equal(goodStatus.digest, good.digest);
    assert.equal(goodStatus.imageId, goodCri?.id);
    assert.equal(goodStatus.sizeBytes, goodCri?.size);
    assert.equal(goodStatus.attempts, 1);
    assert.equal(goodStatus.pinned, false);
    assert.ok(goodStatus.startedAt && goodStatus.finishedAt);

    const missing = status.get(refs.missing);
    assert.equal(missing?.phase, 'Failed', JSON.stringify(missing));
    assert.equal(missing.reason, 'NotFound');
    assert.equal(missing.attempts, 2, 'the first attempt and its one retry');
    assert.match(missing.message ?? '', /not found/);

    const privateStatus = status.get(refs.private);
    assert.equal(privateStatus?.phase, 'Succeeded', JSON.stringify(privateStatus));
    assert.ok(await cri.imageStatus(refs.private), 'pulled with the pull secret');
    assert.ok(
      privateRegistry.accessLog().some((e) => e.status === 200 && e.path === '/v2/team/private/manifests/v1'),
      'the private registry served it with credentials',
    );

    const slowStatus = status.get(refs.slow);
    assert.equal(slowStatus?.phase, 'Failed', JSON.stringify(slowStatus));
    assert.equal(slowStatus.reason, 'Timeout');
    assert.equal(await cri.imageStatus(refs.slow), undefined);

    assert.equal(np.status?.observedGeneration, np.metadata.generation);
    assert.deepEqual(np.status?.summary, { images: 4, pending: 0, pulling: 0, succeeded: 2, failed: 2 });

    // The controller withdraws the missing image: it leaves the status, the rest stays.
    await kubectlOk(kube, [
      'patch',
      'nodepull',
      'node-a',
      '--type',
      'merge',
      '-p',
      JSON.stringify({ spec: { images: spec.images.filter((i) => i.image !== refs.missing) } }),
    ]);
    np = await waitForNodePull(
      kube,
      'node-a',
      'the withdrawn image to leave status',
      (n) => n.status?.observedGeneration === n.metadata.generation && !byImage(n).has(refs.missing),
      agent.stderr,
    );
    status = byImage(np);
    assert.deepEqual([...status.keys()].sort(), [refs.good, refs.private, refs.slow].sort());
    assert.equal(status.get(refs.good)?.phase, 'Succeeded');
    assert.equal(status.get(refs.slow)?.reason, 'Timeout', 'unchanged entries are not pulled again');

    // The local API still reports the queue.
    const local = (await (await fetch(`${url}/v1/images`)).json()) as { images: Array<{ image: string }> };
    assert.deepEqual(local.images.map((i) => i.image).sort(), [refs.good, refs.private, refs.slow].sort());

    assert.equal(await agent.stop(), 0, agent.stderr());
    const log = agent.stderr();
    assert.match(log, /NodePull image assigned/, 'the log is the one we think it is');
    for (const secret of [PASSWORD, Buffer.from(`${USER}:${PASSWORD}`).toString('base64')]) {
      assert.ok(!log.includes(secret), 'the pull secret appears in no log line');
    }
  });

  it('pins within the node budget and CRI reports it (containerd 2.x)', TIMEOUT, async (t) => {
    if (!peersReady(t)) return;
    if (!requireGoPeer(t, 'containerd2', 'ctr2')) return;
    const kube = kubeServer();
    const kubeconfig = await prepareCluster(kube);
    const work = await testTempDir(t, 'hoist-agent-cluster-pin-');
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const refs: string[] = [];
    for (const [name, size] of [
      ['first', 300_000],
      ['second', 200_000],
    ] as const) {
      const img = await buildImage(join(work, name), {
        tag: 'v1',
        layers: [{ files: [{ path: `${name}.bin`, size, seed: `cluster-pin-${name}` }] }],
      });
      await pushImage(img.dir, 'v1', `${registry.host}/pin/${name}:v1`);
      refs.push(`${registry.host}/pin/${name}:v1`);
    }
    const [first, second] = refs as [string, string];
    const { ctd, cri, endpoint } = await startCriNode(t, { flavor: '2.x' });
    await writeHostsToml(ctd.hostsDir, registry.host, registry.url, []);
    // One pull at a time, so the first image takes the budget and the second finds it spent.
    const images = (pinFirst: boolean) => [
      { image: first, pin: pinFirst },
      { image: second, pin: true },
    ];
    await kubectlOk(
      kube,
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'prepull.hoist.dev/v1alpha1',
        kind: 'NodePull',
        metadata: { name: 'node-b' },
        spec: { nodeName: 'node-b', maxConcurrentPulls: 1, images: images(true) },
      }),
    );
    const agent = startHoist(
      agentArgs(kubeconfig, 'node-b', endpoint, ctd.hostsDir, ['--pin-budget-bytes', '400000']),
    );
    t.after(() => agent.stop());
    await agent.url;

    let np = await waitForNodePull(
      kube,
      'node-b',
      'both images present, the first pinned',
      (n) => terminal(n, refs) && byImage(n).get(first)?.pinned === true,
      agent.stderr,
    );
    let status = byImage(np);
    assert.equal(status.get(first)?.phase, 'Succeeded');
    assert.equal((await cri.imageStatus(first))?.pinned, true, 'CRI ImageStatus');
    assert.equal(
      (await cri.listImages()).find((i) => i.repoTags.includes(first))?.pinned,
      true,
      'CRI ListImages',
    );
    assert.equal(status.get(second)?.pinned, false);
    assert.match(status.get(second)?.message ?? '', /^not pinned: .*--pin-budget-bytes 400000/);
    assert.equal((await cri.imageStatus(second))?.pinned, false);

    // The first no longer asks for a pin: unpinned, and the freed budget goes to the second.
    await kubectlOk(kube, [
      'patch',
      'nodepull',
      'node-b',
      '--type',
      'merge',
      '-p',
      JSON.stringify({ spec: { images: images(false) } }),
    ]);
    np = await waitForNodePull(
      kube,
      'node-b',
      'the pin to move to the second image',
      (n) => byImage(n).get(first)?.pinned === false && byImage(n).get(second)?.pinned === true,
      agent.stderr,
    );
    status = byImage(np);
    assert.equal(status.get(second)?.message, undefined);
    assert.equal((await cri.imageStatus(first))?.pinned, false);
    assert.equal((await cri.imageStatus(second))?.pinned, true);
    assert.equal(await agent.stop(), 0, agent.stderr());
  });
});

describe('hoist mirror --metrics-socket', () => {
  it('a socket path it cannot listen on is bad usage: exit 2, one line', TIMEOUT, async (t) => {
    const res = await runHoist([
      'mirror',
      '--listen',
      '127.0.0.1:0',
      '--storage',
      await testTempDir(t, 'hoist-mirror-socket-'),
      '--metrics-socket',
      '/nonexistent/dir/metrics.sock',
    ]);
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /cannot serve --metrics-socket \/nonexistent\/dir\/metrics.sock: ENOENT/);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
  });
});

describe('hoist agent cluster flags', () => {
  it('cluster flags that do not fit together are bad usage: exit 2, one line', TIMEOUT, async (t) => {
    const saved = process.env.NODE_NAME;
    delete process.env.NODE_NAME; // the agents inherit this process's environment
    t.after(() => {
      if (saved !== undefined) process.env.NODE_NAME = saved;
    });
    const base = ['agent', '--runtime-endpoint', 'unix:///nonexistent/c.sock'];
    for (const [args, pattern] of [
      [
        ['--kubeconfig', '/nonexistent/kubeconfig'],
        /cluster mode needs the node name: pass --node-name NAME or set NODE_NAME/,
      ],
      [
        ['--node-name', 'node-a'],
        /--node-name, --namespace, --context and --mirror-metrics need --kubeconfig FILE or --in-cluster/,
      ],
      [
        ['--mirror-metrics', 'unix:///run/hoist/mirror/metrics.sock'],
        /--mirror-metrics need --kubeconfig FILE or --in-cluster/,
      ],
      [
        ['--kubeconfig', 'k', '--node-name', 'n', '--mirror-metrics', 'unix://metrics.sock'],
        /--mirror-metrics "unix:\/\/metrics.sock" must name an absolute path/,
      ],
      [
        ['--kubeconfig', 'k', '--node-name', 'n', '--mirror-metrics-interval-seconds', '0'],
        /--mirror-metrics-interval-seconds must be a whole number from 1 to 86400/,
      ],
      [['--kubeconfig', 'k', '--in-cluster', '--node-name', 'n'], /either --kubeconfig or --in-cluster/],
      [['--pin-budget-bytes', '10%'], /--pin-budget-bytes "10%" is not a size/],
      [
        ['--kubeconfig', '/nonexistent/kubeconfig', '--node-name', 'node-a'],
        /kubeconfig \/nonexistent\/kubeconfig does not exist/,
      ],
    ] as const) {
      const res = await runHoist([...base, ...args]);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, pattern);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    }
  });
});
