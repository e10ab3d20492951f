// `kubectl hoist` as users run it: the real kubectl finds `kubectl-hoist` (bin/kubectl-hoist.js,
// the built launcher) on PATH and runs it against the real kube-apiserver with Hoist's CRDs. The
// test writes PrePulls and NodePulls (status through the status subresource, as the controller and
// the agents do), Nodes with status.images, and core/v1 Events in the kubelet's message formats,
// then checks each command's table and JSON against those objects. Needs dist/ (npm run build).
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireGoPeer } from './helpers/go-peers.js';
import { shareKubeApiServer, type KubectlResult } from './helpers/kube.js';
import { removeTempDir, tempDir } from './helpers/peers.js';

const TIMEOUT = { timeout: 240_000 };
const CRDS = fileURLToPath(new URL('../deploy/crds/', import.meta.url));
const LAUNCHER = fileURLToPath(new URL('../bin/kubectl-hoist.js', import.meta.url));
const DA = `sha256:${'a'.repeat(64)}`;
const DB = `sha256:${'b'.repeat(64)}`;
const RATE_LIMIT_ERROR =
  'rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/nginx:1.25": failed to resolve reference "docker.io/library/nginx:1.25": unexpected status from HEAD request to https://registry-1.docker.io/v2/library/nginx/manifests/1.25: 429 Too Many Requests';

const minutesAgo = (now: number, m: number) =>
  new Date(now - m * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');

/** Table lines as cells (kubectl separates columns by 3+ blanks; cells hold single blanks at most). */
function cells(table: string): string[][] {
  return table
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/ {2,}/));
}

/** Every cell starts where its column's header starts, as `kubectl get` aligns them. */
function assertAligned(table: string): void {
  const [header = '', ...rows] = table.trimEnd().split('\n');
  const starts = [...header.matchAll(/(?:^|(?<= {2}))\S/g)].map((m) => m.index);
  for (const row of rows) {
    const rowStarts = [...row.matchAll(/(?:^|(?<= {2}))\S/g)].map((m) => m.index);
    assert.deepEqual(rowStarts, starts.slice(0, rowStarts.length), `misaligned row:\n${header}\n${row}`);
  }
}

describe('kubectl hoist, through the real kubectl', TIMEOUT, () => {
  const kube = shareKubeApiServer();
  let bin = '';
  const now = Date.now();
  const pullingSince = minutesAgo(now, 3);

  before(async () => {
    try {
      kube();
    } catch {
      return; // peers not built: each test skips (or fails under CI) through requireGoPeer
    }
    bin = await tempDir('hoist-kubectl-plugin');
    await mkdir(bin, { recursive: true });
    await symlink(LAUNCHER, join(bin, 'kubectl-hoist'));
    const k = (args: string[], input?: string) => kube().kubectl(args, input === undefined ? {} : { input });
    const ok = (r: KubectlResult, what: string) => assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    ok(
      await k([
        'apply',
        '-f',
        join(CRDS, 'prepull.hoist.dev_prepulls.yaml'),
        '-f',
        join(CRDS, 'prepull.hoist.dev_nodepulls.yaml'),
      ]),
      'apply CRDs',
    );
    ok(
      await k([
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        'crd/prepulls.prepull.hoist.dev',
        'crd/nodepulls.prepull.hoist.dev',
      ]),
      'CRDs Established',
    );
    const apply = async (obj: unknown) => ok(await k(['create', '-f', '-'], JSON.stringify(obj)), 'create');
    const patchStatus = async (kind: string, name: string, status: unknown, ns?: string) =>
      ok(
        await k([
          'patch',
          kind,
          name,
          ...(ns ? ['-n', ns] : []),
          '--subresource=status',
          '--type=merge',
          '-p',
          JSON.stringify({ status }),
        ]),
        `status of ${kind} ${name}`,
      );
    for (const ns of ['web', 'ml'])
      await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });

    // Nodes, with what their kubelets report the runtime holds.
    for (const name of ['node-a', 'node-b'])
      await apply({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
    await patchStatus('node', 'node-a', {
      images: [
        { names: [`docker.io/library/nginx@${DA}`, 'docker.io/library/nginx:1.25'], sizeBytes: 70_000_000 },
      ],
    });
    await patchStatus('node', 'node-b', {
      images: [{ names: [`ghcr.io/org/model@${DB}`, 'ghcr.io/org/model:v7'], sizeBytes: 5_000_000_000 }],
    });

    // PrePulls, with the status the controller writes.
    const prePull = (ns: string, name: string, spec: unknown) => ({
      apiVersion: 'prepull.hoist.dev/v1alpha1',
      kind: 'PrePull',
      metadata: { name, namespace: ns },
      spec,
    });
    const ready = (message: string) => [
      {
        type: 'Ready',
        status: 'False',
        reason: 'Pulling',
        message,
        lastTransitionTime: '2026-01-01T00:00:00Z',
      },
    ];
    await apply(prePull('web', 'nginx', { images: ['nginx:1.25'] }));
    await patchStatus(
      'prepull',
      'nginx',
      {
        imageCount: 1,
        nodes: { desired: 2, pulling: 0, succeeded: 1, failed: 1 },
        conditions: ready('1/2 nodes done'),
      },
      'web',
    );
    await apply(prePull('ml', 'llm', { images: ['ghcr.io/org/model:v7'], schedule: '0 3 * * *' }));
    await patchStatus(
      'prepull',
      'llm',
      {
        imageCount: 1,
        nodes: { desired: 3, pulling: 1, succeeded: 1, failed: 0 },
        images: [
          { image: 'ghcr.io/org/model:v7', digest: DB, desired: 3, pulling: 1, succeeded: 1, failed: 0 },
        ],
        nextScheduleTime: new Date(now + 5 * 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
        conditions: ready('1/3 nodes done'),
      },
      'ml',
    );

    // NodePulls: the controller's spec, the agents' status.
    const entry = (image: string, digest: string, sources: string[]) => ({
      image,
      digest,
      pin: true,
      retryLimit: 5,
      retryBackoffSeconds: 10,
      progressTimeoutSeconds: 300,
      sources,
    });
    const nodePull = (node: string) => ({
      apiVersion: 'prepull.hoist.dev/v1alpha1',
      kind: 'NodePull',
      metadata: { name: node },
      spec: {
        nodeName: node,
        maxConcurrentPulls: 2,
        images: [
          entry('docker.io/library/nginx:1.25', DA, ['web/nginx']),
          entry('ghcr.io/org/model:v7', DB, ['ml/llm']),
        ],
      },
    });
    await apply(nodePull('node-a'));
    await patchStatus('nodepull', 'node-a', {
      images: [
        {
          image: 'docker.io/library/nginx:1.25',
          digest: DA,
          phase: 'Succeeded',
          attempts: 1,
          pinned: true,
          sizeBytes: 70_000_000,
          startedAt: '2026-01-01T00:00:00Z',
          finishedAt: '2026-01-01T00:00:42Z',
        },
        { image: 'ghcr.io/org/model:v7', digest: DB, phase: 'Pulling', attempts: 2, startedAt: pullingSince },
      ],
      // The node mirror's figures as the agent reports them (README "Dashboard").
      mirror: {
        storeBytes: 73_400_320,
        blobHits: 3,
        blobLookups: 4,
        servedBytes: 146_800_640,
        upstreamBytes: 73_400_320,
        observedAt: '2026-01-01T00:01:00Z',
      },
    });
    await apply(nodePull('node-b'));
    await patchStatus('nodepull', 'node-b', {
      images: [
        {
          image: 'docker.io/library/nginx:1.25',
          digest: DA,
          phase: 'Failed',
          reason: 'RateLimited',
          message: 'toomanyrequests: You have reached your pull rate limit',
          attempts: 6,
          startedAt: '2026-01-01T00:00:00Z',
          finishedAt: '2026-01-01T00:10:00Z',
        },
        {
          image: 'ghcr.io/org/model:v7',
          digest: DB,
          phase: 'Succeeded',
          attempts: 1,
          pinned: false,
          sizeBytes: 5_000_000_000,
          startedAt: '2026-01-01T00:00:00Z',
          finishedAt: '2026-01-01T00:05:00Z',
        },
      ],
    });

    // Kubelet events, in the formats of several kubelet versions (src/analyze/kubelet-events.ts).
    let n = 0;
    const event = (
      ns: string,
      pod: string,
      node: string,
      reason: string,
      message: string,
      at: string,
      count = 1,
    ) =>
      apply({
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: `${pod}.e${++n}`, namespace: ns },
        involvedObject: { kind: 'Pod', namespace: ns, name: pod, fieldPath: 'spec.containers{main}' },
        reason,
        message,
        source: { component: 'kubelet', host: node },
        type: reason === 'Pulled' ? 'Normal' : 'Warning',
        count,
        firstTimestamp: at,
        lastTimestamp: at,
      });
    await event(
      'web',
      'nginx-7c9',
      'node-b',
      'Failed',
      `Failed to pull image "nginx:1.25": ${RATE_LIMIT_ERROR}`,
      minutesAgo(now, 2),
      3,
    );
    await event('web', 'nginx-7c9', 'node-b', 'Failed', 'Error: ErrImagePull', minutesAgo(now, 2), 3);
    await event(
      'web',
      'nginx-7c9',
      'node-b',
      'BackOff',
      'Back-off pulling image "nginx:1.25"',
      minutesAgo(now, 1),
      4,
    );
    await event(
      'web',
      'nginx-5d1',
      'node-a',
      'Pulled',
      'Successfully pulled image "nginx:1.25" in 12.5s (13.2s including waiting). Image size: 70000000 bytes.',
      minutesAgo(now, 10),
    );
    await event(
      'ml',
      'llm-worker-0',
      'node-b',
      'Pulled',
      'Successfully pulled image "ghcr.io/org/model:v7" in 4m5.5s (4m10s including waiting)',
      minutesAgo(now, 20),
    );
    await event(
      'ml',
      'cache-0',
      'node-b',
      'Pulled',
      'Successfully pulled image "redis:7" in 2.000123456s',
      minutesAgo(now, 5),
    );
    await event(
      'ml',
      'old-0',
      'node-a',
      'Pulled',
      'Successfully pulled image "busybox:1.36" in 1h2m3s',
      minutesAgo(now, 180),
    );
  });

  after(async () => {
    if (bin) await removeTempDir(bin);
  });

  /** `kubectl hoist ARGS` with kubectl-hoist found on PATH, the admin kubeconfig as $KUBECONFIG. */
  const hoist = (args: string[], env: Record<string, string> = {}) =>
    kube().kubectl(['hoist', ...args], {
      plugin: true,
      env: { PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH ?? ''}`, ...env },
    });

  it('kubectl plugin list finds kubectl-hoist on PATH; --help works through kubectl', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    const list = await kube().kubectl(['plugin', 'list'], {
      plugin: true,
      env: { PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin` },
    });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${join(bin, 'kubectl-hoist')}$`, 'm'));
    const help = await hoist(['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: kubectl hoist \[options\] \[command\]/);
    for (const cmd of ['status', 'why', 'top']) assert.match(help.stdout, new RegExp(`^  ${cmd} `, 'm'));
    const statusHelp = await hoist(['status', '--help']);
    assert.equal(statusHelp.code, 0, statusHelp.stderr);
    assert.match(statusHelp.stdout, /^Usage: kubectl hoist status \[options\] \[name\]/);
    assert.match(statusHelp.stdout, /-A, --all-namespaces/);
  });

  it('status -A: one row per PrePull, counts from its status', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    const r = await hoist(['status', '-A']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assertAligned(r.stdout);
    const rows = cells(r.stdout);
    assert.deepEqual(rows[0], [
      'NAMESPACE',
      'NAME',
      'IMAGES',
      'NODES',
      'DONE',
      'PULLING',
      'FAILED',
      'PENDING',
      'READY',
      'NEXT RUN',
      'AGE',
    ]);
    assert.deepEqual(rows[1]?.slice(0, 9), ['ml', 'llm', '1', '3', '1', '1', '0', '1', 'False']);
    assert.match(rows[1]?.[9] ?? '', /^in [45]h(\d+m)?$/);
    assert.match(rows[1]?.[10] ?? '', /^\d+s$/);
    assert.deepEqual(rows[2]?.slice(0, 10), [
      'web',
      'nginx',
      '1',
      '2',
      '1',
      '0',
      '1',
      '0',
      'False',
      '<none>',
    ]);
    assert.equal(rows.length, 3);
    // None in the context's namespace: said on stderr, as kubectl get says it, and exit 0.
    const none = await hoist(['status']);
    assert.deepEqual(none, { code: 0, stdout: '', stderr: 'No PrePulls found in default namespace.\n' });
  });

  it('status NAME -n NS -o wide: every node and image of that PrePull', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    const r = await hoist(['status', 'nginx', '-n', 'web', '-o', 'wide']);
    assert.equal(r.code, 0, r.stderr);
    const [prePulls = '', nodes = ''] = r.stdout.split('\n\n');
    assert.deepEqual(cells(prePulls)[1]?.slice(0, 9), [
      'nginx',
      '1',
      '2',
      '1',
      '0',
      '1',
      '0',
      'False',
      '<none>',
    ]);
    assert.equal(
      nodes,
      [
        'PREPULL   NODE     IMAGE                          STATE       REASON        ATTEMPTS   DURATION',
        'nginx     node-a   docker.io/library/nginx:1.25   Succeeded   <none>        1          42s',
        'nginx     node-b   docker.io/library/nginx:1.25   Failed      RateLimited   6          10m',
      ].join('\n'),
    );
    // node-a's agent reports its mirror: hit ratio and bytes, from the NodePull list already made.
    const caches = r.stdout.split('\n\n')[2] ?? '';
    assert.deepEqual(cells(caches)[0], [
      'NODE',
      'CACHE USE',
      'HIT RATIO',
      'SERVED',
      'FROM UPSTREAM',
      'FROM PEERS',
      'READ',
    ]);
    assert.deepEqual(cells(caches)[1]?.slice(0, 6), [
      'node-a',
      '70.0MiB',
      '75.0%',
      '140.0MiB',
      '70.0MiB',
      '<none>',
    ]);
    assert.equal(cells(caches).length, 2, 'node-b reports no mirror figures: no row');
    // --nodes is the same view.
    const same = await hoist(['status', 'nginx', '-n', 'web', '--nodes']);
    assert.equal(same.stdout.split('\n\n')[1], nodes);
  });

  it('status -o wide: the caches of nodes no PrePull targets too, even with no PrePull', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    // The controller keeps an empty NodePull on a node without work; its agent reports its mirror.
    const k = (args: string[], input?: string) => kube().kubectl(args, input === undefined ? {} : { input });
    const created = await k(
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'prepull.hoist.dev/v1alpha1',
        kind: 'NodePull',
        metadata: { name: 'node-idle' },
        spec: { nodeName: 'node-idle', maxConcurrentPulls: 2, images: [] },
      }),
    );
    assert.equal(created.code, 0, created.stderr);
    const mirror = {
      storeBytes: 1024,
      blobHits: 1,
      blobLookups: 2,
      servedBytes: 2048,
      upstreamBytes: 1024,
      observedAt: '2026-01-01T00:01:00Z',
    };
    const status = {
      images: [],
      summary: { images: 0, pending: 0, pulling: 0, succeeded: 0, failed: 0 },
      mirror,
    };
    const patched = await k([
      'patch',
      'nodepull',
      'node-idle',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
    assert.equal(patched.code, 0, patched.stderr);
    try {
      const all = await hoist(['status', '-A', '-o', 'wide']);
      assert.equal(all.code, 0, all.stderr);
      const caches = all.stdout.split('\n\n').find((part) => part.startsWith('NODE ')) ?? '';
      assert.deepEqual(
        cells(caches).map((r) => r.slice(0, 3)),
        [
          ['NODE', 'CACHE USE', 'HIT RATIO'],
          ['node-a', '70.0MiB', '75.0%'],
          ['node-idle', '1.0KiB', '50.0%'],
        ],
      );
      assert.doesNotMatch(all.stdout.split('\n\n')[1] ?? '', /node-idle/, 'no work rows for it');
      // No PrePull in the namespace: said on stderr; the wide view still lists the caches.
      const none = await hoist(['status', '-o', 'wide']);
      assert.equal(none.code, 0, none.stderr);
      assert.equal(none.stderr, 'No PrePulls found in default namespace.\n');
      assert.equal(none.stdout, caches);
    } finally {
      await k(['delete', 'nodepull', 'node-idle']);
    }
  });

  it('status -o json: the PrePulls and their nodes as one document', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    const r = await hoist(['status', '--namespace', 'ml', '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      prePulls: Array<Record<string, unknown>>;
      nodes: Array<Record<string, unknown>>;
    };
    assert.equal(doc.prePulls.length, 1);
    const [p] = doc.prePulls;
    assert.match(String(p?.createdAt), /^\d{4}-\d\d-\d\dT/);
    assert.match(String(p?.nextRun), /^\d{4}-\d\d-\d\dT/);
    delete p?.createdAt;
    delete p?.nextRun;
    assert.deepEqual(p, {
      namespace: 'ml',
      name: 'llm',
      images: ['ghcr.io/org/model:v7'],
      nodes: { targeted: 3, done: 1, pulling: 1, failed: 0, pending: 1 },
      ready: 'False',
      schedule: '0 3 * * *',
      suspended: false,
    });
    const pulling = doc.nodes[0];
    assert.ok(typeof pulling?.durationSeconds === 'number' && pulling.durationSeconds >= 180);
    delete pulling?.durationSeconds;
    assert.deepEqual(doc.nodes, [
      {
        prePull: 'ml/llm',
        node: 'node-a',
        image: 'ghcr.io/org/model:v7',
        digest: DB,
        state: 'Pulling',
        attempts: 2,
        startedAt: pullingSince,
      },
      {
        prePull: 'ml/llm',
        node: 'node-b',
        image: 'ghcr.io/org/model:v7',
        digest: DB,
        state: 'Succeeded',
        attempts: 1,
        startedAt: '2026-01-01T00:00:00Z',
        finishedAt: '2026-01-01T00:05:00Z',
        durationSeconds: 300,
      },
    ]);
  });

  it('why IMAGE: where it is, where it failed and why, who wants it', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    const r = await hoist(['why', 'nginx:1.25']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        'Image docker.io/library/nginx:1.25',
        'Wanted by PrePulls: web/nginx',
        '',
        'On nodes (NodePull status, written by the node agents):',
        'NODE     IMAGE                          STATE       PINNED   SIZE      REASON        MESSAGE',
        'node-a   docker.io/library/nginx:1.25   Succeeded   true     70.0 MB   <none>        <none>',
        'node-b   docker.io/library/nginx:1.25   Failed      <none>   <none>    RateLimited   toomanyrequests: You have reached your pull rate limit',
        '',
        "In the nodes' runtime (Node status.images, reported by the kubelet):",
        'NODE     SIZE      NAMES',
        `node-a   70.0 MB   docker.io/library/nginx@${DA},docker.io/library/nginx:1.25`,
        '',
        'Failed kubelet pulls (events):',
        'NODE     IMAGE        CAUSE        ATTEMPTS   BACK-OFFS   MESSAGE',
        `node-b   nginx:1.25   rate-limit   3          4           ${RATE_LIMIT_ERROR}`,
        '',
        'The kubelet pulled it 1 time(s) in the events read (see kubectl hoist top).',
        '',
      ].join('\n'),
    );
  });

  it('why IMAGE -o json, by digest and by full name', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    const r = await hoist(['why', `ghcr.io/org/model@${DB}`, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      image: `ghcr.io/org/model@${DB}`,
      matches: `ghcr.io/org/model@${DB}`,
      // The PrePull names the tag; its status says what the tag resolved to.
      prePulls: [{ namespace: 'ml', name: 'llm', image: 'ghcr.io/org/model:v7' }],
      nodePulls: [
        {
          node: 'node-a',
          image: 'ghcr.io/org/model:v7',
          digest: DB,
          state: 'Pulling',
          attempts: 2,
          sources: ['ml/llm'],
        },
        {
          node: 'node-b',
          image: 'ghcr.io/org/model:v7',
          digest: DB,
          state: 'Succeeded',
          attempts: 1,
          pinned: false,
          sizeBytes: 5_000_000_000,
          finishedAt: '2026-01-01T00:05:00Z',
          sources: ['ml/llm'],
        },
      ],
      runtime: [
        {
          node: 'node-b',
          names: [`ghcr.io/org/model@${DB}`, 'ghcr.io/org/model:v7'],
          sizeBytes: 5_000_000_000,
        },
      ],
      kubeletFailures: [],
      kubeletPulls: 0,
    });
    const full = await hoist(['why', 'docker.io/library/nginx:1.25', '-o', 'json', '-n', 'web']);
    const doc = JSON.parse(full.stdout) as { prePulls: unknown; kubeletFailures: unknown };
    assert.deepEqual(doc.prePulls, [{ namespace: 'web', name: 'nginx', image: 'nginx:1.25' }]);
    assert.deepEqual(doc.kubeletFailures, [
      {
        node: 'node-b',
        image: 'nginx:1.25',
        cause: 'rate-limit',
        attempts: 3,
        backOffs: 4,
        message: RATE_LIMIT_ERROR,
      },
    ]);
    // -n ml: the web namespace's PrePull and events are not read.
    const other = JSON.parse(
      (await hoist(['why', 'nginx:1.25', '-o', 'json', '-n', 'ml'])).stdout,
    ) as typeof doc;
    assert.deepEqual([other.prePulls, other.kubeletFailures], [[], []]);
  });

  it('top: the slowest kubelet pulls within --since, and pulls in progress', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    const r = await hoist(['top']);
    assert.equal(r.code, 0, r.stderr);
    const [pulling = '', pulls = ''] = r.stdout.split('\n\n');
    assert.equal(pulling.split('\n')[0], 'Pulling now (NodePull status):');
    const pullingTable = pulling.split('\n').slice(1).join('\n');
    assertAligned(pullingTable);
    assert.deepEqual(cells(pullingTable)[0], ['NODE', 'IMAGE', 'ATTEMPTS', 'PREPULLS', 'ELAPSED']);
    assert.deepEqual(cells(pullingTable)[1]?.slice(0, 4), ['node-a', 'ghcr.io/org/model:v7', '2', 'ml/llm']);
    assert.match(cells(pullingTable)[1]?.[4] ?? '', /^\d+m\d*s?$/);
    assert.equal(pulls.split('\n')[0], 'Slowest kubelet pulls in the last 1h (events):');
    const pullsTable = pulls.split('\n').slice(1).join('\n');
    assertAligned(pullsTable);
    const rows = cells(pullsTable);
    assert.deepEqual(
      rows.map((row) => row.slice(0, 6)),
      [
        ['NODE', 'IMAGE', 'DURATION', 'WITH WAITING', 'SIZE', 'POD'],
        ['node-b', 'ghcr.io/org/model:v7', '4m06s', '4m10s', '<none>', 'ml/llm-worker-0'],
        ['node-a', 'nginx:1.25', '12.5s', '13.2s', '70.0 MB', 'web/nginx-5d1'],
        ['node-b', 'redis:7', '2.0s', '<none>', '<none>', 'ml/cache-0'],
      ],
    );
    for (const row of rows.slice(1)) assert.match(row[6] ?? '', /^\d+m(\d+s)?$/);
  });

  it('top --since 4h --limit 2 -o json', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    const r = await hoist(['top', '--since', '4h', '--limit', '2', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { pulling: Array<Record<string, unknown>> } & Record<string, unknown>;
    assert.ok(Number(doc.pulling[0]?.elapsedSeconds) >= 180);
    delete doc.pulling[0]?.elapsedSeconds;
    assert.deepEqual(doc, {
      since: '4h',
      sinceSeconds: 14_400,
      pulls: [
        {
          node: 'node-a',
          image: 'busybox:1.36',
          seconds: 3723,
          secondsIncludingWaiting: null,
          bytes: null,
          pod: 'ml/old-0',
          time: minutesAgo(now, 180),
        },
        {
          node: 'node-b',
          image: 'ghcr.io/org/model:v7',
          seconds: 245.5,
          secondsIncludingWaiting: 250,
          bytes: null,
          pod: 'ml/llm-worker-0',
          time: minutesAgo(now, 20),
        },
      ],
      pulling: [
        {
          node: 'node-a',
          image: 'ghcr.io/org/model:v7',
          startedAt: pullingSince,
          attempts: 2,
          sources: ['ml/llm'],
        },
      ],
    });
  });

  it('bad flags exit 2; a missing PrePull exits 1; both say what to do on one line', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    const cases: Array<[string[], number, RegExp]> = [
      [['status', '-o', 'yaml'], 2, /^kubectl hoist: --output "yaml": use wide or json/],
      [['top', '--since', 'soon'], 2, /^kubectl hoist: --since "soon": give a positive duration/],
      [['top', '--limit', '0'], 2, /^kubectl hoist: --limit "0"/],
      [['why', 'Not An Image'], 2, /^kubectl hoist: "Not An Image" is not an image reference/],
      [['status', 'x', '-A'], 2, /^kubectl hoist: a PrePull cannot be named across all namespaces/],
      [['status', '--bogus'], 2, /^error: unknown option '--bogus'/],
      [['status', '--context', 'nope'], 2, /^kubectl hoist: .*nope/],
      [
        ['status', 'missing', '-n', 'web'],
        1,
        /^kubectl hoist: prepull "missing" not found in namespace "web"; list them with: kubectl hoist status -A\n$/,
      ],
    ];
    for (const [args, code, message] of cases) {
      const r = await hoist(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
  });

  /** A kubeconfig whose current context points at a closed loopback port. */
  const unreachableKubeconfig = async () => {
    const path = join(bin, 'unreachable.kubeconfig');
    await writeFile(
      path,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'c', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } },
        ],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    return path;
  };

  it('kubeconfig as kubectl reads it: several files in $KUBECONFIG, --context, the context namespace, --kubeconfig first', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    const admin = kube().adminKubeconfig;
    const unreachable = await unreachableKubeconfig();
    // A third file adds a context in namespace web, on the admin file's cluster and user.
    const webContext = join(bin, 'web-context.kubeconfig');
    await writeFile(
      webContext,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        contexts: [
          { name: 'web-ctx', context: { cluster: 'hoist-test', user: 'hoist-admin', namespace: 'web' } },
        ],
        'current-context': 'web-ctx',
      }),
    );
    const names = (r: KubectlResult) =>
      cells(r.stdout)
        .slice(1)
        .map((row) => row[0]);
    // The first file's current-context wins (web-ctx); its namespace is the default one.
    const web = await hoist(['status'], { KUBECONFIG: `${webContext}:${join(bin, 'missing')}:${admin}` });
    assert.equal(web.code, 0, web.stderr);
    assert.deepEqual(names(web), ['nginx']);
    // The unreachable file's context is current; --context picks the admin one from the later file.
    const picked = await hoist(['status', '-n', 'ml', '--context', 'hoist-admin'], {
      KUBECONFIG: `${unreachable}:${admin}`,
    });
    assert.equal(picked.code, 0, picked.stderr);
    assert.deepEqual(names(picked), ['llm']);
    // --kubeconfig wins over $KUBECONFIG.
    const flag = await hoist(['status', '-A', '--kubeconfig', admin], { KUBECONFIG: unreachable });
    assert.equal(flag.code, 0, flag.stderr);
    assert.deepEqual(names(flag), ['ml', 'web']);
  });

  it('no CRDs: says to install them; no cluster: says so; both exit 1', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    // Unreachable: a kubeconfig for a closed loopback port. No CRDs: this test runs last and deletes
    // them (the others need them; a second API server would cost seconds of start-up).
    const unreachable = await unreachableKubeconfig();
    const down = await hoist(['status'], { KUBECONFIG: unreachable });
    assert.equal(down.code, 1, down.stderr);
    assert.match(
      down.stderr,
      /^kubectl hoist: cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:1 .*check the cluster is up/,
    );

    const del = await kube().kubectl([
      'delete',
      'crd',
      'prepulls.prepull.hoist.dev',
      'nodepulls.prepull.hoist.dev',
      '--wait=true',
    ]);
    assert.equal(del.code, 0, del.stderr);
    for (const args of [['status', '-A'], ['status', 'nginx', '-n', 'web'], ['why', 'nginx'], ['top']]) {
      const r = await hoist(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(
        r.stderr,
        /^kubectl hoist: Hoist's CRDs are not installed in this cluster \(no prepulls\.prepull\.hoist\.dev\/v1alpha1\): helm install hoist deploy\/helm\/hoist -n hoist-system --create-namespace/,
        args.join(' '),
      );
    }
  });
});
