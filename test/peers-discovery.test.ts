// Peer discovery (issue 13): the ready endpoints of the mirror's headless Service, watched through
// EndpointSlices on the real kube-apiserver, and a DNS name; membership follows changes without a
// restart. And `hoist mirror peers`, one node's view as an operator reads it.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { KubeClient, loadKubeConfig } from '../src/kube/index.js';
import { Membership } from '../src/peers/index.js';
import { watchDnsPeers } from '../src/peers/dns-peers.js';
import { watchEndpointSlicePeers } from '../src/peers/endpoint-slice-peers.js';
import { runHoist } from './helpers/cri.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { shareKubeApiServer } from './helpers/kube.js';
import { startMirror } from './helpers/mirror.js';
import { freePort, removeTempDir, tempDir } from './helpers/peers.js';

const NS = 'hoist-system';
const SERVICE = 'hoist-mirror-peers';

function slice(name: string, endpoints: Array<{ ip: string; ready?: boolean }>, port = 5000) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: NS, labels: { 'kubernetes.io/service-name': SERVICE } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port, protocol: 'TCP' }],
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true },
    })),
  };
}

async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('peers from EndpointSlices on kube-apiserver', () => {
  const api = shareKubeApiServer();

  test('ready endpoints are the members, not-ready ones are not, changes apply at once, this node leaves itself out', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    const kube = api();
    const client = new KubeClient(await loadKubeConfig({ kubeconfig: kube.adminKubeconfig }));
    const stop = new AbortController();
    t.after(() => {
      stop.abort();
      client.close();
    });
    await kube.request('POST', '/api/v1/namespaces', { body: { metadata: { name: NS } } });
    const post = (body: unknown) =>
      kube.request('POST', `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`, { body });
    assert.equal(
      (await post(slice('a', [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }, { ip: '10.0.0.3', ready: false }])))
        .status,
      201,
    );
    // Slices of another Service are not members.
    const other = slice('other', [{ ip: '10.9.9.9' }]);
    other.metadata.labels['kubernetes.io/service-name'] = 'something-else';
    assert.equal((await post(other)).status, 201);

    const membership = new Membership('http://10.0.0.1:5000', pino({ enabled: false }));
    const informer = watchEndpointSlicePeers(
      client,
      membership,
      { namespace: NS, service: SERVICE, portName: 'http' },
      stop.signal,
    );
    await informer.synced();
    await until(() => membership.members().length === 1, 'the first members');
    assert.deepEqual(membership.members(), ['http://10.0.0.2:5000']);
    assert.deepEqual(membership.everyone(), ['http://10.0.0.1:5000', 'http://10.0.0.2:5000']);

    // A second slice (a Service with many endpoints is split) and a pod becoming ready.
    assert.equal((await post(slice('b', [{ ip: '10.0.0.4' }]))).status, 201);
    const patched = await kube.request('PUT', `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices/a`, {
      body: slice('a', [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }, { ip: '10.0.0.3' }]),
    });
    assert.equal(patched.status, 200, patched.body);
    await until(() => membership.members().length === 3, 'the new members');
    assert.deepEqual(membership.members(), [
      'http://10.0.0.2:5000',
      'http://10.0.0.3:5000',
      'http://10.0.0.4:5000',
    ]);

    // A pod leaving the Service (its slice deleted) leaves the cluster-wide cache.
    assert.equal(
      (await kube.request('DELETE', `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices/b`)).status,
      200,
    );
    await until(() => membership.members().length === 2, 'the member to leave');
    assert.ok(!membership.members().includes('http://10.0.0.4:5000'));
  });
});

test('peers from a DNS name: every address is a member, re-resolved on a timer; a failed look-up keeps the last answer', async () => {
  const membership = new Membership('http://127.0.0.1:5000');
  const stop = new AbortController();
  after(() => stop.abort());
  let answer: string[] | Error = ['127.0.0.1', '127.0.0.2'];
  await watchDnsPeers(
    membership,
    {
      target: 'hoist-mirror-peers.hoist.svc:5000',
      intervalMs: 20,
      resolve: () => (answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer)),
    },
    stop.signal,
  );
  assert.deepEqual(membership.members(), ['http://127.0.0.2:5000']);
  answer = ['127.0.0.1', '127.0.0.2', '::1'];
  await until(() => membership.members().length === 2, 'the new address');
  assert.deepEqual(membership.members(), ['http://127.0.0.2:5000', 'http://[::1]:5000']);
  answer = Object.assign(new Error('timeout'), { code: 'ETIMEOUT' });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(membership.members().length, 2, 'a DNS hiccup does not empty the cluster');
  // The real resolver: localhost is this machine.
  const real = new Membership('http://10.1.1.1:5000');
  await watchDnsPeers(real, { target: 'localhost:5000', intervalMs: 60_000 }, stop.signal);
  assert.ok(real.members().includes('http://127.0.0.1:5000'), real.members().join(','));
});

test("hoist mirror peers prints one node's view: members, their state, a blob's ranking", async () => {
  const dir = await tempDir('hoist-peers-cli');
  after(() => removeTempDir(dir));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 'a-cluster-token-of-enough-length\n');
  const port = await freePort();
  const self = `http://127.0.0.1:${port}`;
  const gone = `http://127.0.0.1:${await freePort()}`;
  const node = await startMirror(
    { reg: 'http://127.0.0.1:9' },
    {
      defaultUpstream: 'reg',
      file: { listen: `127.0.0.1:${port}`, peers: { self, urls: [self, gone], tokenFile } },
    },
  );
  after(() => node.close());
  node.mirror.peers?.health.markDown(gone, 'connect ECONNREFUSED');
  const digest = `sha256:${'ab'.repeat(32)}`;
  const text = await runHoist([
    'mirror',
    'peers',
    '--mirror',
    node.url,
    '--token-file',
    tokenFile,
    '--digest',
    digest,
  ]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`^self: ${self} {3}fanout: 1 {3}relay trees: 0$`, 'm'));
  assert.match(text.stdout, new RegExp(`^${gone} +down +connect ECONNREFUSED$`, 'm'));
  assert.match(text.stdout, new RegExp(`ranking for ${digest} \\(fetcher first\\):`));
  const json = await runHoist([
    'mirror',
    'peers',
    '--mirror',
    node.url,
    '--token-file',
    tokenFile,
    '--output',
    'json',
  ]);
  const view = JSON.parse(json.stdout) as { self: string; members: Array<{ url: string; state: string }> };
  assert.equal(view.self, self);
  assert.deepEqual(
    view.members.map((m) => [m.url, m.state]),
    [[gone, 'down']],
  );
  // A wrong token is refused; a bad URL is bad usage.
  await writeFile(join(dir, 'wrong'), 'not-the-cluster-token-at-all');
  const refused = await runHoist([
    'mirror',
    'peers',
    '--mirror',
    node.url,
    '--token-file',
    join(dir, 'wrong'),
  ]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /403/);
  const bad = await runHoist(['mirror', 'peers', '--mirror', 'not a url', '--token-file', tokenFile]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--mirror "not a url" is not a URL/);
});
