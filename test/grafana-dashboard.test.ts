// The Grafana dashboard queries only metrics Hoist exports: every PromQL expression in the chart's
// files/grafana-dashboard.json is tokenised, its metric names taken out (a histogram's _bucket, _sum
// and _count series belong to its family), and each must be a family in the /metrics of a real
// mirror (with peer sharing on, so that the peer metrics are registered), agent (over a real
// containerd) and controller (against the real kube-apiserver).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startCriNode, startHoist, type LongRunning } from './helpers/cri.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { shareKubeApiServer } from './helpers/kube.js';
import { startMirror } from './helpers/mirror.js';
import { freePort, requirePeers, requireRoot } from './helpers/peers.js';

const TIMEOUT = { timeout: 300_000 };
const DASHBOARD = fileURLToPath(
  new URL('../deploy/helm/hoist/files/grafana-dashboard.json', import.meta.url),
);

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names in a PromQL expression: identifiers that are not functions (followed by "("),
 * keywords, label names (inside {...} or the label lists of by/without/on/ignoring/group_*),
 * string contents, durations in [...], or Grafana variables ($__rate_interval, ${x}).
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = m[0];
    const after = stripped.slice((m.index ?? 0) + name.length);
    if (/^\s*\(/.test(after) || KEYWORDS.has(name.toLowerCase())) continue;
    const before = stripped.slice(0, m.index ?? 0);
    if (/[0-9.]$/.test(before)) continue; // the exponent or unit of a number: 1e3
    names.add(name);
  }
  return [...names].sort();
}

/** Every `expr` of every panel, rows' collapsed panels included. */
function expressions(dashboard: { panels?: unknown[] }): Array<{ panel: string; expr: string }> {
  const out: Array<{ panel: string; expr: string }> = [];
  const visit = (panels: unknown[] | undefined) => {
    for (const p of panels ?? []) {
      const panel = p as { title?: string; targets?: Array<{ expr?: string }>; panels?: unknown[] };
      for (const t of panel.targets ?? []) if (t.expr) out.push({ panel: panel.title ?? '?', expr: t.expr });
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  return out;
}

/** Metric families by `# TYPE` line: name -> type. */
function families(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

/** Whether `name` is a series of one of the families: itself, or a histogram/summary's parts. */
function exported(name: string, known: Map<string, string>): boolean {
  if (known.has(name)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!m) return false;
  const type = known.get(m[1]!);
  return type === 'histogram' || (type === 'summary' && m[2] !== 'bucket');
}

describe('PromQL metric names', () => {
  it('takes functions, keywords, labels, strings, ranges and variables out', () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.9, sum by (via, le) (rate(hoist_image_pull_duration_seconds_bucket{via="hoist",x=~"a|b"}[$__rate_interval])))',
      ),
      ['hoist_image_pull_duration_seconds_bucket'],
    );
    assert.deepEqual(
      metricNames(
        'sum(rate(a_total{kind="blob"}[5m])) / on(job) group_left(pod) sum without (le) (b_total) > bool 1e3 offset 5m',
      ),
      ['a_total', 'b_total'],
    );
    assert.deepEqual(metricNames('up{job="${job}"} unless absent(x_y)'), ['up', 'x_y']);
  });
});

describe('Grafana dashboard', TIMEOUT, () => {
  const kube = shareKubeApiServer();
  const running: LongRunning[] = [];
  after(async () => {
    for (const r of running) await r.stop();
  });

  it('queries only metrics the mirror, the agent and the controller export', TIMEOUT, async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd')) return;
    if (!requirePeers(t, 'containerd')) return;
    if (!requireRoot(t, 'containerd mounts snapshots')) return;
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels?: unknown[] };
    const exprs = expressions(dashboard);
    assert.ok(exprs.length >= 15, `${exprs.length} queries`);

    // Peer sharing on (a peer that refuses connections; nothing asks it): its metrics exist only then.
    const port = await freePort();
    const self = `http://127.0.0.1:${port}`;
    const mirror = await startMirror(
      { 'docker.io': 'http://127.0.0.1:9' },
      {
        file: {
          listen: `127.0.0.1:${port}`,
          peers: { self, urls: [self, 'http://127.0.0.1:9'], token: 'grafana-test-peer-token' },
        },
      },
    );
    t.after(() => mirror.close());
    const { endpoint } = await startCriNode(t);
    const agent = startHoist(['agent', '--runtime-endpoint', endpoint, '--listen', '127.0.0.1:0']);
    running.push(agent);
    const controller = startHoist([
      'controller',
      '--kubeconfig',
      kube().adminKubeconfig,
      '--namespace',
      'hoist-system',
      '--listen',
      '127.0.0.1:0',
    ]);
    running.push(controller);
    const scrape = async (base: string) => {
      const res = await fetch(`${base}/metrics`);
      assert.equal(res.status, 200, base);
      return res.text();
    };
    const known = new Map<string, string>();
    for (const base of [mirror.url, await agent.url, await controller.url]) {
      for (const [name, type] of families(await scrape(base))) known.set(name, type);
    }

    const missing: string[] = [];
    const used = new Set<string>();
    for (const { panel, expr } of exprs) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `${panel}: no metric in ${expr}`);
      for (const name of names) {
        used.add(name);
        if (!exported(name, known)) missing.push(`${panel}: ${name}`);
      }
    }
    assert.deepEqual(missing, [], `queried but not exported (known: ${[...known.keys()].join(', ')})`);
    // The panels the issue asks for are there.
    for (const name of [
      'hoist_image_pull_duration_seconds_bucket',
      'hoist_image_pulls_total',
      'hoist_image_pull_failures_total',
      'hoist_image_pull_bytes_total',
      'hoist_mirror_cache_lookups_total',
      'hoist_mirror_upstream_bytes_total',
      'hoist_mirror_served_bytes_total',
      'hoist_mirror_fetched_bytes_total',
      'hoist_mirror_peer_errors_total',
      'hoist_mirror_peer_switches_total',
      'hoist_mirror_peer_requests_total',
      'hoist_prepull_nodes',
      'hoist_controller_leader',
    ]) {
      assert.ok(used.has(name), `the dashboard queries ${name}`);
    }
  });
});
