export { PeerNetwork, type PeerNetworkOptions, type PeerStatus } from './peer-network.js';
export { PeerSource, type BlobSourceLike } from './peer-source.js';
export { PEER_HEADERS, PEER_PATH_PREFIX, PeerClient } from './peer-client.js';
export { peersConfigSchema, PEER_DEFAULTS, type PeersConfig, type PeersFileConfig } from './config.js';
export { Membership, normalizePeerUrl, peerUrl } from './membership.js';
export { rankPeers, fetcherFor } from './rendezvous.js';
export { RelayBoard, type Assignment } from './relay-board.js';
export { PeerError } from './errors.js';
export { resolvePeersConfig, PeerConfigError, type PeerFlags } from './resolve-config.js';
