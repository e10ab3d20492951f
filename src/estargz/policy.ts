/**
 * Which images are worth converting to eStargz. Lazy pulling pays off for big images: a
 * container starts after the TOC and its prefetched files arrive, not after the whole image.
 * For small images it is a loss: every file read at run time costs a range request, and a plain
 * pull of a few hundred MB is already quick. The usual rule is a threshold of about 5 GB
 * (stargz-snapshotter's guidance; the guide Hoist started from says the same). Pure code.
 */

export interface ImageSizeFacts {
  /** Sum of the compressed layer sizes (what a pull downloads). */
  compressedBytes: number;
  /** Whether every layer is already eStargz (has the TOC digest annotation). */
  alreadyEstargz?: boolean;
  /** Whether any layer is zstd, which Hoist cannot convert. */
  hasZstdLayers?: boolean;
}

export interface LazyPullingPolicy {
  /** Images at least this big (compressed) are worth converting. */
  minCompressedBytes: number;
}

export const DEFAULT_LAZY_PULLING_POLICY: LazyPullingPolicy = { minCompressedBytes: 5 * 1000 ** 3 };

export interface LazyPullingVerdict {
  worth: boolean;
  reason: string;
}

function gb(bytes: number): string {
  return `${(bytes / 1000 ** 3).toFixed(1)} GB`;
}

export function worthLazyPulling(
  facts: ImageSizeFacts,
  policy: LazyPullingPolicy = DEFAULT_LAZY_PULLING_POLICY,
): LazyPullingVerdict {
  if (facts.alreadyEstargz) return { worth: false, reason: 'already eStargz' };
  if (facts.hasZstdLayers) return { worth: false, reason: 'has zstd layers, which Hoist cannot convert' };
  if (facts.compressedBytes >= policy.minCompressedBytes) {
    return {
      worth: true,
      reason: `${gb(facts.compressedBytes)} compressed, at least ${gb(policy.minCompressedBytes)}: containers start before the pull ends`,
    };
  }
  return {
    worth: false,
    reason: `${gb(facts.compressedBytes)} compressed, under ${gb(policy.minCompressedBytes)}: a full pull is quick and lazy reads would cost a range request per file`,
  };
}
