import type { Logger } from 'pino';
import { Informer, type KubeObject, type ListWatchClient } from '../kube/index.js';
import {
  MirrorScraper,
  targetsFromEndpointSlices,
  type EndpointSlice,
  type MirrorScraperOptions,
  type ScrapeTarget,
} from './mirror-scraper.js';

/**
 * The node mirrors to read, found as the ready endpoints of the chart's mirror Service (its
 * headless `-peers` Service selects every mirror pod): EndpointSlices labelled
 * `kubernetes.io/service-name` (discovery.k8s.io/v1), watched in the release namespace only
 * (RBAC: list/watch endpointslices there, src/prepull/rbac.ts).
 */
export function startMirrorCache(opts: {
  client: ListWatchClient;
  namespace: string;
  service: string;
  signal: AbortSignal;
  logger?: Logger;
  portName?: string;
  scraper?: Partial<Omit<MirrorScraperOptions, 'targets' | 'logger'>>;
  /**
   * Rewrites each target before it is read. Tests only: the API server refuses loopback
   * addresses in EndpointSlices, and tests may reach nothing but loopback.
   */
  mapTarget?: (t: ScrapeTarget) => ScrapeTarget;
}): MirrorScraper {
  const map = opts.mapTarget ?? ((t: ScrapeTarget) => t);
  const slices = new Informer<EndpointSlice & KubeObject>(
    opts.client,
    { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespace: opts.namespace },
    {
      labelSelector: `kubernetes.io/service-name=${opts.service}`,
      ...(opts.logger ? { logger: opts.logger } : {}),
    },
  );
  const scraper = new MirrorScraper({
    ...opts.scraper,
    targets: () => targetsFromEndpointSlices(slices.list(), opts.portName).map(map),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  slices.start(opts.signal);
  // The first round waits for the first list, so it does not report an empty cluster.
  slices
    .synced()
    .then(() => scraper.start(opts.signal))
    .catch(() => {}); // aborted before the first list
  return scraper;
}
