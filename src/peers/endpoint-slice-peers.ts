import type { Logger } from 'pino';
import { Informer, type KubeObject, type ListWatchClient } from '../kube/index.js';
import { peerUrl, type Membership } from './membership.js';

/** The parts of a discovery.k8s.io/v1 EndpointSlice that peer discovery reads. */
export interface EndpointSlice extends KubeObject {
  addressType?: string;
  endpoints?: Array<{ addresses?: string[]; conditions?: { ready?: boolean | null } }>;
  ports?: Array<{ name?: string | null; port?: number | null }> | null;
}

export interface EndpointSlicePeersOptions {
  namespace: string;
  /** The headless Service whose slices list the mirrors (the chart's `<release>-mirror-peers`). */
  service: string;
  /** The Service port to use, by name; the slice's only port when unset. */
  portName?: string;
  scheme?: 'http' | 'https';
  logger?: Logger;
}

/**
 * Members from the ready endpoints of a Service, through an EndpointSlice informer: a pod that is
 * not ready (starting, terminating, failing its readiness probe) is not a peer.
 */
export function watchEndpointSlicePeers(
  client: ListWatchClient,
  membership: Membership,
  options: EndpointSlicePeersOptions,
  signal: AbortSignal,
): Informer<EndpointSlice> {
  const informer = new Informer<EndpointSlice>(
    client,
    { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespace: options.namespace },
    {
      labelSelector: `kubernetes.io/service-name=${options.service}`,
      ...(options.logger ? { logger: options.logger } : {}),
    },
  );
  const source = `endpointslices:${options.namespace}/${options.service}`;
  informer.on('change', () => membership.set(source, readyPeers(informer.list(), options)));
  informer.start(signal);
  return informer;
}

/** Peer URLs of every ready endpoint in `slices`. */
export function readyPeers(
  slices: readonly EndpointSlice[],
  options: Pick<EndpointSlicePeersOptions, 'portName' | 'scheme'>,
): string[] {
  const out: string[] = [];
  for (const slice of slices) {
    if (slice.addressType === 'FQDN') continue;
    const ports = slice.ports ?? [];
    const port =
      options.portName === undefined
        ? ports.length === 1
          ? ports[0]
          : undefined
        : ports.find((p) => p.name === options.portName);
    if (!port?.port) continue;
    for (const ep of slice.endpoints ?? []) {
      // discovery/v1: a nil `ready` means ready.
      if (ep.conditions?.ready === false) continue;
      const address = ep.addresses?.[0];
      if (address) out.push(peerUrl(address, port.port, options.scheme));
    }
  }
  return out;
}
