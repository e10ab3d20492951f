import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseKubeletEvents, type Pull } from '../analyze/index.js';
import type { NodePull, PrePull } from '../prepull/index.js';
import { parseImageQuery } from './image-match.js';
import { buildStatusReport, formatStatusText } from './status-view.js';
import { buildTopReport, formatTopText } from './top-view.js';
import { buildWhyReport, formatWhyText } from './why-view.js';

const NOW = new Date('2026-06-01T12:00:00Z');
const DA = `sha256:${'a'.repeat(64)}`;

const prePull = (ns: string, name: string, images: string[], extra: Partial<PrePull> = {}): PrePull => ({
  metadata: { namespace: ns, name, creationTimestamp: '2026-06-01T09:00:00Z' },
  spec: { images },
  ...extra,
});

const entry = (image: string, sources: string[]) => ({
  image,
  pin: false,
  retryLimit: 5,
  retryBackoffSeconds: 10,
  progressTimeoutSeconds: 300,
  sources,
});

const nodePulls: NodePull[] = [
  {
    metadata: { name: 'n1' },
    spec: {
      nodeName: 'n1',
      maxConcurrentPulls: 2,
      images: [
        entry('docker.io/library/nginx:1.25', ['web/a', 'web/b']),
        entry('docker.io/library/redis:7', ['web/b']),
      ],
    },
    status: {
      images: [
        {
          image: 'docker.io/library/nginx:1.25',
          digest: DA,
          phase: 'Pulling',
          attempts: 1,
          startedAt: '2026-06-01T11:58:30Z',
        },
      ],
    },
  },
  {
    metadata: { name: 'n2' },
    spec: {
      nodeName: 'n2',
      maxConcurrentPulls: 2,
      images: [entry('docker.io/library/nginx:1.25', ['web/a'])],
    },
    status: {
      images: [
        {
          image: 'docker.io/library/nginx:1.25',
          phase: 'Failed',
          reason: 'NotFound',
          message: 'manifest unknown',
          attempts: 3,
          startedAt: '2026-06-01T11:00:00Z',
          finishedAt: '2026-06-01T11:00:09Z',
        },
      ],
    },
  },
];

describe('status view', () => {
  const a = prePull('web', 'a', ['nginx:1.25'], {
    status: {
      nodes: { desired: 4, pulling: 1, succeeded: 0, failed: 1 },
      nextScheduleTime: '2026-06-01T15:00:00Z',
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'Pulling',
          message: '',
          lastTransitionTime: '2026-06-01T09:00:00Z',
        },
      ],
    },
  });
  const b = prePull('web', 'b', ['redis:7'], { spec: { images: ['redis:7'], suspend: true } });

  it("rows come from each PrePull's status; nodes from NodePull entries that name it as a source", () => {
    // n3 pulls the same image for another PrePull only: not a node of web/a.
    const other: NodePull = {
      metadata: { name: 'n3' },
      spec: {
        nodeName: 'n3',
        maxConcurrentPulls: 1,
        images: [entry('docker.io/library/nginx:1.25', ['ml/x'])],
      },
    };
    const report = buildStatusReport([b, a], [...nodePulls, other], NOW);
    assert.deepEqual(
      report.prePulls.map((p) => [p.name, p.nodes, p.ready]),
      [
        ['a', { targeted: 4, done: 0, pulling: 1, failed: 1, pending: 2 }, 'False'],
        ['b', { targeted: 0, done: 0, pulling: 0, failed: 0, pending: 0 }, 'Unknown'],
      ],
    );
    assert.deepEqual(
      report.nodes.map((n) => [n.prePull, n.node, n.image, n.state, n.durationSeconds]),
      [
        ['web/a', 'n1', 'docker.io/library/nginx:1.25', 'Pulling', 90],
        ['web/a', 'n2', 'docker.io/library/nginx:1.25', 'Failed', 9],
        // Listed by the controller, not yet reported by the agent; b's nginx source is not b's image.
        ['web/b', 'n1', 'docker.io/library/redis:7', 'Pending', undefined],
      ],
    );
  });

  it('prints kubectl-style tables: next run relative, suspended said so, NAMESPACE only with -A', () => {
    const report = buildStatusReport([a, b], nodePulls, NOW);
    assert.equal(
      formatStatusText(report, { withNamespace: false, wide: true, now: NOW }),
      [
        'NAME   IMAGES   NODES   DONE   PULLING   FAILED   PENDING   READY     NEXT RUN      AGE',
        'a      1        4       0      1         1        2         False     in 3h         3h',
        'b      1        0       0      0         0        0         Unknown   <suspended>   3h',
        '',
        'PREPULL   NODE   IMAGE                          STATE     REASON     ATTEMPTS   DURATION',
        'a         n1     docker.io/library/nginx:1.25   Pulling   <none>     1          90s',
        'a         n2     docker.io/library/nginx:1.25   Failed    NotFound   3          9s',
        'b         n1     docker.io/library/redis:7      Pending   <none>     <none>     <none>',
        '',
      ].join('\n'),
    );
    assert.match(
      formatStatusText(report, { withNamespace: true, wide: false, now: NOW }),
      /^NAMESPACE {3}NAME/,
    );
  });

  it('lists every reported cache, targeted node or not, with hit ratio and bytes', () => {
    const mirror = (hits: number, lookups: number) => ({
      storeBytes: 1536,
      blobHits: hits,
      blobLookups: lookups,
      servedBytes: 3 * 1024 * 1024,
      upstreamBytes: 512,
      observedAt: '2026-06-01T11:59:30Z',
    });
    const withCaches: NodePull[] = [
      { ...nodePulls[0]!, status: { ...nodePulls[0]!.status, mirror: mirror(2, 3) } },
      { ...nodePulls[1]!, status: { ...nodePulls[1]!.status, mirror: { ...mirror(0, 0), peerBytes: 0 } } },
      // n9 has figures but no work for these PrePulls (its NodePull is empty): listed too.
      {
        metadata: { name: 'n9' },
        spec: { nodeName: 'n9', maxConcurrentPulls: 1, images: [] },
        status: { mirror: mirror(1, 1) },
      },
    ];
    const report = buildStatusReport([a, b], withCaches, NOW);
    assert.deepEqual(
      report.caches.map((c) => [c.node, c.hitRatio]),
      [
        ['n1', 0.667],
        ['n2', undefined],
        ['n9', 1],
      ],
    );
    const text = formatStatusText(report, { withNamespace: false, wide: true, now: NOW });
    assert.ok(
      text.endsWith(
        [
          'NODE   CACHE USE   HIT RATIO   SERVED   FROM UPSTREAM   FROM PEERS   READ',
          'n1     1.5KiB      66.7%       3.0MiB   512B            <none>       30s',
          'n2     1.5KiB      <none>      3.0MiB   512B            0B           30s',
          'n9     1.5KiB      100.0%      3.0MiB   512B            <none>       30s',
          '',
        ].join('\n'),
      ),
      text,
    );
    // An empty NodePull is no node of a PrePull: no work rows, nothing for `why`, even with an
    // old status entry the agent has not cleared yet.
    assert.ok(!report.nodes.some((n) => n.node === 'n9'));
    const stale: NodePull = {
      ...withCaches[2]!,
      status: { images: [{ image: 'docker.io/library/nginx:1.25', phase: 'Failed', reason: 'NotFound' }] },
    };
    assert.ok(!buildStatusReport([a, b], [stale], NOW).nodes.length);
    const why = buildWhyReport({
      query: parseImageQuery('nginx:1.25'),
      prePulls: [],
      nodePulls: [stale],
      nodes: [],
      events: parseKubeletEvents({ items: [] }),
    });
    assert.deepEqual(why.nodePulls, []);
    // About one PrePull: the caches of its nodes only.
    assert.deepEqual(
      buildStatusReport([b], withCaches, NOW, { caches: 'prePullNodes' }).caches.map((c) => c.node),
      ['n1'],
    );
    // No PrePull at all: the wide view is the cache table alone.
    const alone = buildStatusReport([], withCaches, NOW);
    assert.match(
      formatStatusText(alone, { withNamespace: false, wide: true, now: NOW }),
      /^NODE {3}CACHE USE.*\nn1 .*\nn2 .*\nn9 .*\n$/,
    );
    assert.equal(formatStatusText(alone, { withNamespace: false, wide: false, now: NOW }), '');
    assert.doesNotMatch(
      formatStatusText(report, { withNamespace: false, wide: false, now: NOW }),
      /CACHE USE/,
    );
    assert.doesNotMatch(
      formatStatusText(buildStatusReport([a, b], nodePulls, NOW), {
        withNamespace: false,
        wide: true,
        now: NOW,
      }),
      /CACHE USE/,
      'no figures reported: no table',
    );
  });
});

describe('why view', () => {
  const events = parseKubeletEvents({
    items: [
      {
        reason: 'Failed',
        message: 'Failed to pull image "nginx:1.25": rpc error: code = NotFound desc = manifest unknown',
        source: { host: 'n2' },
        involvedObject: { namespace: 'web', name: 'p', fieldPath: 'spec.containers{c}' },
        lastTimestamp: '2026-06-01T11:59:00Z',
      },
      {
        reason: 'Failed',
        message: 'Failed to pull image "redis:7": 401 Unauthorized',
        source: { host: 'n2' },
        involvedObject: { namespace: 'web', name: 'q', fieldPath: 'spec.containers{c}' },
        lastTimestamp: '2026-06-01T11:59:00Z',
      },
    ],
  });
  const nodes = [
    {
      metadata: { name: 'n3' },
      status: { images: [{ names: [`docker.io/library/nginx@${DA}`], sizeBytes: 1000 }] },
    },
    { metadata: { name: 'n4' }, status: { images: [{ names: ['docker.io/library/nginx:1.24'] }] } },
    // One runtime record: the image under its tag here and its digest in another repository.
    {
      metadata: { name: 'n5' },
      status: { images: [{ names: ['docker.io/library/nginx:1.25', `registry.local/nginx@${DA}`] }] },
    },
  ];

  it('gathers NodePull states, runtime images and classified kubelet failures of the image only', () => {
    const r = buildWhyReport({
      query: parseImageQuery('nginx'),
      prePulls: [prePull('web', 'a', ['nginx:1.25']), prePull('web', 'b', ['redis:7'])],
      nodePulls,
      nodes,
      events,
    });
    assert.equal(r.matches, 'docker.io/library/nginx:*');
    assert.deepEqual(r.prePulls, [{ namespace: 'web', name: 'a', image: 'nginx:1.25' }]);
    assert.deepEqual(
      r.nodePulls.map((n) => [n.node, n.state, n.reason]),
      [
        ['n1', 'Pulling', undefined],
        ['n2', 'Failed', 'NotFound'],
      ],
    );
    assert.deepEqual(
      r.runtime.map((n) => n.node),
      ['n3', 'n4', 'n5'],
    );
    assert.deepEqual(
      r.kubeletFailures.map((f) => [f.node, f.cause, f.attempts]),
      [['n2', 'not-found', 1]],
    );
  });

  it('a digest query finds runtime records by their repo@digest name and NodePull entries by status digest', () => {
    const r = buildWhyReport({
      query: parseImageQuery(`nginx@${DA}`),
      prePulls: [],
      nodePulls,
      nodes,
      events,
    });
    assert.deepEqual(
      r.nodePulls.map((n) => n.node),
      ['n1'],
    );
    assert.deepEqual(
      r.runtime.map((n) => n.node),
      ['n3', 'n5'],
    );
    assert.deepEqual(r.kubeletFailures, []);
  });

  it('says so when nothing knows the image', () => {
    const r = buildWhyReport({ query: parseImageQuery('busybox:1'), prePulls: [], nodePulls, nodes, events });
    assert.equal(
      formatWhyText(r),
      'Image docker.io/library/busybox:1\nWanted by no PrePull.\n\nNo node holds it, pulls it or failed to pull it, as far as NodePulls, Nodes and recent events tell.\n',
    );
  });
});

describe('top view', () => {
  const pull = (image: string, seconds: number, time: string | undefined): Pull => ({
    image,
    node: 'n1',
    seconds,
    secondsIncludingWaiting: null,
    bytes: null,
    count: 1,
    format: 'legacy',
    ...(time ? { time } : {}),
  });
  const pulls = [
    pull('a:1', 5, '2026-06-01T11:50:00Z'),
    pull('b:1', 50, '2026-06-01T11:00:00Z'), // exactly at the window's start: in
    pull('c:1', 500, '2026-06-01T10:59:59Z'), // before it: out
    pull('d:1', 20, undefined), // no time: cannot be placed in the window
    pull('e:1', 30, '2026-06-01T11:55:00Z'),
  ];

  it('keeps pulls within the window, slowest first, at most --limit; pulls in progress by elapsed time', () => {
    const r = buildTopReport({ pulls, nodePulls, now: NOW, since: '1h', sinceSeconds: 3600, limit: 2 });
    assert.deepEqual(
      r.pulls.map((p) => [p.image, p.seconds]),
      [
        ['b:1', 50],
        ['e:1', 30],
      ],
    );
    assert.deepEqual(r.pulling, [
      {
        node: 'n1',
        image: 'docker.io/library/nginx:1.25',
        startedAt: '2026-06-01T11:58:30Z',
        elapsedSeconds: 90,
        attempts: 1,
        sources: ['web/a', 'web/b'],
      },
    ]);
    assert.equal(
      formatTopText(r, NOW),
      [
        'Pulling now (NodePull status):',
        'NODE   IMAGE                          ATTEMPTS   PREPULLS      ELAPSED',
        'n1     docker.io/library/nginx:1.25   1          web/a,web/b   90s',
        '',
        'Slowest kubelet pulls in the last 1h (events):',
        'NODE   IMAGE   DURATION   WITH WAITING   SIZE     POD      AGE',
        'n1     b:1     50.0s      <none>         <none>   <none>   60m',
        'n1     e:1     30.0s      <none>         <none>   <none>   5m',
        '',
      ].join('\n'),
    );
  });

  it('says so when no pull finished in the window', () => {
    const r = buildTopReport({
      pulls: [],
      nodePulls: [],
      now: NOW,
      since: '30m',
      sinceSeconds: 1800,
      limit: 10,
    });
    assert.equal(formatTopText(r, NOW), 'No kubelet pull in the last 30m (events of reason Pulled).\n');
  });
});
