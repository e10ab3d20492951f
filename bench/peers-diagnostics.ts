// What each node's mirror did in a peers round, so that an upstream copy beyond the first is
// explained by the data (issue 13): per node, its mirror's peer counters (switches by reason,
// bytes fetched by source, peer errors and stalls, what peers asked of it) and the peer events of
// its log (a slow verdict, a peer unusable, a resume, a peer request it served); per blob, every
// upstream GET with the node that sent it, whole (200) or ranged (206), and its bytes.
import type { AccessLogEntry } from '../test/helpers/registry.js';
import type { NetnsHost } from '../test/helpers/netns.js';

export interface NodeMirror {
  node: NetnsHost;
  /** http://ADDRESS:PORT */
  url: string;
  /** Its JSON log so far. */
  stderr(): string;
}

export interface NodeDiagnostics {
  node: string;
  /** hoist_mirror_peer_switches_total by reason. */
  switches: Record<string, number>;
  /** hoist_mirror_fetched_bytes_total by source (upstream, peer). */
  fetchedBytes: Record<string, number>;
  /** hoist_mirror_peer_errors_total as "peer reason" → count (stalled, slow, unreachable, ...). */
  peerErrors: Record<string, number>;
  /** hoist_mirror_peer_requests_total by kind: what the other nodes asked of this one. */
  peerRequests: Record<string, number>;
  /** hoist_mirror_upstream_resumes_total: downloads resumed after their source broke. */
  resumes: number;
  /** Peer-related log lines, in order; `t` is milliseconds since the round started. */
  events: PeerEvent[];
}

export interface PeerEvent {
  t: number;
  msg: string;
  [field: string]: unknown;
}

export interface BlobGet {
  node: string;
  /** 200: the whole blob; 206: a ranged GET (the rest of a blob after a switch or resume). */
  status: number;
  bytes: number;
}

/** Messages of the mirror's log that say where a download's bytes came from. */
const EVENT_MESSAGES = new Set([
  'peer too slow; switching source',
  'peer unusable; trying the next source',
  'peer request failed, but the peer is alive; asking it again',
  'upstream failed; going back to a slow peer',
  'peer sent bytes that failed the digest; avoiding it',
  'blob download broke; resuming',
  'blob download failed; nothing stored',
  'blob stored',
]);

/** `name{a="x",b="y"} value` lines of a Prometheus text exposition, by metric name. */
export function parseMetrics(
  text: string,
): Map<string, Array<{ labels: Record<string, string>; value: number }>> {
  const out = new Map<string, Array<{ labels: Record<string, string>; value: number }>>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string;
    const list = out.get(m[1] as string) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1] as string, list);
  }
  return out;
}

function byLabel(
  metrics: ReturnType<typeof parseMetrics>,
  name: string,
  key: (labels: Record<string, string>) => string,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { labels, value } of metrics.get(name) ?? []) if (value !== 0) out[key(labels)] = value;
  return out;
}

/** Short names: the first 12 hex digits of a digest, a node's name for its peer URL. */
function shorten(value: unknown, names: Map<string, string>): unknown {
  if (typeof value !== 'string') return value;
  const peer = names.get(value.replace(/\/$/, ''));
  if (peer !== undefined) return peer;
  return value.replace(/sha256:([0-9a-f]{12})[0-9a-f]{52}/g, '$1');
}

/** A node's mirror log lines worth reading for where bytes came from, since `startMs`. */
export function peerEvents(stderr: string, startMs: number, names: Map<string, string>): PeerEvent[] {
  const events: PeerEvent[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const msg = String(rec.msg);
    const time = typeof rec.time === 'number' ? rec.time : 0;
    if (time < startMs) continue;
    const peerRequest = msg === 'request' && rec.route === 'peer';
    if (!EVENT_MESSAGES.has(msg) && !peerRequest) continue;
    const ev: PeerEvent = { t: time - startMs, msg };
    for (const k of ['peer', 'digest', 'bytesPerSecond', 'err', 'offset', 'attempt', 'received', 'size']) {
      if (rec[k] !== undefined) ev[k] = shorten(rec[k], names);
    }
    if (peerRequest) {
      for (const k of ['path', 'status', 'cache', 'bytes', 'ms']) ev[k] = shorten(rec[k], names);
      ev.path = String(ev.path).replace(/\?.*$/, '');
    }
    if (typeof ev.bytesPerSecond === 'number') ev.bytesPerSecond = Math.round(ev.bytesPerSecond);
    events.push(ev);
  }
  return events;
}

/** Scrapes one node's mirror from inside its namespace and reads its log. */
export async function diagnoseNode(
  m: NodeMirror,
  startMs: number,
  names: Map<string, string>,
): Promise<NodeDiagnostics> {
  const { stdout } = await m.node.run('curl', ['-sf', `${m.url}/metrics`], { timeoutMs: 10_000 });
  const metrics = parseMetrics(stdout);
  const peerName = (labels: Record<string, string>) => String(shorten(labels.peer ?? '', names));
  return {
    node: m.node.name,
    switches: byLabel(metrics, 'hoist_mirror_peer_switches_total', (l) => l.reason ?? ''),
    fetchedBytes: byLabel(metrics, 'hoist_mirror_fetched_bytes_total', (l) => l.source ?? ''),
    peerErrors: byLabel(metrics, 'hoist_mirror_peer_errors_total', (l) => `${peerName(l)} ${l.reason ?? ''}`),
    peerRequests: byLabel(metrics, 'hoist_mirror_peer_requests_total', (l) => l.kind ?? ''),
    resumes: Object.values(byLabel(metrics, 'hoist_mirror_upstream_resumes_total', () => 'all')).reduce(
      (s, v) => s + v,
      0,
    ),
    events: peerEvents(m.stderr(), startMs, names),
  };
}

/** Every upstream blob GET of the round, per blob (short digest), with the node that sent it. */
export function upstreamGetsByBlob(
  gets: readonly AccessLogEntry[],
  nodeByAddress: Map<string, string>,
): Record<string, BlobGet[]> {
  const out: Record<string, BlobGet[]> = {};
  for (const g of gets) {
    const blob = String(shorten(/sha256:[0-9a-f]{64}/.exec(g.path)?.[0] ?? g.path, new Map()));
    (out[blob] ??= []).push({
      node: nodeByAddress.get(g.remoteAddr) ?? g.remoteAddr,
      status: g.status,
      bytes: g.bytes,
    });
  }
  return out;
}

/** One line per node and one per blob fetched more than once, for the progress output. */
export function describe(nodes: readonly NodeDiagnostics[], blobs: Record<string, BlobGet[]>): string[] {
  const MB = 1_000_000;
  const lines = nodes.map((d) => {
    const fetched = Object.entries(d.fetchedBytes)
      .map(([k, v]) => `${k} ${(v / MB).toFixed(1)} MB`)
      .join(', ');
    const fmt = (r: Record<string, number>) =>
      Object.keys(r).length === 0
        ? 'none'
        : Object.entries(r)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ');
    return `  ${d.node}: fetched ${fetched || 'nothing'}; switches ${fmt(d.switches)}; peer errors ${fmt(d.peerErrors)}; resumes ${d.resumes}`;
  });
  for (const [blob, list] of Object.entries(blobs)) {
    if (list.length < 2) continue;
    const each = list.map((g) => `${g.node} ${g.status} ${(g.bytes / MB).toFixed(1)} MB`).join(', ');
    lines.push(`  blob ${blob} left the upstream ${list.length} times: ${each}`);
  }
  return lines;
}
