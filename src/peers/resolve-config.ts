import type { z } from 'zod';
import { normalizePeerUrl, peerUrl } from './membership.js';
import { PEER_DEFAULTS, type PeersConfig, type peersConfigSchema } from './config.js';

/** What the command line says about peers; every field wins over the file. */
export interface PeerFlags {
  peer?: string[];
  peerDns?: string;
  /** NAMESPACE/NAME of the headless Service. */
  peerService?: string;
  peerSelf?: string;
  peerTokenFile?: string;
  /** Bytes per second, a whole number (0: never leave a peer for being slow). */
  peerMinBytesPerSecond?: string;
}

export class PeerConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
}

/**
 * Peer sharing as the mirror will run it, or undefined when no member source is configured. The
 * token is required with any member source (a node must never be an open proxy); this node's own
 * URL defaults to http://$POD_IP:<listen port> (the downward API in the chart).
 */
export async function resolvePeersConfig(
  file: z.infer<typeof peersConfigSchema> | undefined,
  flags: PeerFlags,
  listenPort: number,
  env: NodeJS.ProcessEnv,
  read: (path: string, enc: 'utf8') => Promise<string>,
): Promise<PeersConfig | undefined> {
  const urls = [...(file?.urls ?? []), ...(flags.peer ?? [])];
  let minRate: number | undefined;
  if (flags.peerMinBytesPerSecond !== undefined) {
    if (!/^\d{1,15}$/.test(flags.peerMinBytesPerSecond))
      throw new PeerConfigError(
        `--peer-min-bytes-per-second "${flags.peerMinBytesPerSecond}" must be a whole number of bytes per second (0 turns slow-peer switching off)`,
      );
    minRate = Number(flags.peerMinBytesPerSecond);
  }
  const dns = flags.peerDns ?? file?.dns;
  let kubernetes = file?.kubernetes;
  if (flags.peerService !== undefined) {
    const m = /^([a-z0-9-]+)\/([a-z0-9-]+)$/.exec(flags.peerService);
    if (!m) throw new PeerConfigError(`--peer-service "${flags.peerService}" must be NAMESPACE/NAME`);
    kubernetes = { namespace: m[1] as string, service: m[2] as string };
  }
  if (urls.length === 0 && dns === undefined && kubernetes === undefined) {
    if (flags.peerSelf !== undefined || flags.peerTokenFile !== undefined) {
      throw new PeerConfigError(
        '--peer-self and --peer-token-file need peers: give --peer, --peer-dns or --peer-service',
      );
    }
    return undefined;
  }
  for (const u of urls) {
    try {
      normalizePeerUrl(u);
    } catch (err) {
      throw new PeerConfigError(`--peer: ${(err as Error).message}`);
    }
  }
  const selfRaw = flags.peerSelf ?? file?.self ?? (env.POD_IP ? peerUrl(env.POD_IP, listenPort) : undefined);
  if (selfRaw === undefined) {
    throw new PeerConfigError(
      "peer sharing needs this node's own peer URL: give --peer-self http://HOST:PORT (or set POD_IP)",
    );
  }
  let self: string;
  try {
    self = normalizePeerUrl(selfRaw);
  } catch (err) {
    throw new PeerConfigError(`--peer-self: ${(err as Error).message}`);
  }
  const tokenFile = flags.peerTokenFile ?? file?.tokenFile;
  let token = file?.token;
  if (tokenFile !== undefined) {
    try {
      token = (await read(tokenFile, 'utf8')).trim();
    } catch (cause) {
      throw new PeerConfigError(`peers.tokenFile: cannot read ${tokenFile}: ${(cause as Error).message}`, {
        cause,
      });
    }
  }
  if (!token || token.length < 16) {
    throw new PeerConfigError(
      'peer sharing needs a cluster token of at least 16 characters: give --peer-token-file FILE (every mirror the same)',
    );
  }
  return {
    self,
    urls,
    dns,
    kubernetes,
    token,
    fanout: file?.fanout ?? PEER_DEFAULTS.fanout,
    stallSeconds: file?.stallSeconds ?? PEER_DEFAULTS.stallSeconds,
    quarantineSeconds: file?.quarantineSeconds ?? PEER_DEFAULTS.quarantineSeconds,
    downSeconds: file?.downSeconds ?? PEER_DEFAULTS.downSeconds,
    connectTimeoutMs: file?.connectTimeoutMs ?? PEER_DEFAULTS.connectTimeoutMs,
    minBytesPerSecond: minRate ?? file?.minBytesPerSecond ?? PEER_DEFAULTS.minBytesPerSecond,
    slowWindowSeconds: file?.slowWindowSeconds ?? PEER_DEFAULTS.slowWindowSeconds,
    slowAvoidSeconds: file?.slowAvoidSeconds ?? PEER_DEFAULTS.slowAvoidSeconds,
    dnsIntervalSeconds: file?.dnsIntervalSeconds ?? PEER_DEFAULTS.dnsIntervalSeconds,
  };
}
