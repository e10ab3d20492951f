import type { Logger } from 'pino';
import type { Credentials } from '../registry-client/index.js';
import type { DigestResolver } from './digest-resolver.js';
import type { Tally } from './errors.js';
import type { ControllerMetrics } from './metrics.js';
import type { PrePullInput, Resolution, RunResult } from './plan.js';
import { runDue } from './runs.js';
import type { MirrorState, PullSecretMirror } from './secret-mirror.js';
import { prePullKey } from './types.js';

/**
 * The I/O half of runs.ts: resolves the tags of the runs that are due, with the PrePull's
 * mirrored credentials, a bounded number of registry requests at a time and each image once per
 * pass. A run's results are kept until the status shows it (so a lagging cache does not resolve
 * twice); images that failed for a passing reason (registry down, rate limited) are retried with
 * a backoff between runs.
 */

interface RunState {
  token: string;
  result: RunResult;
  /** Images whose resolution failed for a reason that may pass. */
  retryImages: string[];
  retryAt: number;
  attempt: number;
}

export interface TagRunsOptions {
  resolver: Pick<DigestResolver, 'resolve'>;
  log: Logger;
  metrics?: ControllerMetrics;
  /** Registry requests in flight at once. */
  concurrency?: number;
}

const RESOLVE_RETRY_BASE_MS = 30_000;
const RESOLVE_RETRY_MAX_MS = 600_000;
/** Resolution errors that may pass (registry-client UpstreamError codes). */
const TRANSIENT = /^(UPSTREAM_UNAVAILABLE|UPSTREAM_TIMEOUT|TOOMANYREQUESTS|UPSTREAM_BAD_RESPONSE):/;

export class TagRuns {
  private readonly runs = new Map<string, RunState>();

  constructor(private readonly opts: TagRunsOptions) {}

  /** Drops the state of PrePulls that are gone. */
  forget(keys: ReadonlySet<string>): void {
    for (const key of this.runs.keys()) if (!keys.has(key)) this.runs.delete(key);
  }

  /** Resolves the tags of due runs (and retries transient failures); results by PrePull key. */
  async resolveDue(
    inputs: readonly PrePullInput[],
    mirrors: PullSecretMirror,
    now: number,
    result: Tally,
    signal: AbortSignal,
  ): Promise<Map<string, RunResult>> {
    const out = new Map<string, RunResult>();
    const cache = new Map<string, Promise<Resolution>>();
    let inFlight = 0;
    const waiting: Array<() => void> = [];
    const limit = this.opts.concurrency ?? 8;
    const resolve = (image: string, credentials: ReadonlyMap<string, Credentials>, credKey: string) => {
      const k = `${image}\0${credKey}`;
      let p = cache.get(k);
      if (p === undefined) {
        p = (async () => {
          while (inFlight >= limit) await new Promise<void>((r) => waiting.push(r));
          inFlight++;
          try {
            const r = await this.opts.resolver.resolve(image, credentials, signal);
            this.opts.metrics?.resolutions.inc({ result: r.digest ? 'ok' : 'error' });
            return r;
          } finally {
            inFlight--;
            waiting.shift()?.();
          }
        })();
        cache.set(k, p);
      }
      return p;
    };
    const resolveAll = async (images: readonly string[], mirror: MirrorState | undefined) => {
      const credKey = mirror?.secretName ?? '';
      const credentials = mirror?.credentials ?? new Map<string, Credentials>();
      const entries = await Promise.all(
        images.map(async (i) => [i, await resolve(i, credentials, credKey)] as const),
      );
      return new Map(entries);
    };

    await Promise.all(
      inputs.map(async ({ object, parsed }) => {
        const key = prePullKey(object.metadata);
        const mirror = mirrors.get(key);
        // Resolving without credentials that exist but could not be read would record a false 401.
        if (parsed.ok && parsed.spec.imagePullSecrets.length > 0 && mirror?.ok !== true) return;
        const req = runDue(object, parsed, new Date(now));
        const state = this.runs.get(key);
        if (req !== undefined) {
          if (state?.token === req.token) {
            out.set(key, state.result);
            return;
          }
          const images = await resolveAll(req.images, mirror);
          if (signal.aborted) return;
          const runResult: RunResult = { ...(req.runTime ? { runTime: req.runTime } : {}), images };
          const retryImages = [...images]
            .filter(([, r]) => TRANSIENT.test(r.resolveError ?? ''))
            .map(([i]) => i);
          this.runs.set(key, {
            token: req.token,
            result: runResult,
            retryImages,
            retryAt: now + RESOLVE_RETRY_BASE_MS,
            attempt: 1,
          });
          out.set(key, runResult);
          if (req.images.length > 0) {
            this.opts.log.info(
              {
                prepull: key,
                reason: req.reason,
                images: req.images.length,
                unresolved: [...images.values()].filter((r) => !r.digest).length,
              },
              'tags resolved',
            );
          }
          return;
        }
        if (
          state !== undefined &&
          state.retryImages.length > 0 &&
          now >= state.retryAt &&
          parsed.ok &&
          !parsed.spec.suspend
        ) {
          const still = state.retryImages.filter((i) => parsed.spec.images.includes(i));
          const images = await resolveAll(still, mirror);
          if (signal.aborted) return;
          state.retryImages = [...images]
            .filter(([, r]) => TRANSIENT.test(r.resolveError ?? ''))
            .map(([i]) => i);
          state.attempt++;
          state.retryAt =
            now + Math.min(RESOLVE_RETRY_MAX_MS, RESOLVE_RETRY_BASE_MS * 2 ** (state.attempt - 1));
          out.set(key, { images });
        }
      }),
    );
    if (signal.aborted) result.errors++;
    return out;
  }
}
