import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnalyzeError } from './errors.js';
import { parseGoDuration } from './go-duration.js';
import {
  classifyPullFailure,
  classifyPullMessage,
  parseEventsJson,
  parseKubeletEvents,
  type FailureCause,
} from './kubelet-events.js';
import { buildEventsReport, percentiles } from './pull-report.js';

/** A core/v1 Event as `kubectl get events -o json` prints it. */
function event(
  reason: string,
  message: string,
  opts: { node?: string; pod?: string; count?: number; time?: string; container?: string } = {},
) {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${opts.pod ?? 'web-1'}.17f`, namespace: 'default' },
    involvedObject: {
      kind: 'Pod',
      namespace: 'default',
      name: opts.pod ?? 'web-1',
      fieldPath: `spec.containers{${opts.container ?? 'app'}}`,
    },
    reason,
    message,
    source: { component: 'kubelet', host: opts.node ?? 'node-a' },
    count: opts.count ?? 1,
    type: reason === 'Pulled' || reason === 'Pulling' ? 'Normal' : 'Warning',
    firstTimestamp: opts.time ?? '2024-05-01T10:00:00Z',
    lastTimestamp: opts.time ?? '2024-05-01T10:00:00Z',
  };
}

const list = (...items: unknown[]) => ({
  apiVersion: 'v1',
  kind: 'List',
  items,
  metadata: { resourceVersion: '' },
});

describe('Go durations', () => {
  const cases: Array<[string, number | undefined]> = [
    ['1.234s', 1.234],
    ['3m2.5s', 182.5],
    ['1h0m0s', 3600],
    ['850ms', 0.85],
    ['1.5µs', 1.5e-6],
    ['2m', 120],
    ['0', 0],
    ['1.2', undefined],
    ['abc', undefined],
  ];
  for (const [text, seconds] of cases) {
    it(text, () => {
      const got = parseGoDuration(text);
      if (seconds === undefined) assert.equal(got, undefined);
      else assert.ok(Math.abs((got ?? NaN) - seconds) < 1e-9, `${got}`);
    });
  }
});

describe('pull messages from each kubelet generation', () => {
  const cases: Array<
    [string, string, { seconds: number; waiting: number | null; bytes: number | null; format: string }]
  > = [
    [
      '1.30+: size and waiting',
      'Successfully pulled image "nginx:1.27" in 3.385s (3.385s including waiting). Image size: 70993397 bytes.',
      { seconds: 3.385, waiting: 3.385, bytes: 70993397, format: 'current' },
    ],
    [
      '1.30+: minutes',
      'Successfully pulled image "registry.example.com/ai/model:v1" in 3m2.5s (4m10.001s including waiting). Image size: 41234567890 bytes.',
      { seconds: 182.5, waiting: 250.001, bytes: 41234567890, format: 'current' },
    ],
    [
      '1.26-1.29: waiting, no size',
      'Successfully pulled image "busybox" in 1.234s (1.234s including waiting)',
      { seconds: 1.234, waiting: 1.234, bytes: null, format: 'waiting' },
    ],
    [
      '1.25 and older: duration only',
      'Successfully pulled image "busybox" in 1.5s',
      { seconds: 1.5, waiting: null, bytes: null, format: 'legacy' },
    ],
    [
      '1.25 and older: nanosecond precision',
      'Successfully pulled image "k8s.gcr.io/pause:3.2" in 612.345678ms',
      { seconds: 0.612345678, waiting: null, bytes: null, format: 'legacy' },
    ],
  ];
  for (const [name, message, want] of cases) {
    it(name, () => {
      const parsed = parseKubeletEvents(list(event('Pulled', message)));
      assert.equal(parsed.pulls.length, 1);
      const p = parsed.pulls[0]!;
      assert.ok(Math.abs(p.seconds - want.seconds) < 1e-9);
      if (want.waiting === null) assert.equal(p.secondsIncludingWaiting, null);
      else assert.ok(Math.abs((p.secondsIncludingWaiting ?? NaN) - want.waiting) < 1e-9);
      assert.equal(p.bytes, want.bytes);
      assert.equal(p.format, want.format);
      assert.equal(p.node, 'node-a');
    });
  }

  it('counts pulls without a duration and images already present, but not as pulls', () => {
    const parsed = parseKubeletEvents(
      list(
        event('Pulled', 'Successfully pulled image "busybox"'),
        event('Pulled', 'Container image "busybox:1.36" already present on machine', { count: 4 }),
        event('Pulling', 'Pulling image "busybox"'),
      ),
    );
    assert.equal(parsed.pulls.length, 0);
    assert.equal(parsed.pullsWithoutDuration, 1);
    assert.deepEqual(parsed.alreadyPresent, [{ image: 'busybox:1.36', node: 'node-a', count: 4 }]);
  });

  it('reads events.k8s.io/v1 events (note, regarding, reportingInstance, series)', () => {
    const parsed = parseKubeletEvents({
      kind: 'EventList',
      apiVersion: 'events.k8s.io/v1',
      items: [
        {
          reason: 'Pulled',
          note: 'Successfully pulled image "redis:7" in 2s (5s including waiting). Image size: 100 bytes.',
          regarding: { kind: 'Pod', namespace: 'ns', name: 'r-0' },
          reportingController: 'kubelet',
          reportingInstance: 'node-z',
          series: { count: 3, lastObservedTime: '2024-05-01T10:00:00Z' },
        },
      ],
    });
    assert.deepEqual(
      parsed.pulls.map((p) => [p.image, p.node, p.seconds, p.secondsIncludingWaiting, p.bytes, p.count]),
      [['redis:7', 'node-z', 2, 5, 100, 3]],
    );
  });
});

describe('pull failures by cause', () => {
  const cases: Array<[string, FailureCause]> = [
    [
      'rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/nginx:1.27": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/nginx/manifests/sha256:abc: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.',
      'rate-limit',
    ],
    [
      'failed to resolve reference "ghcr.io/x/y:1": unexpected status from HEAD request: 429 Too Many Requests',
      'rate-limit',
    ],
    [
      'rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/nginx:nope": failed to resolve reference "docker.io/library/nginx:nope": docker.io/library/nginx:nope: not found',
      'not-found',
    ],
    [
      'Error response from daemon: manifest for nginx:nope not found: manifest unknown: manifest unknown',
      'not-found',
    ],
    [
      'failed to pull and unpack image "registry.example.com/private/app:1": failed to resolve reference "registry.example.com/private/app:1": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed',
      'unauthorized',
    ],
    [
      'failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized',
      'unauthorized',
    ],
    [
      'rpc error: code = Unknown desc = failed to pull and unpack image "x": failed to resolve reference "x": failed to do request: Head "https://registry.example.com/v2/x/manifests/1": dial tcp 10.0.0.1:443: i/o timeout',
      'timeout',
    ],
    ['rpc error: code = DeadlineExceeded desc = context deadline exceeded', 'timeout'],
    // containerd's image_pull_progress_timeout cancels a pull that made no progress
    [
      'rpc error: code = Canceled desc = failed to pull and unpack image "registry.example.com/app:1": context canceled',
      'timeout',
    ],
    ['rpc error: code = Canceled desc = context canceled', 'timeout'],
    // CRI-O's pull_progress_timeout
    [
      'pulling image: rpc error: code = Canceled desc = copying system image from manifest list: copying config: context canceled',
      'timeout',
    ],
    ['net/http: TLS handshake timeout', 'timeout'],
    [
      'failed to pull and unpack image "x": failed to extract layer sha256:abc: write /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/9/fs/usr/lib/x.so: no space left on device: unknown',
      'disk-pressure',
    ],
    ['rpc error: code = Unknown desc = something odd happened', 'other'],
  ];
  for (const [text, cause] of cases) {
    it(`${cause}: ${text.slice(0, 60)}`, () => assert.equal(classifyPullFailure(text), cause));
  }

  it('counts a failure per failed pull attempt, each back-off once, per image, node and cause', () => {
    const tooMany = 'failed to pull and unpack image "docker.io/library/nginx:1.27": 429 Too Many Requests';
    const parsed = parseKubeletEvents(
      list(
        event('Pulling', 'Pulling image "nginx:1.27"', { node: 'n1', time: '2024-05-01T10:00:00Z' }),
        event('Failed', `Failed to pull image "nginx:1.27": ${tooMany}`, {
          node: 'n1',
          count: 3,
          time: '2024-05-01T10:00:01Z',
        }),
        event('Failed', 'Error: ErrImagePull', { node: 'n1', count: 3, time: '2024-05-01T10:00:01Z' }),
        event('BackOff', 'Back-off pulling image "nginx:1.27"', {
          node: 'n1',
          count: 5,
          time: '2024-05-01T10:00:05Z',
        }),
        event('Failed', 'Error: ImagePullBackOff', { node: 'n1', count: 5, time: '2024-05-01T10:00:05Z' }),
        // Newer kubelets put the cause into the back-off message itself.
        event(
          'BackOff',
          'Back-off pulling image "app:missing": ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/app:missing": not found',
          { node: 'n2', pod: 'app-1', count: 2 },
        ),
      ),
    );
    const rows = parsed.failures.map((f) => [
      f.image,
      f.node,
      f.cause,
      f.errImagePull,
      f.imagePullBackOff,
      f.count,
    ]);
    // 3 attempts (Failed to pull + Error: ErrImagePull), 5 back-offs (Back-off + Error:
    // ImagePullBackOff); a back-off with no attempt in view still proves one failed attempt.
    assert.deepEqual(rows, [
      ['nginx:1.27', 'n1', 'rate-limit', 3, 5, 3],
      ['app:missing', 'n2', 'not-found', 0, 2, 1],
    ]);
  });

  it('rejects input that is not a list of events, with a one-line message', () => {
    const bad: Array<[string, RegExp]> = [
      ['{"kind": "Pod"}', /not a list of Kubernetes events/],
      ['not json at all', /not valid JSON/],
      ['42', /not a list of Kubernetes events/],
    ];
    for (const [text, re] of bad) {
      assert.throws(
        () => parseEventsJson(text, 'events.json'),
        (e: unknown) => e instanceof AnalyzeError && re.test(e.message) && !e.message.includes('\n'),
      );
    }
    assert.equal(parseEventsJson('{"apiVersion":"v1","items":[],"kind":"List"}', 'x').events, 0);
  });
});

describe('pull report', () => {
  it('weighted nearest-rank percentiles', () => {
    const p = percentiles([
      { value: 1, weight: 5 },
      { value: 10, weight: 4 },
      { value: 100, weight: 1 },
    ]);
    assert.deepEqual(p, { p50: 1, p90: 10, p99: 100, max: 100, mean: (5 + 40 + 100) / 10 });
    assert.equal(percentiles([]), null);
  });

  it('aggregates per image and node, measures waiting, and gives the matching remedies', () => {
    const pulled = (image: string, node: string, s: number, incl: number, bytes: number) =>
      event(
        'Pulled',
        `Successfully pulled image "${image}" in ${s}s (${incl}s including waiting). Image size: ${bytes} bytes.`,
        {
          node,
        },
      );
    const parsed = parseKubeletEvents(
      list(
        pulled('model:v1', 'n1', 300, 600, 8e9),
        pulled('model:v1', 'n2', 200, 400, 8e9),
        pulled('model:v1', 'n3', 100, 200, 8e9),
        pulled('web:1', 'n1', 2, 2, 50e6),
        event(
          'Failed',
          'Failed to pull image "web:1": rpc error: code = Unknown desc = dial tcp: i/o timeout',
          { node: 'n2' },
        ),
      ),
    );
    const report = buildEventsReport(parsed);
    const model = report.images.find((i) => i.image === 'model:v1');
    assert.equal(model?.pulls, 3);
    assert.equal(model?.nodes, 3);
    assert.equal(model?.seconds.p50, 200);
    assert.equal(model?.secondsIncludingWaiting?.p90, 600);
    assert.equal(model?.bytes, 8e9);
    assert.equal(model?.bytesPerSecond, 8e9 / 200);
    assert.equal(report.nodes[0]?.node, 'n1');
    assert.equal(report.nodes[0]?.totalSeconds, 302);
    // (1202 - 602) / 1202 of the time was spent waiting.
    assert.ok(Math.abs((report.overall.waitingShare ?? 0) - 600 / 1202) < 1e-9);
    assert.equal(report.failuresByCause.timeout, 1);
    assert.deepEqual(report.advice.map((a) => a.topic).sort(), [
      'lazy-pull',
      'parallel-pulls',
      'pre-pull',
      'timeout',
    ]);
  });
});

describe('classifyPullMessage: one event at a time, as pull telemetry reads them', () => {
  const cases: Array<[string, string, Record<string, unknown> | undefined]> = [
    [
      'Pulled',
      'Successfully pulled image "nginx:1.27" in 3.385s (4.1s including waiting). Image size: 70993397 bytes.',
      { kind: 'pulled', image: 'nginx:1.27', seconds: 3.385, bytes: 70993397, format: 'current' },
    ],
    [
      'Pulled',
      'Successfully pulled image "nginx:1.27"',
      { kind: 'pulled-without-duration', image: 'nginx:1.27' },
    ],
    [
      'Pulled',
      'Container image "nginx:1.27" already present on machine',
      { kind: 'present', image: 'nginx:1.27' },
    ],
    [
      'Failed',
      'Failed to pull image "nginx:1.27": rpc error: code = Unknown desc = 429 Too Many Requests',
      { kind: 'failed', image: 'nginx:1.27', cause: 'rate-limit' },
    ],
    [
      'BackOff',
      'Back-off pulling image "ghcr.io/a/b:1": ErrImagePull: failed to authorize: 401 Unauthorized',
      { kind: 'backoff', image: 'ghcr.io/a/b:1', cause: 'unauthorized' },
    ],
    [
      'BackOff',
      'Back-off pulling image "nginx:1.27"',
      { kind: 'backoff', image: 'nginx:1.27', cause: undefined },
    ],
    ['Failed', 'Error: ErrImagePull', { kind: 'error-twin', twin: 'ErrImagePull' }],
    ['Failed', 'Error: ImagePullBackOff', { kind: 'error-twin', twin: 'ImagePullBackOff' }],
    ['Pulling', 'Pulling image "nginx:1.27"', { kind: 'pulling', image: 'nginx:1.27' }],
    [
      'InvalidImageName',
      'Failed to apply default image tag "NGINX": invalid reference format',
      { kind: 'refused' },
    ],
    ['BackOff', 'Back-off restarting failed container app in pod web-1', undefined],
    ['Pulled', 'Successfully pulled image "nginx:1.27" in soon', undefined],
  ];
  for (const [reason, message, want] of cases) {
    it(`${reason}: ${message.slice(0, 60)}`, () => {
      const got = classifyPullMessage(reason, message);
      if (want === undefined) return assert.equal(got, undefined);
      assert.ok(got, 'classified');
      for (const [k, v] of Object.entries(want)) assert.deepEqual((got as Record<string, unknown>)[k], v, k);
    });
  }
});
