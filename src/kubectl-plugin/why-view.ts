import type { FailureCause, ParsedEvents } from '../analyze/index.js';
import type { NodePull, PrePull } from '../prepull/index.js';
import { formatBytes } from '../analyze/index.js';
import { kubectlTable } from './format.js';
import { imageMatches, normaliseReference, type ImageQuery } from './image-match.js';
import { prePullKey } from './status-view.js';

/**
 * `kubectl hoist why IMAGE`: where an image is and why it is not elsewhere, from three witnesses:
 * the NodePull statuses (what Hoist's agents pulled, pinned or failed, with their reasons), the
 * Nodes' `status.images` (what each kubelet last reported its runtime holds), and the kubelet's
 * pull events (failures of pods' pulls, classified by src/analyze/kubelet-events.ts). Pure.
 */

/** The core/v1 Node fields read here. */
export interface NodeImages {
  metadata: { name: string };
  status?: { images?: Array<{ names?: string[]; sizeBytes?: number }> };
}

export interface WhyNodePull {
  node: string;
  image: string;
  digest?: string;
  state: string;
  reason?: string;
  message?: string;
  attempts?: number;
  pinned?: boolean;
  sizeBytes?: number;
  finishedAt?: string;
  /** PrePulls (namespace/name) that want it there. */
  sources: string[];
}

export interface WhyKubeletFailure {
  node: string;
  image: string;
  cause: FailureCause;
  attempts: number;
  backOffs: number;
  message: string;
}

export interface WhyReport {
  image: string;
  /** The query as matched: `registry/repository` with its tag or digest, or `:*` for any tag. */
  matches: string;
  prePulls: Array<{ namespace: string; name: string; image: string }>;
  nodePulls: WhyNodePull[];
  /** Nodes whose kubelet reports the image in the runtime (Node.status.images). */
  runtime: Array<{ node: string; names: string[]; sizeBytes?: number }>;
  kubeletFailures: WhyKubeletFailure[];
  /** Successful kubelet pulls of the image in the events read. */
  kubeletPulls: number;
}

export function describeQuery(q: ImageQuery): string {
  if (q.digest !== undefined) return `${q.name}@${q.digest}`;
  return q.anyTag ? `${q.name}:*` : `${q.name}:${q.tag ?? 'latest'}`;
}

/** The digest the PrePull's status gives for one of its images (status names it normalised). */
function resolvedDigest(p: PrePull, image: string): string | undefined {
  const want = normaliseReference(image);
  return p.status?.images?.find((s) => {
    const have = normaliseReference(s.image);
    return (
      have !== undefined && have.name === want?.name && have.tag === want.tag && have.digest === want.digest
    );
  })?.digest;
}

export function buildWhyReport(input: {
  query: ImageQuery;
  prePulls: PrePull[];
  nodePulls: NodePull[];
  nodes: NodeImages[];
  events: ParsedEvents;
}): WhyReport {
  const { query } = input;
  const prePulls = input.prePulls
    .flatMap((p) =>
      p.spec.images
        // The digest the controller resolved the PrePull's tag to, so a digest query finds it too.
        .filter((i) => imageMatches(query, i, resolvedDigest(p, i)))
        .map((image) => ({ namespace: p.metadata.namespace ?? '', name: p.metadata.name, image })),
    )
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));

  const nodePulls: WhyNodePull[] = [];
  for (const np of input.nodePulls) {
    const node = np.spec?.nodeName || np.metadata.name;
    for (const entry of np.spec?.images ?? []) {
      const st = np.status?.images?.find((s) => s.image === entry.image);
      const digest = st?.digest ?? entry.digest;
      if (!imageMatches(query, entry.image, digest)) continue;
      nodePulls.push({
        node,
        image: entry.image,
        ...(digest ? { digest } : {}),
        state: st?.phase ?? 'Pending',
        ...(st?.reason ? { reason: st.reason } : {}),
        ...(st?.message ? { message: st.message } : {}),
        ...(st?.attempts !== undefined ? { attempts: st.attempts } : {}),
        ...(st?.pinned !== undefined ? { pinned: st.pinned } : {}),
        ...(st?.sizeBytes !== undefined ? { sizeBytes: st.sizeBytes } : {}),
        ...(st?.finishedAt ? { finishedAt: st.finishedAt } : {}),
        sources: [...(entry.sources ?? [])].sort(),
      });
    }
  }
  nodePulls.sort((a, b) => a.node.localeCompare(b.node) || a.image.localeCompare(b.image));

  const runtime: WhyReport['runtime'] = [];
  for (const n of input.nodes) {
    for (const img of n.status?.images ?? []) {
      const names = img.names ?? [];
      // A runtime image record carries its tag names and its repo@digest names together, so a
      // digest query matches a record through any of its digest names.
      const digests = names.map((x) => /@(sha256:[0-9a-f]{64})$/.exec(x)?.[1]).filter((d) => d !== undefined);
      const hit = names.some(
        (name) => imageMatches(query, name) || digests.some((d) => imageMatches(query, name, d)),
      );
      if (!hit) continue;
      runtime.push({
        node: n.metadata.name,
        names: [...names],
        ...(img.sizeBytes !== undefined ? { sizeBytes: img.sizeBytes } : {}),
      });
    }
  }
  runtime.sort((a, b) => a.node.localeCompare(b.node));

  const kubeletFailures = input.events.failures
    .filter((f) => imageMatches(query, f.image))
    .map((f) => ({
      node: f.node,
      image: f.image,
      cause: f.cause,
      attempts: f.count,
      backOffs: f.imagePullBackOff,
      message: f.example,
    }))
    .sort((a, b) => a.node.localeCompare(b.node) || a.cause.localeCompare(b.cause));
  const kubeletPulls = input.events.pulls
    .filter((p) => imageMatches(query, p.image))
    .reduce((n, p) => n + p.count, 0);

  return {
    image: query.input,
    matches: describeQuery(query),
    prePulls,
    nodePulls,
    runtime,
    kubeletFailures,
    kubeletPulls,
  };
}

/** Makes a multi-line message one table cell. */
const oneLine = (s: string | undefined): string => (s ? s.replace(/\s+/g, ' ').trim() : '<none>');

export function formatWhyText(r: WhyReport): string {
  let s = `Image ${r.matches}\n`;
  s +=
    r.prePulls.length === 0
      ? 'Wanted by no PrePull.\n'
      : `Wanted by PrePulls: ${r.prePulls.map((p) => prePullKey(p)).join(', ')}\n`;
  if (r.nodePulls.length > 0) {
    s += '\nOn nodes (NodePull status, written by the node agents):\n';
    s += kubectlTable(
      ['NODE', 'IMAGE', 'STATE', 'PINNED', 'SIZE', 'REASON', 'MESSAGE'],
      r.nodePulls.map((n) => [
        n.node,
        n.image,
        n.state,
        n.pinned === undefined ? '<none>' : String(n.pinned),
        n.sizeBytes === undefined ? '<none>' : formatBytes(n.sizeBytes),
        n.reason ?? '<none>',
        oneLine(n.message),
      ]),
    );
  }
  if (r.runtime.length > 0) {
    s += "\nIn the nodes' runtime (Node status.images, reported by the kubelet):\n";
    s += kubectlTable(
      ['NODE', 'SIZE', 'NAMES'],
      r.runtime.map((n) => [
        n.node,
        n.sizeBytes === undefined ? '<none>' : formatBytes(n.sizeBytes),
        n.names.join(','),
      ]),
    );
  }
  if (r.kubeletFailures.length > 0) {
    s += '\nFailed kubelet pulls (events):\n';
    s += kubectlTable(
      ['NODE', 'IMAGE', 'CAUSE', 'ATTEMPTS', 'BACK-OFFS', 'MESSAGE'],
      r.kubeletFailures.map((f) => [
        f.node,
        f.image,
        f.cause,
        String(f.attempts),
        String(f.backOffs),
        oneLine(f.message),
      ]),
    );
  }
  if (r.nodePulls.length === 0 && r.runtime.length === 0 && r.kubeletFailures.length === 0) {
    s +=
      '\nNo node holds it, pulls it or failed to pull it, as far as NodePulls, Nodes and recent events tell.\n';
  }
  if (r.kubeletPulls > 0)
    s += `\nThe kubelet pulled it ${r.kubeletPulls} time(s) in the events read (see kubectl hoist top).\n`;
  return s;
}
