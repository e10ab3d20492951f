// Pull telemetry against the real kube-apiserver: the real `hoist controller` (under exactly the
// RBAC rules of src/prepull/rbac.ts) watches Events posted in the kubelet's formats and shows them
// in /metrics: histogram buckets by via and registry, pulls and failures by cause, back-offs, bytes,
// counted once per event growth (an event updated with count+1 counts once more), events from before
// the controller started not counted, and the events of test/fixtures/events as the analyzer reads them.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  classifyPullFailure,
  classifyPullMessage,
  histograms,
  parsePrometheusText,
} from '../src/analyze/index.js';
import type { Sample } from '../src/analyze/prometheus-text.js';
import { kubeMirroredRegistriesMarker } from '../src/agent/index.js';
import { KubeClient, loadKubeConfig } from '../src/kube/index.js';
import { MIRRORED_REGISTRIES_ANNOTATION } from '../src/telemetry/index.js';
import { runHoist, startHoist, type LongRunning } from './helpers/cri.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { shareKubeApiServer, type KubeApiServer } from './helpers/kube.js';
import { agentKubeconfig, eventually, ok, prepareCluster, SYSTEM, TEAM } from './helpers/prepull-cluster.js';

const TIMEOUT = { timeout: 300_000 };
const FIXTURES = fileURLToPath(new URL('./fixtures/events/', import.meta.url));

interface EventDoc {
  metadata: { name: string; namespace: string; resourceVersion?: string; uid?: string };
  reason: string;
  message: string;
  count: number;
  involvedObject: { namespace: string; [k: string]: unknown };
  lastTimestamp?: string;
  [k: string]: unknown;
}

/** A core/v1 Event as the kubelet writes it: involvedObject a pod container, source kubelet. */
function kubeletEvent(
  name: string,
  reason: string,
  message: string,
  opts: { node: string; pod: string; count?: number; component?: string },
): EventDoc {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: TEAM },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'Pod',
      namespace: TEAM,
      name: opts.pod,
      fieldPath: 'spec.containers{app}',
    },
    reason,
    message,
    source: { component: opts.component ?? 'kubelet', host: opts.node },
    count: opts.count ?? 1,
    type: reason === 'Pulled' ? 'Normal' : 'Warning',
    firstTimestamp: now,
    lastTimestamp: now,
  };
}

function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

describe('pull telemetry against kube-apiserver', TIMEOUT, () => {
  const kube = shareKubeApiServer();
  let controller: LongRunning | undefined;
  let metricsUrl = '';
  const api = (): KubeApiServer => kube();

  const post = (e: EventDoc) =>
    ok(
      api().request('POST', `/api/v1/namespaces/${e.metadata.namespace}/events`, { body: e }),
      `event ${e.metadata.name}`,
    );

  async function scrape(): Promise<Sample[]> {
    const res = await fetch(metricsUrl);
    assert.equal(res.status, 200);
    return parsePrometheusText(await res.text());
  }

  /** Polls /metrics until the counted events reach `n`; fails with the controller's log. */
  async function counted(n: number): Promise<Sample[]> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const samples = await scrape();
      const got = sum(samples, 'hoist_image_pull_events_total');
      if (got === n) return samples;
      if (got > n || Date.now() > deadline)
        assert.fail(`${got} pull events counted, want ${n}\n${controller?.stderr().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Polls the controller's log (pino JSON on stderr) for a line; fails with its tail. */
  async function waitForLog(line: RegExp): Promise<void> {
    await eventually(
      `log line ${line}`,
      async () => (line.test(controller?.stderr() ?? '') ? true : undefined),
      60_000,
      () => controller?.stderr().slice(-4000) ?? '',
    );
  }

  before(async () => {
    try {
      api();
    } catch {
      return; // peers not built: the test skips through requireGoPeer
    }
  });

  after(async () => {
    await controller?.stop();
  });

  it(
    'counts kubelet pull events into histograms and counters, by via and cause, once each',
    TIMEOUT,
    async (t) => {
      if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
      // The CRDs, the team namespace and the controller's service account under exactly the rules
      // of src/prepull/rbac.ts, as the controller tests set them up.
      const saKubeconfig = await prepareCluster(api());
      for (const ns of ['ml', 'monitoring'])
        await ok(api().request('POST', '/api/v1/namespaces', { body: { metadata: { name: ns } } }), ns);
      // One node whose agent sends docker.io and ghcr.io through Hoist, one without an agent.
      await ok(
        api().request('POST', '/api/v1/nodes', {
          body: {
            metadata: {
              name: 'gpu-1',
              annotations: { [MIRRORED_REGISTRIES_ANNOTATION]: 'docker.io,ghcr.io' },
            },
          },
        }),
        'node gpu-1',
      );
      await ok(
        api().request('POST', '/api/v1/nodes', { body: { metadata: { name: 'cpu-1' } } }),
        'node cpu-1',
      );

      // History: a pull from before the controller started is not counted.
      await post(
        kubeletEvent(
          'old.1',
          'Pulled',
          'Successfully pulled image "nginx:1.27" in 500ms (500ms including waiting)',
          {
            node: 'gpu-1',
            pod: 'old',
          },
        ),
      );

      controller = startHoist([
        'controller',
        '--kubeconfig',
        saKubeconfig,
        '--namespace',
        SYSTEM,
        '--listen',
        '127.0.0.1:0',
        '--telemetry-registries',
        'docker.io,ghcr.io',
        '--log-level',
        'debug',
      ]);
      metricsUrl = `${await controller.url}/metrics`;
      // Leading and watching: the log says so once the first lists are in.
      await waitForLog(/pull telemetry watching kubelet events/);

      const direct = await post(
        kubeletEvent(
          'web.2',
          'Pulled',
          'Successfully pulled image "nginx:1.27" in 45.2s (50s including waiting)',
          { node: 'cpu-1', pod: 'web-2' },
        ),
      );
      await post(
        kubeletEvent(
          'web.1',
          'Pulled',
          'Successfully pulled image "nginx:1.27" in 3.385s (3.385s including waiting). Image size: 70993397 bytes.',
          { node: 'gpu-1', pod: 'web-1' },
        ),
      );
      await post(
        kubeletEvent(
          'model.1',
          'Pulled',
          'Successfully pulled image "registry.example.com/ai/model:v1" in 1m30.512345678s',
          { node: 'gpu-1', pod: 'model' },
        ),
      );
      await post(
        kubeletEvent(
          'web.3',
          'Failed',
          'Failed to pull image "nginx:1.27": rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/nginx:1.27": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/nginx/manifests/1.27: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.',
          { node: 'cpu-1', pod: 'web-3' },
        ),
      );
      await post(kubeletEvent('web.3b', 'Failed', 'Error: ErrImagePull', { node: 'cpu-1', pod: 'web-3' }));
      await post(
        kubeletEvent('web.3c', 'BackOff', 'Back-off pulling image "nginx:1.27"', {
          node: 'cpu-1',
          pod: 'web-3',
        }),
      );
      await post(
        kubeletEvent(
          'priv.1',
          'Failed',
          'Failed to pull image "ghcr.io/acme/private:v1": rpc error: code = Unknown desc = failed to pull and unpack image "ghcr.io/acme/private:v1": failed to resolve reference "ghcr.io/acme/private:v1": failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized',
          { node: 'gpu-1', pod: 'priv' },
        ),
      );
      // Not the kubelet's: the field selector leaves it out.
      await post(
        kubeletEvent('fake.1', 'Pulled', 'Successfully pulled image "nginx:1.27" in 1s', {
          node: 'gpu-1',
          pod: 'fake',
          component: 'someone-else',
        }),
      );
      // The API server folds a repeat into count+1: one more pull, not two.
      const repeated = direct.json as EventDoc;
      await ok(
        api().request('PUT', `/api/v1/namespaces/${TEAM}/events/web.2`, { body: { ...repeated, count: 2 } }),
        'count+1',
      );

      // Pulled: web.2 (twice), web.1, model.1; Failed: web.3, priv.1 (the ErrImagePull twin is not
      // counted); BackOff: web.3c.
      let samples = await counted(7);
      const pulls = (via: string, outcome: string) =>
        sum(samples, 'hoist_image_pulls_total', { via, outcome });
      assert.equal(pulls('hoist', 'pulled'), 1);
      assert.equal(pulls('direct', 'pulled'), 3);
      assert.equal(pulls('direct', 'failed'), 1);
      assert.equal(pulls('hoist', 'failed'), 1);
      const failures = (via: string, cause: string) =>
        sum(samples, 'hoist_image_pull_failures_total', { via, cause });
      assert.equal(failures('direct', 'rate-limit'), 1);
      assert.equal(failures('hoist', 'unauthorized'), 1);
      assert.equal(sum(samples, 'hoist_image_pull_failures_total'), 2);
      // The back-off says no cause: it gets the container's last failure's.
      assert.equal(
        sum(samples, 'hoist_image_pull_backoffs_total', { via: 'direct', cause: 'rate-limit' }),
        1,
      );
      assert.equal(sum(samples, 'hoist_image_pull_bytes_total', { via: 'hoist' }), 70993397);
      assert.equal(sum(samples, 'hoist_image_pull_bytes_total', { via: 'direct' }), 0);

      const family = histograms(samples, 'hoist_image_pull_duration_seconds');
      const bucketsOf = (via: string, registry: string) => {
        const h = family.find((x) => x.labels.via === via && x.labels.registry === registry);
        assert.ok(
          h,
          `histogram via=${via} registry=${registry} in ${JSON.stringify(family.map((x) => x.labels))}`,
        );
        return {
          count: h.count,
          sum: h.sum,
          le: Object.fromEntries(h.buckets.map((b) => [String(b.le), b.count])),
        };
      };
      const hoisted = bucketsOf('hoist', 'docker.io');
      assert.equal(hoisted.count, 1, 'the pull from before the start is not counted');
      assert.equal(hoisted.le['2'], 0);
      assert.equal(hoisted.le['5'], 1);
      const viaDirect = bucketsOf('direct', 'docker.io');
      assert.equal(viaDirect.count, 2);
      assert.equal(viaDirect.le['30'], 0);
      assert.equal(viaDirect.le['60'], 2);
      assert.ok(Math.abs(viaDirect.sum - 90.4) < 1e-9, `${viaDirect.sum}`);
      // registry.example.com is neither mirrored on gpu-1 nor a configured registry.
      const other = bucketsOf('direct', 'other');
      assert.equal(other.count, 1);
      assert.equal(other.le['60'], 0);
      assert.equal(other.le['120'], 1);
      assert.equal(family.length, 3, 'no other series');
      assert.ok(
        samples.every((s) => !('node' in s.labels) && !('pod' in s.labels) && !('image' in s.labels)),
        'no node, pod or image label',
      );

      // The agent on cpu-1 configures its containerd and marks its Node, under the agent's own RBAC
      // rules: from then on, cpu-1's docker.io pulls go through Hoist.
      const agentClient = new KubeClient(await loadKubeConfig({ kubeconfig: await agentKubeconfig(api()) }));
      try {
        await kubeMirroredRegistriesMarker(agentClient, 'cpu-1')(['quay.io', 'docker.io']);
      } finally {
        agentClient.close();
      }
      const marked = (await api().request('GET', '/api/v1/nodes/cpu-1')).json as {
        metadata: { annotations?: Record<string, string> };
      };
      assert.equal(marked.metadata.annotations?.[MIRRORED_REGISTRIES_ANNOTATION], 'docker.io,quay.io');
      // Pulls are told apart by the controller's cache of Nodes: post the pull once it has the mark.
      await waitForLog(/"node":"cpu-1","registries":"docker.io,quay.io"/);
      await post(
        kubeletEvent('web.4', 'Pulled', 'Successfully pulled image "nginx:1.27" in 1.5s', {
          node: 'cpu-1',
          pod: 'web-4',
        }),
      );
      samples = await counted(8);
      assert.equal(sum(samples, 'hoist_image_pulls_total', { via: 'hoist', outcome: 'pulled' }), 2);
      assert.equal(sum(samples, 'hoist_image_pulls_total', { via: 'direct', outcome: 'pulled' }), 3);

      // The analyzer's fixtures, posted oldest first as the kubelet wrote them: the same parser counts
      // them live. rate-limit-backoff-1.29.json: 6 failed attempts (429) and 18 back-offs (NOTES.md).
      const before = samples;
      let expectEvents = 8;
      let expectPulled = 0;
      let expectBackOffs = 0;
      const expectFailures = new Map<string, number>();
      for (const file of [
        'rate-limit-backoff-1.29.json',
        'canceled-large-images-1.30.json',
        'legacy-docker-1.24.json',
      ]) {
        const doc = JSON.parse(await readFile(`${FIXTURES}${file}`, 'utf8')) as { items: EventDoc[] };
        const items = [...doc.items].sort((a, b) =>
          (a.lastTimestamp ?? '').localeCompare(b.lastTimestamp ?? ''),
        );
        for (const e of items) {
          await post({ ...e, metadata: { name: e.metadata.name, namespace: e.metadata.namespace } });
          const c = classifyPullMessage(e.reason, e.message);
          if (c?.kind === 'pulled') expectPulled += e.count;
          if (c?.kind === 'backoff') expectBackOffs += e.count;
          if (c?.kind === 'failed') {
            const cause = classifyPullFailure(c.detail);
            expectFailures.set(cause, (expectFailures.get(cause) ?? 0) + e.count);
          }
          if (c?.kind === 'pulled' || c?.kind === 'backoff' || c?.kind === 'failed') expectEvents += e.count;
        }
      }
      assert.equal(expectFailures.get('rate-limit'), 6);
      samples = await counted(expectEvents);
      const delta = (name: string, labels: Record<string, string> = {}) =>
        sum(samples, name, labels) - sum(before, name, labels);
      assert.equal(delta('hoist_image_pulls_total', { via: 'direct', outcome: 'pulled' }), expectPulled);
      assert.equal(
        delta('hoist_image_pulls_total', { via: 'hoist' }),
        0,
        'the fixtures run on nodes without Hoist',
      );
      for (const [cause, n] of expectFailures)
        assert.equal(delta('hoist_image_pull_failures_total', { via: 'direct', cause }), n, cause);
      assert.equal(delta('hoist_image_pull_backoffs_total'), expectBackOffs);
      assert.ok(expectBackOffs >= 18, `${expectBackOffs}`);
      assert.equal(delta('hoist_image_pull_duration_seconds_count'), expectPulled);
    },
  );

  it(
    'refuses a --telemetry-registries value that is not a list of registry hosts, exit 2',
    TIMEOUT,
    async () => {
      const res = await runHoist(['controller', '--telemetry-registries', 'docker.io,https://ghcr.io']);
      assert.equal(res.code, 2, res.stderr);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      assert.match(res.stderr, /--telemetry-registries: "https:\/\/ghcr.io" is not a registry host/);
    },
  );
});
