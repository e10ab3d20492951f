import type { Registry } from 'prom-client';
import { Counter, Gauge, Histogram } from '../mirror/index.js';

/**
 * Peer sharing's metrics, on the mirror's registry. The `peer` label is bounded by the membership
 * (a node's peers), never by clients or digests.
 */
export class PeerMetrics {
  readonly peerBytes: Counter<'peer'>;
  readonly peerErrors: Counter<'peer' | 'reason'>;
  readonly peers: Gauge;
  readonly relayDepth: Histogram;
  readonly servedToPeers: Counter<'kind'>;
  readonly switches: Counter<'reason'>;
  readonly manifestBytes: Counter<'peer'>;
  readonly manifestRequests: Counter<'result'>;

  constructor(registry: Registry) {
    this.peerBytes = new Counter({
      name: 'hoist_mirror_peer_bytes_total',
      help: 'Blob bytes received from each peer mirror',
      labelNames: ['peer'] as const,
      registers: [registry],
    });
    this.peerErrors = new Counter({
      name: 'hoist_mirror_peer_errors_total',
      help: 'Failed reads from peer mirrors, by peer and reason (unreachable, timeout, stalled, digest, refused, status)',
      labelNames: ['peer', 'reason'] as const,
      registers: [registry],
    });
    this.peers = new Gauge({
      name: 'hoist_mirror_peers',
      help: 'Peer mirrors this node knows (itself not counted)',
      registers: [registry],
    });
    this.relayDepth = new Histogram({
      name: 'hoist_mirror_relay_depth',
      help: 'Depth in the relay tree at which this node was placed for a blob (1: served by the fetcher)',
      buckets: [1, 2, 3, 4, 6, 8, 12, 16, 32],
      registers: [registry],
    });
    this.switches = new Counter({
      name: 'hoist_mirror_peer_switches_total',
      help: 'Downloads that left a peer mid-body for the next source, by why: stalled (sent nothing), slow (held the whole blob but sent below peers.minBytesPerSecond), broken (the body ended early or failed)',
      labelNames: ['reason'] as const,
      registers: [registry],
    });
    // Manifests are asked of peers only while the upstream is unreachable (docs/peers.md).
    this.manifestBytes = new Counter({
      name: 'hoist_mirror_peer_manifest_bytes_total',
      help: 'Manifest bytes received from each peer mirror (verified; asked only while the upstream was unreachable)',
      labelNames: ['peer'] as const,
      registers: [registry],
    });
    this.manifestRequests = new Counter({
      name: 'hoist_mirror_peer_manifest_requests_total',
      help: 'Manifests asked of peers while the upstream was unreachable, by result: ok, miss (the peer does not hold it for that repository), digest (wrong bytes; peer quarantined), error (unreachable)',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.servedToPeers = new Counter({
      name: 'hoist_mirror_peer_requests_total',
      help: 'Requests from peers, by answer: served, relayed (sent to a relay), miss, refused (blobs); manifest, manifest-miss (manifests by digest)',
      labelNames: ['kind'] as const,
      registers: [registry],
    });
  }
}
