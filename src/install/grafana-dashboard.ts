// The Grafana dashboard of Hoist, built on Hoist's own metric names (README "Pull telemetry"), as
// data: `hoist render install` puts it in a ConfigMap with the sidecar label grafana_dashboard: "1"
// (grafana.dashboard.enabled), and deploy/helm/hoist/files/grafana-dashboard.json is this
// dashboard, which the chart's templates/grafana-dashboard.yaml reads. test/grafana-dashboard.test.ts
// checks that every metric it queries is in the /metrics of a real mirror, agent and controller.
import { labels, type InstallContext, type KubeObject } from './meta.js';

/** Dashboard JSON model: https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/ */
type Panel = Record<string, unknown>;

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const RATE = '$__rate_interval';

interface Query {
  expr: string;
  legend: string;
}

let nextId = 1;

function target(q: Query, i: number) {
  return { datasource: DATASOURCE, expr: q.expr, legendFormat: q.legend, refId: String.fromCharCode(65 + i) };
}

function timeseries(
  title: string,
  description: string,
  unit: string,
  queries: Query[],
  gridPos: { x: number; y: number; w: number; h: number },
): Panel {
  return {
    id: nextId++,
    type: 'timeseries',
    title,
    description,
    datasource: DATASOURCE,
    gridPos,
    fieldConfig: { defaults: { unit, min: 0 }, overrides: [] },
    options: { legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] } },
    targets: queries.map(target),
  };
}

function stat(
  title: string,
  description: string,
  unit: string,
  query: Query,
  gridPos: { x: number; y: number; w: number; h: number },
): Panel {
  return {
    id: nextId++,
    type: 'stat',
    title,
    description,
    datasource: DATASOURCE,
    gridPos,
    fieldConfig: { defaults: { unit }, overrides: [] },
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false } },
    targets: [target(query, 0)],
  };
}

function row(title: string, y: number): Panel {
  return {
    id: nextId++,
    type: 'row',
    title,
    collapsed: false,
    gridPos: { x: 0, y, w: 24, h: 1 },
    panels: [],
  };
}

const quantiles = (metric: string, by: string): Query[] =>
  [0.5, 0.9, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (${by}, le) (rate(${metric}_bucket[${RATE}])))`,
    legend: `p${Math.round(q * 100)} {{${by}}}`,
  }));

/** One query: the per-second rate of counter `metric`, summed by label `by`. */
const rateBy = (metric: string, by: string): Query[] => [
  { expr: `sum by (${by}) (rate(${metric}[${RATE}]))`, legend: `{{${by}}}` },
];

/** The peer sharing row's panels (src/peers/metrics.ts), side by side at height `y`. */
function peerPanels(y: number): Panel[] {
  const panels: Array<[title: string, description: string, metric: string, by: string]> = [
    [
      'Peer read errors by reason',
      'Failed reads from peer mirrors per second, by reason (unreachable, timeout, stalled, digest, refused, status); the mirror then tries the next source.',
      'hoist_mirror_peer_errors_total',
      'reason',
    ],
    [
      'Peer switches by reason',
      'Downloads that left a peer mid-body for the next source, per second: stalled (sent nothing), slow (below peers.minBytesPerSecond), broken (the body ended early or failed).',
      'hoist_mirror_peer_switches_total',
      'reason',
    ],
    [
      'Blob requests from peers by answer',
      'What the mirrors answered the blob requests of their peers, per second: served, relayed, miss, refused.',
      'hoist_mirror_peer_requests_total',
      'kind',
    ],
  ];
  return panels.map(([title, description, metric, by], i) =>
    timeseries(title, description, 'ops', rateBy(metric, by), { x: 8 * i, y, w: 8, h: 8 }),
  );
}

/** The dashboard model (Grafana schemaVersion 39), panel ids and positions fixed. */
export function grafanaDashboard(): Record<string, unknown> {
  nextId = 1;
  const panels: Panel[] = [
    row('Image pulls (kubelet events, counted by the leading controller)', 0),
    timeseries(
      'Pull time by via',
      'Time the kubelet reported for each pull (Pulled events), through Hoist or direct: p50, p90, p99.',
      's',
      quantiles('hoist_image_pull_duration_seconds', 'via'),
      { x: 0, y: 1, w: 12, h: 8 },
    ),
    timeseries(
      'Pulls per second by via and outcome',
      'Pulled and failed pull attempts per second.',
      'ops',
      [
        {
          expr: `sum by (via, outcome) (rate(hoist_image_pulls_total[${RATE}]))`,
          legend: '{{via}} {{outcome}}',
        },
      ],
      { x: 12, y: 1, w: 12, h: 8 },
    ),
    timeseries(
      'Pull failures by cause',
      'Failed pull attempts by cause (rate-limit, not-found, unauthorized, timeout, disk-pressure, other), and back-offs.',
      'ops',
      [
        {
          expr: `sum by (cause, via) (rate(hoist_image_pull_failures_total[${RATE}]))`,
          legend: 'failed {{cause}} ({{via}})',
        },
        {
          expr: `sum by (cause) (rate(hoist_image_pull_backoffs_total[${RATE}]))`,
          legend: 'back-off {{cause}}',
        },
      ],
      { x: 0, y: 9, w: 12, h: 8 },
    ),
    timeseries(
      'Pull time p90 by registry',
      'p90 pull time per configured registry (others are "other").',
      's',
      [
        {
          expr: `histogram_quantile(0.9, sum by (registry, le) (rate(hoist_image_pull_duration_seconds_bucket[${RATE}])))`,
          legend: '{{registry}}',
        },
      ],
      { x: 12, y: 9, w: 6, h: 8 },
    ),
    timeseries(
      'Image bytes pulled by via',
      'Image sizes from Pulled events (kubelet 1.30 and later).',
      'Bps',
      [{ expr: `sum by (via) (rate(hoist_image_pull_bytes_total[${RATE}]))`, legend: '{{via}}' }],
      { x: 18, y: 9, w: 6, h: 8 },
    ),
    row('Mirror', 17),
    timeseries(
      'Blob cache hit ratio',
      'Share of blob lookups the mirrors answered from their store.',
      'percentunit',
      [
        {
          expr: `sum(rate(hoist_mirror_cache_lookups_total{kind="blob",result="hit"}[${RATE}])) / sum(rate(hoist_mirror_cache_lookups_total{kind="blob"}[${RATE}]))`,
          legend: 'hit ratio',
        },
      ],
      { x: 0, y: 18, w: 8, h: 8 },
    ),
    timeseries(
      'Bytes: from upstream vs served from cache',
      'What the mirrors fetched from upstream registries, and what they served by source.',
      'Bps',
      [
        { expr: `sum(rate(hoist_mirror_upstream_bytes_total[${RATE}]))`, legend: 'from upstream' },
        {
          expr: `sum by (source) (rate(hoist_mirror_served_bytes_total[${RATE}]))`,
          legend: 'served from {{source}}',
        },
      ],
      { x: 8, y: 18, w: 8, h: 8 },
    ),
    timeseries(
      'Bytes fetched from peers',
      "Blob bytes the mirrors fetched by source: another node's mirror (peer) or the upstream registry.",
      'Bps',
      [
        { expr: `sum(rate(hoist_mirror_fetched_bytes_total{source="peer"}[${RATE}]))`, legend: 'from peers' },
        { expr: `sum by (source) (rate(hoist_mirror_fetched_bytes_total[${RATE}]))`, legend: '{{source}}' },
      ],
      { x: 16, y: 18, w: 8, h: 8 },
    ),
    timeseries(
      'Upstream fetch time by upstream',
      'How long the mirrors took to fetch from each upstream: p50, p90, p99.',
      's',
      quantiles('hoist_mirror_upstream_fetch_duration_seconds', 'upstream'),
      { x: 0, y: 26, w: 12, h: 8 },
    ),
    timeseries(
      'Mirror store size',
      'Bytes and blobs held by all mirrors.',
      'bytes',
      [{ expr: 'sum(hoist_mirror_store_bytes)', legend: 'bytes stored' }],
      { x: 12, y: 26, w: 12, h: 8 },
    ),
    row('Peer sharing (mirrors fetching from each other, docs/peers.md)', 34),
    ...peerPanels(35),
    row('PrePull and agents', 43),
    timeseries(
      'PrePull progress',
      'Target nodes of each PrePull by state (desired, pulling, succeeded, failed).',
      'short',
      [
        {
          expr: 'sum by (namespace, prepull, state) (hoist_prepull_nodes)',
          legend: '{{namespace}}/{{prepull}} {{state}}',
        },
      ],
      { x: 0, y: 44, w: 12, h: 8 },
    ),
    timeseries(
      'Agent pre-pulls',
      'Pre-pulls the node agents finished by outcome, and their p90 time.',
      'short',
      [
        { expr: `sum by (outcome) (rate(hoist_agent_pulls_total[${RATE}]))`, legend: '{{outcome}} /s' },
        {
          expr: `histogram_quantile(0.9, sum by (le) (rate(hoist_agent_image_pull_duration_seconds_bucket[${RATE}])))`,
          legend: 'p90 seconds',
        },
      ],
      { x: 12, y: 44, w: 12, h: 8 },
    ),
    row('Controller health', 52),
    stat(
      'Leading replicas',
      'Controller replicas holding the Lease: 1 when healthy.',
      'short',
      { expr: 'sum(hoist_controller_leader)', legend: 'leaders' },
      { x: 0, y: 53, w: 4, h: 8 },
    ),
    timeseries(
      'Reconciles by result',
      'Reconcile passes per second, ok and error.',
      'ops',
      [{ expr: `sum by (result) (rate(hoist_controller_reconciles_total[${RATE}]))`, legend: '{{result}}' }],
      { x: 4, y: 53, w: 7, h: 8 },
    ),
    timeseries(
      'Reconcile time p99',
      'Time of one reconcile pass, API writes included.',
      's',
      [
        {
          expr: `histogram_quantile(0.99, sum by (le) (rate(hoist_controller_reconcile_duration_seconds_bucket[${RATE}])))`,
          legend: 'p99',
        },
      ],
      { x: 11, y: 53, w: 6, h: 8 },
    ),
    timeseries(
      'API writes by kind and result',
      'NodePull, status and Secret writes per second.',
      'ops',
      [
        {
          expr: `sum by (kind, result) (rate(hoist_controller_api_writes_total[${RATE}]))`,
          legend: '{{kind}} {{result}}',
        },
        { expr: `sum(rate(hoist_image_pull_events_total[${RATE}]))`, legend: 'pull events counted' },
      ],
      { x: 17, y: 53, w: 7, h: 8 },
    ),
  ];
  return {
    uid: 'hoist-overview',
    title: 'Hoist',
    description: 'Image pulls through Hoist and direct, the mirrors, PrePulls and the controller.',
    tags: ['hoist', 'kubernetes', 'images'],
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    schemaVersion: 39,
    time: { from: 'now-6h', to: 'now' },
    timezone: 'browser',
    version: 1,
    annotations: { list: [] },
    links: [],
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          refresh: 1,
          options: [],
        },
      ],
    },
    panels,
  };
}

/** Keys sorted at every level, as Go's encoding/json writes maps. */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/**
 * The dashboard as the chart's `fromJson | toJson` writes it (Go's encoding/json: sorted keys, one
 * line, <, > and & escaped), so that helm template and hoist render install agree byte for byte.
 */
export function grafanaDashboardJson(): string {
  return JSON.stringify(sortKeys(grafanaDashboard()))
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** The ConfigMap Grafana's dashboard sidecar loads (label grafana_dashboard: "1"). */
export function grafanaObjects(ctx: InstallContext): KubeObject[] {
  const { dashboard } = ctx.values.grafana;
  if (!dashboard.enabled) return [];
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: `${ctx.fullname}-grafana-dashboard`,
        namespace: dashboard.namespace || ctx.namespace,
        labels: { ...labels('controller'), grafana_dashboard: '1', ...dashboard.labels },
        ...(Object.keys(dashboard.annotations).length > 0 ? { annotations: dashboard.annotations } : {}),
      },
      data: { 'hoist.json': grafanaDashboardJson() },
    },
  ];
}
