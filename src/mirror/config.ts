import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { peersConfigSchema, type PeersConfig } from '../peers/config.js';
import { resolvePeersConfig, type PeerFlags } from '../peers/resolve-config.js';

/** The public registries mirrored when nothing else is configured, and their API endpoints. */
export const PUBLIC_UPSTREAMS: Readonly<Record<string, string>> = {
  'docker.io': 'https://registry-1.docker.io',
  'ghcr.io': 'https://ghcr.io',
  'quay.io': 'https://quay.io',
  'registry.k8s.io': 'https://registry.k8s.io',
  'gcr.io': 'https://gcr.io',
  'nvcr.io': 'https://nvcr.io',
  'public.ecr.aws': 'https://public.ecr.aws',
};

/** Defaults in one place, units in the names. */
export const DEFAULTS = {
  listen: '127.0.0.1:5000',
  storage: './hoist-data',
  defaultUpstream: 'docker.io',
  /** How long a tag→digest mapping is trusted before a HEAD re-checks it upstream. */
  tagTtlSeconds: 300,
  /** How long to wait for an upstream's response headers. */
  upstreamHeadersTimeoutSeconds: 30,
  /**
   * A range that starts this far beyond what a cold download has received is fetched from the
   * upstream on its own rather than waiting for the download to get there (lazy pulling).
   */
  rangeAheadBytes: 4 * 1024 * 1024,
  /** Times a broken or stalled blob download is resumed (Range from the last byte) before it fails. */
  upstreamRetries: 5,
  /** A blob body that sends nothing for this long is treated as broken (and resumed). */
  upstreamStallTimeoutSeconds: 30,
  /** First retry delay; doubles per attempt (with jitter), capped by retryMaxDelayMs. Retry-After wins. */
  retryBaseDelayMs: 250,
  retryMaxDelayMs: 10_000,
  /**
   * Time a request a client waits on may spend retrying upstream 429/5xx. containerd falls back to
   * its next host on any error, so a fast error beats a slow retry.
   */
  clientRetryBudgetMs: 500,
  /**
   * Memory for response send buffers, shared by all responses (send-budget.ts): what the mirror
   * holds to send blobs stays within it whatever the number of connections.
   */
  sendBufferBytes: 16 * 1024 * 1024,
  /** A client that reads nothing of a blob body for this long is disconnected (its buffers freed). */
  sendStallTimeoutSeconds: 60,
  logLevel: 'info',
} as const;

const upstreamSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    /** A file holding the password (a mounted Secret), read at start-up. */
    passwordFile: z.string().min(1).optional(),
    /**
     * With credentials, private repositories are served only to clients the upstream accepts
     * (`verify`, the default), or to every client (`trust`: a node-local mirror whose clients
     * all may read what its credentials can). Without credentials it does not apply: private
     * repositories are fetched with each accepted client's own credentials (access-decision.ts).
     */
    clientAuth: z.enum(['verify', 'trust']).default('verify'),
  })
  .strict()
  .refine((u) => !(u.password !== undefined && u.passwordFile !== undefined), {
    message: 'give password or passwordFile, not both',
  })
  .refine((u) => u.username === undefined || u.password !== undefined || u.passwordFile !== undefined, {
    message: 'username needs a password or passwordFile',
  });

const gcSchema = z
  .object({
    /** Store size budget: above it, least-recently-used blobs are evicted down to lowBytes. */
    maxBytes: z.number().int().positive().optional(),
    lowBytes: z.number().int().nonnegative().optional(),
    /** Filesystem usage (%) above which eviction starts, like the kubelet's imageGCHighThresholdPercent. */
    highWatermarkPercent: z.number().min(1).max(100).optional(),
    lowWatermarkPercent: z.number().min(0).max(100).optional(),
    intervalSeconds: z.number().positive().default(60),
    /** Memory a download may hold for its clients once the disk is full. */
    memoryTailBytes: z
      .number()
      .int()
      .positive()
      .default(32 * 1024 * 1024),
  })
  .strict()
  .refine((g) => g.lowBytes === undefined || (g.maxBytes !== undefined && g.lowBytes < g.maxBytes), {
    message: 'lowBytes needs maxBytes and must be below it',
  })
  .refine(
    (g) =>
      g.lowWatermarkPercent === undefined ||
      (g.highWatermarkPercent !== undefined && g.lowWatermarkPercent < g.highWatermarkPercent),
    { message: 'lowWatermarkPercent needs highWatermarkPercent and must be below it' },
  );

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be HOST:PORT');

export const configSchema = z
  .object({
    listen: hostPort.default(DEFAULTS.listen),
    storage: z.string().min(1).default(DEFAULTS.storage),
    defaultUpstream: z.string().min(1).optional(),
    upstreams: z
      .record(z.string().regex(/^[A-Za-z0-9.:[\]-]+$/, 'must be a registry host'), upstreamSchema)
      .optional(),
    tagTtlSeconds: z.number().int().nonnegative().default(DEFAULTS.tagTtlSeconds),
    upstreamHeadersTimeoutSeconds: z.number().positive().default(DEFAULTS.upstreamHeadersTimeoutSeconds),
    rangeAheadBytes: z.number().int().nonnegative().default(DEFAULTS.rangeAheadBytes),
    upstreamRetries: z.number().int().min(0).max(100).default(DEFAULTS.upstreamRetries),
    upstreamStallTimeoutSeconds: z.number().positive().default(DEFAULTS.upstreamStallTimeoutSeconds),
    retryBaseDelayMs: z.number().int().nonnegative().default(DEFAULTS.retryBaseDelayMs),
    retryMaxDelayMs: z.number().int().nonnegative().default(DEFAULTS.retryMaxDelayMs),
    clientRetryBudgetMs: z.number().int().nonnegative().default(DEFAULTS.clientRetryBudgetMs),
    sendBufferBytes: z
      .number()
      .int()
      .min(64 * 1024, 'must be at least 65536 (two 32 KiB chunks)')
      .default(DEFAULTS.sendBufferBytes),
    sendStallTimeoutSeconds: z.number().positive().default(DEFAULTS.sendStallTimeoutSeconds),
    /** On SIGTERM, how long open requests and downloads may take to finish before they are aborted. */
    shutdownGraceSeconds: z.number().nonnegative().default(10),
    /** How long a client's access to a private repository, once checked upstream, is trusted. */
    accessCacheSeconds: z.number().nonnegative().default(60),
    gc: gcSchema.default({ intervalSeconds: 60, memoryTailBytes: 32 * 1024 * 1024 }),
    /** Peer sharing (docs/peers.md): the cluster-wide cache. Off unless a member source is given. */
    peers: peersConfigSchema.optional(),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default(DEFAULTS.logLevel),
  })
  .strict();

export type FileConfig = z.input<typeof configSchema>;

export interface UpstreamConfig {
  name: string;
  url: string;
  username?: string;
  password?: string;
  clientAuth?: 'verify' | 'trust';
}

export interface MirrorConfig {
  listen: { host: string; port: number };
  storage: string;
  upstreams: UpstreamConfig[];
  defaultUpstream: string;
  tagTtlSeconds: number;
  upstreamHeadersTimeoutSeconds: number;
  rangeAheadBytes: number;
  upstreamRetries: number;
  upstreamStallTimeoutSeconds: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  clientRetryBudgetMs: number;
  sendBufferBytes: number;
  sendStallTimeoutSeconds: number;
  gc: z.infer<typeof gcSchema>;
  accessCacheSeconds: number;
  shutdownGraceSeconds: number;
  logLevel: z.infer<typeof configSchema>['logLevel'];
  peers?: PeersConfig;
}

/** What the command line said; every field wins over the file. */
export interface MirrorFlags extends PeerFlags {
  config?: string;
  listen?: string;
  storage?: string;
  upstream?: string[];
  defaultUpstream?: string;
}

export async function loadMirrorConfig(flags: MirrorFlags): Promise<MirrorConfig> {
  let fromFile: unknown = {};
  if (flags.config) {
    let text: string;
    try {
      text = await readFile(flags.config, 'utf8');
    } catch (cause) {
      throw new ConfigError(`cannot read config file ${flags.config}: ${(cause as Error).message}`, {
        cause,
      });
    }
    // Loaded only for a config file: the YAML parser is a few MiB of memory a flags-only mirror never needs.
    const { parse: parseYaml } = await import('yaml');
    try {
      fromFile = parseYaml(text) ?? {};
    } catch (cause) {
      throw new ConfigError(`config file ${flags.config} is not valid YAML: ${(cause as Error).message}`, {
        cause,
      });
    }
  }
  return resolveMirrorConfig(fromFile, flags, readFile);
}

/**
 * Validates the file's contents, applies the flags over them and the defaults under them.
 * Every error names the path of the bad key (`upstreams.ghcr.io.url: must be ...`).
 */
export async function resolveMirrorConfig(
  fromFile: unknown,
  flags: MirrorFlags,
  read: (path: string, enc: 'utf8') => Promise<string> = readFile,
): Promise<MirrorConfig> {
  const parsed = configSchema.safeParse(fromFile);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.map(String).join('.') || '(top level)';
    const where = flags.config ? `config file ${flags.config}` : 'config';
    throw new ConfigError(`${where}: ${path}: ${issue?.message ?? 'invalid'}`);
  }
  const file = parsed.data;

  const upstreams = new Map<string, UpstreamConfig>();
  for (const [name, u] of Object.entries(file.upstreams ?? {})) {
    let password = u.password;
    if (u.passwordFile) {
      try {
        password = (await read(u.passwordFile, 'utf8')).replace(/\r?\n$/, '');
      } catch (cause) {
        throw new ConfigError(`upstreams.${name}.passwordFile: cannot read ${u.passwordFile}`, { cause });
      }
    }
    upstreams.set(name, {
      name,
      url: u.url,
      clientAuth: u.clientAuth,
      ...(u.username !== undefined ? { username: u.username } : {}),
      ...(password !== undefined ? { password } : {}),
    });
  }
  for (const spec of flags.upstream ?? []) {
    const eq = spec.indexOf('=');
    const name = spec.slice(0, eq);
    const url = spec.slice(eq + 1);
    if (eq <= 0 || !/^https?:\/\/[^/]/.test(url)) {
      throw new ConfigError(
        `--upstream "${spec}" must be NAME=URL, e.g. docker.io=https://registry-1.docker.io`,
      );
    }
    upstreams.set(name, { ...upstreams.get(name), name, url });
  }
  if (upstreams.size === 0) {
    for (const [name, url] of Object.entries(PUBLIC_UPSTREAMS)) upstreams.set(name, { name, url });
  }

  const defaultUpstream =
    flags.defaultUpstream ??
    file.defaultUpstream ??
    (upstreams.has(DEFAULTS.defaultUpstream) ? DEFAULTS.defaultUpstream : [...upstreams.keys()][0]);
  if (!defaultUpstream || !upstreams.has(defaultUpstream)) {
    throw new ConfigError(
      `default upstream "${defaultUpstream}" is not a configured upstream (have: ${[...upstreams.keys()].join(', ')})`,
    );
  }

  const listenSpec = flags.listen ?? file.listen;
  const listenCheck = hostPort.safeParse(listenSpec);
  if (!listenCheck.success)
    throw new ConfigError(`--listen "${listenSpec}" must be HOST:PORT, e.g. 127.0.0.1:5000`);
  const colon = listenSpec.lastIndexOf(':');
  const port = Number(listenSpec.slice(colon + 1));
  if (port > 65535) throw new ConfigError(`--listen "${listenSpec}": port must be at most 65535`);

  let peers: PeersConfig | undefined;
  try {
    peers = await resolvePeersConfig(file.peers, flags, port, process.env, read);
  } catch (err) {
    throw new ConfigError((err as Error).message, { cause: err });
  }

  return {
    ...(peers ? { peers } : {}),
    listen: { host: listenSpec.slice(0, colon).replace(/^\[|\]$/g, ''), port },
    storage: flags.storage ?? file.storage,
    upstreams: [...upstreams.values()],
    defaultUpstream,
    tagTtlSeconds: file.tagTtlSeconds,
    upstreamHeadersTimeoutSeconds: file.upstreamHeadersTimeoutSeconds,
    rangeAheadBytes: file.rangeAheadBytes,
    upstreamRetries: file.upstreamRetries,
    upstreamStallTimeoutSeconds: file.upstreamStallTimeoutSeconds,
    retryBaseDelayMs: file.retryBaseDelayMs,
    retryMaxDelayMs: file.retryMaxDelayMs,
    clientRetryBudgetMs: file.clientRetryBudgetMs,
    sendBufferBytes: file.sendBufferBytes,
    sendStallTimeoutSeconds: file.sendStallTimeoutSeconds,
    gc: file.gc,
    accessCacheSeconds: file.accessCacheSeconds,
    shutdownGraceSeconds: file.shutdownGraceSeconds,
    logLevel: file.logLevel,
  };
}
