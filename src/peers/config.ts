import { z } from 'zod';

/** Defaults of peer sharing (docs/peers.md), units in the names. */
export const PEER_DEFAULTS = {
  /** Peers one node serves a blob to at once; 1 makes a pipeline (each uplink carries a blob once). */
  fanout: 1,
  /** No byte from a peer for this long and it is abandoned. */
  stallSeconds: 2,
  /** A peer whose bytes failed a digest, or that stalled, is avoided this long for every blob. */
  quarantineSeconds: 60,
  /** A peer that refused a connection is skipped this long. */
  downSeconds: 5,
  /** A peer that has not accepted a connection by then is down: a miss costs milliseconds. */
  connectTimeoutMs: 500,
  /**
   * A peer that says it holds the whole blob yet sends slower than this over `slowWindowSeconds`
   * is left for the next source (0: never). 1 MB/s (8 Mbit/s) is far below any node link, so only
   * a peer in real trouble (a saturated or broken uplink, a dying disk) falls under it.
   */
  minBytesPerSecond: 1_000_000,
  /** The window the rate of a peer is measured over; long enough that one TCP hiccup does not decide. */
  slowWindowSeconds: 5,
  /** A peer left for being slow is not asked again for this long (for every blob). */
  slowAvoidSeconds: 30,
  dnsIntervalSeconds: 30,
} as const;

const peerUrl = z.url({
  protocol: /^https?$/,
  error: 'must be an http:// or https:// URL (http://HOST:PORT)',
});

export const peersConfigSchema = z
  .object({
    /** This node's own peer URL, as the others reach it. Default: http://$POD_IP:<listen port>. */
    self: peerUrl.optional(),
    /** Static members. */
    urls: z.array(peerUrl).optional(),
    /** A DNS name (NAME:PORT) whose A/AAAA records are the members, re-resolved on a timer. */
    dns: z
      .string()
      .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be NAME:PORT')
      .optional(),
    /** The ready endpoints of a Service (the chart's headless `<release>-mirror-peers`). */
    kubernetes: z
      .object({
        namespace: z.string().min(1),
        service: z.string().min(1),
        portName: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    /** The cluster token every mirror shares (a mounted Secret). Required with any member source. */
    tokenFile: z.string().min(1).optional(),
    token: z.string().min(16, 'must be at least 16 characters').optional(),
    fanout: z.number().int().min(1).max(64).default(PEER_DEFAULTS.fanout),
    stallSeconds: z.number().positive().default(PEER_DEFAULTS.stallSeconds),
    quarantineSeconds: z.number().nonnegative().default(PEER_DEFAULTS.quarantineSeconds),
    downSeconds: z.number().nonnegative().default(PEER_DEFAULTS.downSeconds),
    connectTimeoutMs: z.number().int().positive().default(PEER_DEFAULTS.connectTimeoutMs),
    minBytesPerSecond: z.number().int().nonnegative().default(PEER_DEFAULTS.minBytesPerSecond),
    slowWindowSeconds: z.number().positive().default(PEER_DEFAULTS.slowWindowSeconds),
    slowAvoidSeconds: z.number().nonnegative().default(PEER_DEFAULTS.slowAvoidSeconds),
    dnsIntervalSeconds: z.number().positive().default(PEER_DEFAULTS.dnsIntervalSeconds),
  })
  .strict()
  .refine((p) => !(p.token !== undefined && p.tokenFile !== undefined), {
    message: 'give token or tokenFile, not both',
  });

export type PeersFileConfig = z.input<typeof peersConfigSchema>;

/** Peer sharing as the mirror runs it: the token read, self resolved. */
export interface PeersConfig {
  self: string;
  urls: string[];
  dns: string | undefined;
  kubernetes: { namespace: string; service: string; portName?: string } | undefined;
  token: string;
  fanout: number;
  stallSeconds: number;
  quarantineSeconds: number;
  downSeconds: number;
  connectTimeoutMs: number;
  minBytesPerSecond: number;
  slowWindowSeconds: number;
  slowAvoidSeconds: number;
  dnsIntervalSeconds: number;
}
