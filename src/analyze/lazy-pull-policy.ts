import { DEFAULT_LAZY_PULLING_POLICY, worthLazyPulling } from '../estargz/index.js';

/**
 * Whether an image is worth pulling lazily, from the project's one policy (src/estargz/policy.ts:
 * about 5 GB compressed; below it a plain pull is quick and lazy reads cost a range request per
 * file). `recommended`: the image should be pulled lazily; `convert`: it still has to be converted
 * to eStargz for that. Pure.
 */

export const LAZY_PULL_MIN_BYTES = DEFAULT_LAZY_PULLING_POLICY.minCompressedBytes;

/**
 * From kubelet events, lazy pulling is advised only when the image's slow pulls (p90) took at
 * least this long: it saves the wait for the pull and costs a range request per file read at run
 * time, so a big image whose pulls already end in seconds (its layers were on the node, or a
 * nearby mirror served them) has nothing to gain.
 */
export const LAZY_PULL_MIN_P90_SECONDS = 30;

/** Whether observed pulls (size as the kubelet reported it, p90 pull time) call for lazy pulling. */
export function lazyPullAdvised(bytes: number | null, p90Seconds: number): boolean {
  return bytes !== null && bytes >= LAZY_PULL_MIN_BYTES && p90Seconds >= LAZY_PULL_MIN_P90_SECONDS;
}

export interface LazyPullDecision {
  recommended: boolean;
  convert: boolean;
  reason: string;
}

/** `bytes` is the compressed size a node downloads. */
export function lazyPullDecision(bytes: number, alreadyEstargz = false): LazyPullDecision {
  const big = bytes >= LAZY_PULL_MIN_BYTES;
  const verdict = worthLazyPulling({ compressedBytes: bytes, alreadyEstargz });
  if (alreadyEstargz) {
    return {
      recommended: big,
      convert: false,
      reason: big
        ? 'already eStargz: lazy-pullable'
        : 'eStargz but under 5 GB: a full pull is quicker than lazy reads',
    };
  }
  return { recommended: big, convert: verdict.worth, reason: verdict.reason };
}
