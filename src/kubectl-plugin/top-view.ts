import type { Pull } from '../analyze/index.js';
import type { NodePull } from '../prepull/index.js';
import { formatBytes } from '../analyze/index.js';
import { ageOf, formatSeconds, humanDuration, kubectlTable, roundSeconds, secondsBetween } from './format.js';

/**
 * `kubectl hoist top`: the slowest pulls now. Finished pulls come from the kubelet's `Pulled`
 * events (the durations src/analyze/kubelet-events.ts reads from each kubelet version's message)
 * within a window; pulls in progress come from NodePull statuses (phase Pulling, startedAt). Pure.
 */

export interface TopPull {
  node: string;
  image: string;
  seconds: number;
  /** 1.26+ kubelets: from the pull request to its end, waiting for earlier pulls included. */
  secondsIncludingWaiting: number | null;
  bytes: number | null;
  pod?: string;
  time?: string;
}

export interface TopPulling {
  node: string;
  image: string;
  startedAt: string;
  elapsedSeconds: number;
  attempts?: number;
  sources: string[];
}

export interface TopReport {
  /** The window, as given (`1h`), and in seconds. */
  since: string;
  sinceSeconds: number;
  pulls: TopPull[];
  pulling: TopPulling[];
}

export function buildTopReport(input: {
  pulls: Pull[];
  nodePulls: NodePull[];
  now: Date;
  since: string;
  sinceSeconds: number;
  limit: number;
}): TopReport {
  const from = input.now.getTime() - input.sinceSeconds * 1000;
  const pulls = input.pulls
    .filter((p) => p.time !== undefined && Date.parse(p.time) >= from)
    .sort((a, b) => b.seconds - a.seconds || a.node.localeCompare(b.node) || a.image.localeCompare(b.image))
    .slice(0, input.limit)
    .map((p) => ({
      node: p.node,
      image: p.image,
      seconds: roundSeconds(p.seconds),
      secondsIncludingWaiting:
        p.secondsIncludingWaiting === null ? null : roundSeconds(p.secondsIncludingWaiting),
      bytes: p.bytes,
      ...(p.pod !== undefined ? { pod: p.pod } : {}),
      ...(p.time !== undefined ? { time: p.time } : {}),
    }));
  const pulling: TopPulling[] = [];
  for (const np of input.nodePulls) {
    const node = np.spec?.nodeName || np.metadata.name;
    for (const st of np.status?.images ?? []) {
      if (st.phase !== 'Pulling' || !st.startedAt) continue;
      const elapsed = secondsBetween(st.startedAt, input.now.toISOString());
      if (elapsed === undefined) continue;
      const entry = np.spec?.images?.find((e) => e.image === st.image);
      pulling.push({
        node,
        image: st.image,
        startedAt: st.startedAt,
        elapsedSeconds: roundSeconds(elapsed),
        ...(st.attempts !== undefined ? { attempts: st.attempts } : {}),
        sources: [...(entry?.sources ?? [])].sort(),
      });
    }
  }
  pulling.sort(
    (a, b) =>
      b.elapsedSeconds - a.elapsedSeconds || a.node.localeCompare(b.node) || a.image.localeCompare(b.image),
  );
  return {
    since: input.since,
    sinceSeconds: input.sinceSeconds,
    pulls,
    pulling: pulling.slice(0, input.limit),
  };
}

export function formatTopText(r: TopReport, now: Date): string {
  let s = '';
  if (r.pulling.length > 0) {
    s += 'Pulling now (NodePull status):\n';
    s += kubectlTable(
      ['NODE', 'IMAGE', 'ATTEMPTS', 'PREPULLS', 'ELAPSED'],
      r.pulling.map((p) => [
        p.node,
        p.image,
        p.attempts === undefined ? '<none>' : String(p.attempts),
        p.sources.join(',') || '<none>',
        humanDuration(p.elapsedSeconds * 1000),
      ]),
    );
    s += '\n';
  }
  if (r.pulls.length === 0) {
    s += `No kubelet pull in the last ${r.since} (events of reason Pulled).\n`;
  } else {
    s += `Slowest kubelet pulls in the last ${r.since} (events):\n`;
    s += kubectlTable(
      ['NODE', 'IMAGE', 'DURATION', 'WITH WAITING', 'SIZE', 'POD', 'AGE'],
      r.pulls.map((p) => [
        p.node,
        p.image,
        formatSeconds(p.seconds),
        p.secondsIncludingWaiting === null ? '<none>' : formatSeconds(p.secondsIncludingWaiting),
        p.bytes === null ? '<none>' : formatBytes(p.bytes),
        p.pod ?? '<none>',
        ageOf(p.time, now),
      ]),
    );
  }
  return s;
}
