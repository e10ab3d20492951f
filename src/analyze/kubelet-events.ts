import { AnalyzeError } from './errors.js';
import { parseGoDuration } from './go-duration.js';

/**
 * Image pulls and pull failures from kubelet events (`kubectl get events -o json`, core/v1 or
 * events.k8s.io/v1). Message formats by kubelet version (pkg/kubelet/images/image_manager.go):
 *
 * - before 1.17 or so:  `Successfully pulled image "x"` (no duration: not a measurable pull)
 * - to 1.25:            `Successfully pulled image "x" in 1.234567891s`
 * - 1.26 to 1.29:       `Successfully pulled image "x" in 1.234s (1.5s including waiting)`
 * - 1.30 and later:     `... (1.5s including waiting). Image size: 12345 bytes.`
 *
 * Failures: `Failed to pull image "x": <runtime error>` (one ErrImagePull attempt), then
 * `Back-off pulling image "x"` (newer kubelets append `: ErrImagePull: <error>`), and image-less
 * `Error: ErrImagePull` / `Error: ImagePullBackOff`, which are tied to an image through the pod
 * and container they are about. The kubelet emits the `Error: ...` event beside each failed
 * attempt and each back-off, so a failure (`count`) is one failed pull attempt, and a back-off
 * is counted once, not once per message. Pure.
 */

export type FailureCause =
  'rate-limit' | 'not-found' | 'unauthorized' | 'timeout' | 'disk-pressure' | 'other';

export interface Pull {
  image: string;
  node: string;
  /** Time the pull itself took. */
  seconds: number;
  /** Time from the pull request to its end, including waiting for earlier pulls; null before 1.26. */
  secondsIncludingWaiting: number | null;
  /** Image size the kubelet reported (1.30+), else null. */
  bytes: number | null;
  /** How many identical events the API server folded into this one. */
  count: number;
  /** 'current' (1.30+), 'waiting' (1.26-1.29), 'legacy' (older). */
  format: 'current' | 'waiting' | 'legacy';
  pod?: string;
  time?: string;
}

export interface Failure {
  image: string;
  node: string;
  cause: FailureCause;
  /**
   * Failed pull attempts: errImagePull, or 1 for a pod container whose events show back-offs but
   * none of the attempts before them (events expire after an hour).
   */
  count: number;
  /** Failed pull attempts (`Failed to pull image`). */
  errImagePull: number;
  /** Back-offs (`Back-off pulling image` with its twin `Error: ImagePullBackOff`, counted once). */
  imagePullBackOff: number;
  /** One example of the runtime's error text. */
  example: string;
}

export interface ParsedEvents {
  pulls: Pull[];
  failures: Failure[];
  /** `Container image "x" already present on machine`: pulls the node did not need. */
  alreadyPresent: Array<{ image: string; node: string; count: number }>;
  /** Pulls reported without a duration (very old kubelets). */
  pullsWithoutDuration: number;
  /** Events read, of any reason. */
  events: number;
}

interface Tally {
  n: number;
  example: string;
}

/** What one pod container's events say about pulls of one image on one node. */
interface AttemptKey {
  image: string;
  node: string;
  /** Failed pull attempts by cause (`Failed to pull image`, and the kubelet's other refusals). */
  failed: Map<FailureCause, Tally>;
  /** `Error: ErrImagePull` events: one per failed attempt, without the cause. */
  errorEvents: number;
  /** Back-offs whose message names the cause (`Back-off pulling image "x": ErrImagePull: ...`). */
  backOff: Map<FailureCause, Tally>;
  /** `Back-off pulling image "x"` events without a cause. */
  plainBackOffEvents: number;
  /** `Error: ImagePullBackOff` events: one per back-off, without the cause. */
  backOffErrorEvents: number;
  /** The cause of the latest failure seen, for back-offs that do not say it. */
  last?: { cause: FailureCause; example: string };
}

/** The fields of one event that pull analysis reads, from core/v1 or events.k8s.io/v1. */
export interface KubeletEvent {
  reason: string;
  message: string;
  node: string;
  count: number;
  /** `namespace/name/fieldPath` of the involved object: one pod container. */
  objectKey: string;
  time?: string;
}

type RawEvent = KubeletEvent;

/**
 * What one kubelet event message says about image pulls, by message format (see the top of this
 * file). Pure; undefined for messages about anything else.
 */
export type PullMessage =
  | {
      kind: 'pulled';
      image: string;
      seconds: number;
      secondsIncludingWaiting: number | null;
      bytes: number | null;
      format: 'current' | 'waiting' | 'legacy';
    }
  | { kind: 'pulled-without-duration'; image: string }
  | { kind: 'present'; image: string }
  /** `Failed to pull image "x": <error>`: one failed pull attempt. */
  | { kind: 'failed'; image: string; cause: FailureCause; detail: string }
  /** `Back-off pulling image "x"[: ErrImagePull: <error>]`; cause only when the message says it. */
  | { kind: 'backoff'; image: string; cause?: FailureCause; detail?: string }
  /** `Error: ErrImagePull` / `Error: ImagePullBackOff`: twins of a failed attempt or a back-off. */
  | { kind: 'error-twin'; twin: 'ErrImagePull' | 'ImagePullBackOff' }
  /** ErrImageNeverPull, InspectFailed, InvalidImageName: the kubelet refused to pull. */
  | { kind: 'refused'; image?: string; detail: string }
  | { kind: 'pulling'; image: string };

const PULLED =
  /^Successfully pulled image "([^"]+)" in (\S+?)(?: \((\S+) including waiting\))?(?:\. Image size: (\d+) bytes)?\.?$/;
const PULLED_NO_TIME = /^Successfully pulled image "([^"]+)"\.?$/;
const FAILED = /^Failed to pull image "([^"]+)": ([\s\S]*)$/;
const BACKOFF = /^Back-off pulling image "([^"]+)"(?::\s*([\s\S]*))?$/;
const PULLING = /^Pulling image "([^"]+)"/;
const PRESENT = /^Container image "([^"]+)" already present on machine/;
const IMAGE_IN_MESSAGE = /image "([^"]+)"/;

/** The cause of a pull failure from the runtime's error text (containerd, CRI-O, dockershim). */
export function classifyPullFailure(text: string): FailureCause {
  const t = text.toLowerCase();
  if (/\b429\b|toomanyrequests|too many requests|rate limit|pull rate/.test(t)) return 'rate-limit';
  if (/no space left on device|disk ?pressure|insufficient (disk|storage)|ephemeral-storage/.test(t)) {
    return 'disk-pressure';
  }
  if (
    /i\/o timeout|context deadline exceeded|deadlineexceeded|timed out|timeout exceeded|tls handshake timeout|timeout awaiting/.test(
      t,
    )
  ) {
    return 'timeout';
  }
  // containerd (image_pull_progress_timeout) and CRI-O (pull_progress_timeout) cancel a pull that
  // made no progress for a while; the kubelet sees gRPC Canceled with "context canceled".
  if (/code = canceled\b[\s\S]*context canceled/.test(t)) return 'timeout';
  if (/manifest unknown|not found|notfound|name unknown|no such image|404/.test(t)) return 'not-found';
  if (
    /unauthorized|authentication required|access denied|pull access denied|forbidden|denied|insufficient_scope|\b401\b|\b403\b/.test(
      t,
    )
  ) {
    return 'unauthorized';
  }
  return 'other';
}

/** Classifies one kubelet event by its reason and message (see PullMessage). Pure. */
export function classifyPullMessage(reason: string, message: string): PullMessage | undefined {
  let m: RegExpExecArray | null;
  if ((m = PULLED.exec(message))) {
    const seconds = parseGoDuration(m[2] ?? '');
    if (seconds === undefined) return undefined;
    const waiting = m[3] !== undefined ? parseGoDuration(m[3]) : undefined;
    return {
      kind: 'pulled',
      image: m[1] ?? '',
      seconds,
      secondsIncludingWaiting: waiting ?? null,
      bytes: m[4] !== undefined ? Number(m[4]) : null,
      format: m[4] !== undefined ? 'current' : m[3] !== undefined ? 'waiting' : 'legacy',
    };
  }
  if ((m = PULLED_NO_TIME.exec(message))) return { kind: 'pulled-without-duration', image: m[1] ?? '' };
  if ((m = PRESENT.exec(message))) return { kind: 'present', image: m[1] ?? '' };
  if ((m = FAILED.exec(message))) {
    const detail = m[2] ?? '';
    return { kind: 'failed', image: m[1] ?? '', cause: classifyPullFailure(detail), detail };
  }
  if ((m = BACKOFF.exec(message))) {
    const detail = m[2];
    return detail
      ? { kind: 'backoff', image: m[1] ?? '', cause: classifyPullFailure(detail), detail }
      : { kind: 'backoff', image: m[1] ?? '' };
  }
  if (message === 'Error: ErrImagePull') return { kind: 'error-twin', twin: 'ErrImagePull' };
  if (message === 'Error: ImagePullBackOff') return { kind: 'error-twin', twin: 'ImagePullBackOff' };
  if ((m = PULLING.exec(message))) return { kind: 'pulling', image: m[1] ?? '' };
  if (reason === 'ErrImageNeverPull' || reason === 'InspectFailed' || reason === 'InvalidImageName') {
    const image = IMAGE_IN_MESSAGE.exec(message)?.[1];
    return { kind: 'refused', ...(image !== undefined ? { image } : {}), detail: message };
  }
  return undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/** Accepts core/v1 Events and events.k8s.io/v1 Events, as a List, an array or one event. */
function rawEvents(doc: unknown): RawEvent[] {
  const root = obj(doc);
  const items: unknown[] = Array.isArray(doc)
    ? doc
    : Array.isArray(root?.items)
      ? root.items
      : root && (root.kind === 'Event' || 'reason' in root)
        ? [root]
        : [];
  if (!Array.isArray(doc) && !Array.isArray(root?.items) && items.length === 0) {
    throw new AnalyzeError(
      'EVENTS_INVALID',
      'not a list of Kubernetes events: expected the output of "kubectl get events -o json"',
    );
  }
  const out: RawEvent[] = [];
  for (const item of items) {
    const e = readKubeletEvent(item);
    if (e) out.push(e);
  }
  return out;
}

/** One core/v1 or events.k8s.io/v1 Event's fields; undefined for anything not an object. */
export function readKubeletEvent(item: unknown): KubeletEvent | undefined {
  const e = obj(item);
  if (!e) return undefined;
  const involved = obj(e.involvedObject) ?? obj(e.regarding) ?? {};
  const source = obj(e.source) ?? obj(e.deprecatedSource) ?? {};
  const series = obj(e.series);
  const meta = obj(e.metadata) ?? {};
  const time =
    str(e.lastTimestamp) ?? str(e.eventTime) ?? str(series?.lastObservedTime) ?? str(meta.creationTimestamp);
  return {
    reason: str(e.reason) ?? '',
    message: (str(e.message) ?? str(e.note) ?? '').trim(),
    node: str(source.host) ?? str(e.reportingInstance) ?? 'unknown',
    count: Math.max(1, num(series?.count) ?? num(e.count) ?? num(e.deprecatedCount) ?? 1),
    objectKey: `${str(involved.namespace) ?? ''}/${str(involved.name) ?? ''}/${str(involved.fieldPath) ?? ''}`,
    ...(time !== undefined ? { time } : {}),
  };
}

export function parseKubeletEvents(doc: unknown): ParsedEvents {
  const events = rawEvents(doc);
  const pulls: Pull[] = [];
  const present = new Map<string, { image: string; node: string; count: number }>();
  let pullsWithoutDuration = 0;
  // Which image a pod's container pulls, for the image-less "Error: ..." events.
  const imageOf = new Map<string, string>();
  for (const e of events) {
    const m = IMAGE_IN_MESSAGE.exec(e.message);
    if (m?.[1]) imageOf.set(e.objectKey, m[1]);
  }
  // Failures are gathered per pod container and image (an attempt key), then counted there:
  // the kubelet reports each failed attempt twice (`Failed to pull image` and
  // `Error: ErrImagePull`) and each back-off twice (`Back-off pulling image` and
  // `Error: ImagePullBackOff`), so each pair is counted once, not summed.
  const attempts = new Map<string, AttemptKey>();
  const attemptKey = (objectKey: string, image: string, node: string): AttemptKey => {
    const key = `${objectKey}\n${image}\n${node}`;
    let a = attempts.get(key);
    if (!a) {
      a = {
        image,
        node,
        failed: new Map(),
        errorEvents: 0,
        backOff: new Map(),
        plainBackOffEvents: 0,
        backOffErrorEvents: 0,
      };
      attempts.set(key, a);
    }
    return a;
  };
  const add = (to: Map<FailureCause, Tally>, cause: FailureCause, n: number, example: string) => {
    const t = to.get(cause) ?? { n: 0, example: example.slice(0, 300) };
    t.n += n;
    to.set(cause, t);
  };

  // Oldest first, so that a back-off is attributed to the failure that preceded it.
  const ordered = [...events].sort((a, b) => (a.time ?? '').localeCompare(b.time ?? ''));
  for (const e of ordered) {
    const pod = e.objectKey.split('/').slice(0, 2).join('/');
    const c = classifyPullMessage(e.reason, e.message);
    if (!c) continue;
    if (c.kind === 'pulled') {
      pulls.push({
        image: c.image,
        node: e.node,
        seconds: c.seconds,
        secondsIncludingWaiting: c.secondsIncludingWaiting,
        bytes: c.bytes,
        count: e.count,
        format: c.format,
        ...(pod !== '/' ? { pod } : {}),
        ...(e.time !== undefined ? { time: e.time } : {}),
      });
    } else if (c.kind === 'pulled-without-duration') {
      pullsWithoutDuration += e.count;
    } else if (c.kind === 'present') {
      const key = `${c.image}\n${e.node}`;
      const p = present.get(key) ?? { image: c.image, node: e.node, count: 0 };
      p.count += e.count;
      present.set(key, p);
    } else if (c.kind === 'failed') {
      const a = attemptKey(e.objectKey, c.image, e.node);
      a.last = { cause: c.cause, example: c.detail };
      add(a.failed, c.cause, e.count, c.detail);
    } else if (c.kind === 'backoff') {
      const a = attemptKey(e.objectKey, c.image, e.node);
      if (c.cause !== undefined && c.detail !== undefined) {
        a.last = { cause: c.cause, example: c.detail };
        add(a.backOff, c.cause, e.count, c.detail);
      } else a.plainBackOffEvents += e.count;
    } else if (c.kind === 'error-twin') {
      const image = imageOf.get(e.objectKey) ?? `(unknown image of ${pod})`;
      const a = attemptKey(e.objectKey, image, e.node);
      if (c.twin === 'ErrImagePull') a.errorEvents += e.count;
      else a.backOffErrorEvents += e.count;
    } else if (c.kind === 'refused') {
      const image = c.image ?? imageOf.get(e.objectKey) ?? `(unknown image of ${pod})`;
      add(attemptKey(e.objectKey, image, e.node).failed, 'other', e.count, e.message);
    }
  }
  const failures = new Map<string, Failure>();
  for (const a of attempts.values()) {
    // Events that carry no cause (`Error: ...`, older kubelets' `Back-off pulling image "x"`) get
    // this container's latest cause. Each `Error: ErrImagePull` twins a failed attempt and each
    // `Error: ImagePullBackOff` a back-off, so they count only where their twin is missing (aged
    // out, or never listed).
    const fallback = { cause: a.last?.cause ?? 'other', example: a.last?.example ?? '' };
    const sum = (from: Map<FailureCause, Tally>) => [...from.values()].reduce((n, t) => n + t.n, 0);
    const missingFailed = a.errorEvents - sum(a.failed);
    if (missingFailed > 0)
      add(a.failed, fallback.cause, missingFailed, fallback.example || 'Error: ErrImagePull');
    const detailed = sum(a.backOff);
    const plainBackOffs = Math.max(a.plainBackOffEvents, a.backOffErrorEvents - detailed);
    if (plainBackOffs > 0) {
      add(a.backOff, fallback.cause, plainBackOffs, fallback.example || 'Back-off pulling image');
    }
    for (const cause of new Set([...a.failed.keys(), ...a.backOff.keys()])) {
      const failed = a.failed.get(cause);
      const backOff = a.backOff.get(cause);
      const key = `${a.image}\n${a.node}\n${cause}`;
      const f = failures.get(key) ?? {
        image: a.image,
        node: a.node,
        cause,
        count: 0,
        errImagePull: 0,
        imagePullBackOff: 0,
        example: failed?.example ?? backOff?.example ?? '',
      };
      f.errImagePull += failed?.n ?? 0;
      f.imagePullBackOff += backOff?.n ?? 0;
      // A failure is one failed pull attempt. A back-off follows at least one, so a container
      // whose attempts are not in the events (aged out) still counts once.
      f.count += Math.max(failed?.n ?? 0, backOff && backOff.n > 0 ? 1 : 0);
      failures.set(key, f);
    }
  }
  return {
    pulls,
    failures: [...failures.values()].sort((a, b) => b.count - a.count || a.image.localeCompare(b.image)),
    alreadyPresent: [...present.values()],
    pullsWithoutDuration,
    events: events.length,
  };
}

/** Parses the JSON text of `kubectl get events -o json`; exit-2 errors for anything else. */
export function parseEventsJson(text: string, source: string): ParsedEvents {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new AnalyzeError(
      'EVENTS_INVALID',
      `${source}: not valid JSON; pass the output of "kubectl get events -o json"`,
      {
        cause,
      },
    );
  }
  try {
    return parseKubeletEvents(doc);
  } catch (err) {
    if (err instanceof AnalyzeError)
      throw new AnalyzeError(err.code, `${source}: ${err.message}`, { cause: err });
    throw err;
  }
}
