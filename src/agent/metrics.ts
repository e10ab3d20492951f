import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The kubelet's image pull duration buckets and image size labels (kubelet pkg/kubelet/metrics,
 * kubelet_image_pull_duration_seconds), so pre-pulls and kubelet pulls plot on one dashboard.
 */
export const KUBELET_IMAGE_PULL_DURATION_BUCKETS = [
  1, 5, 10, 20, 30, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600,
];

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const IMAGE_SIZE_BUCKETS: Array<[number, string]> = [
  [0, '0-10MB'],
  [10 * MiB, '10MB-100MB'],
  [100 * MiB, '100MB-500MB'],
  [500 * MiB, '500MB-1GB'],
  [1 * GiB, '1GB-5GB'],
  [5 * GiB, '5GB-10GB'],
  [10 * GiB, '10GB-20GB'],
  [20 * GiB, '20GB-30GB'],
  [30 * GiB, '30GB-40GB'],
  [40 * GiB, '40GB-60GB'],
  [60 * GiB, '60GB-100GB'],
  [100 * GiB, 'GT100GB'],
];

/** kubelet's GetImageSizeBucket: the label of the last bucket whose lower bound the size reaches. */
export function imageSizeBucket(bytes: number): string {
  let label = IMAGE_SIZE_BUCKETS[0]![1];
  for (const [lower, l] of IMAGE_SIZE_BUCKETS) if (bytes >= lower) label = l;
  return label;
}

export type PullOutcome = 'pulled' | 'already_present' | 'failed' | 'refused';

/** The agent's Prometheus metrics, on a registry of its own. */
export class AgentMetrics {
  readonly registry = new Registry();

  readonly pulls = new Counter({
    name: 'hoist_agent_pulls_total',
    help: 'Image pull assignments finished, by outcome: pulled, already_present, failed, refused (disk high-water mark)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly pullBytes = new Counter({
    name: 'hoist_agent_pull_bytes_total',
    help: 'Size of the images pulled, as the runtime reports it (ImageStatus size)',
    registers: [this.registry],
  });

  readonly pullDuration = new Histogram({
    name: 'hoist_agent_image_pull_duration_seconds',
    help: 'Duration of successful CRI PullImage calls, with the kubelet_image_pull_duration_seconds buckets and size labels',
    labelNames: ['image_size_in_bytes'] as const,
    buckets: KUBELET_IMAGE_PULL_DURATION_BUCKETS,
    registers: [this.registry],
  });

  readonly images = new Gauge({
    name: 'hoist_agent_images',
    help: 'Assigned images by state: pending, pulling, present, failed',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  readonly imageFsUsedBytes = new Gauge({
    name: 'hoist_agent_image_fs_used_bytes',
    help: 'Bytes the runtime reports its images use (CRI ImageFsInfo), at the last check',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const state of ['pending', 'pulling', 'present', 'failed']) this.images.set({ state }, 0);
  }
}
