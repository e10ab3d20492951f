import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { CriClient, RegistryAuth, RuntimeVersion } from '../cri/index.js';
import {
  checkContainerdConfig,
  configureHosts,
  type AuthFile,
  type ConfigPathCheck,
  type FileResult,
  type RegistryTarget,
} from '../node/index.js';
import { Backoff, sleep } from '../kube/index.js';
import { parseImageReference } from '../oci/index.js';
import { DiskGuard } from './disk-guard.js';
import type { HighWaterMark } from './disk-mark.js';
import { AgentMetrics } from './metrics.js';
import {
  MirrorReporter,
  readMirrorMetrics,
  MIRROR_REPORT_DEFAULTS,
  type MirrorMetricsTarget,
} from './mirror-report.js';
import type { MirroredRegistriesMarker } from './node-annotation.js';
import { NodePullSync, type NodePullApi, type PinPort } from './node-pull-sync.js';
import { ProgressWatchdog } from './progress-watchdog.js';
import { PullQueue, type ImageRuntime } from './pull-queue.js';
import { PullSecrets } from './pull-secrets.js';
import { createAgentServer, listen } from './server.js';

/** Cluster mode: the node's NodePull drives the queue, and its status reports back. */
export interface AgentClusterOptions {
  nodeName: string;
  /** Where the mirrored pull secrets live. */
  namespace: string;
  api: NodePullApi;
  /** containerd's image labels; without them pin requests are reported as not pinned. */
  pins?: PinPort;
  /** Total size of the images Hoist pins on this node; undefined: no limit. */
  pinBudgetBytes?: number;
  /**
   * Marks the Node with the registries its hosts.toml sends through the mirror, for the
   * controller's pull telemetry (README "Pull telemetry"); retried until it succeeds.
   */
  markMirrored?: MirroredRegistriesMarker;
  /**
   * The node's mirror, whose /metrics figures go into status.mirror (README "Dashboard"), read
   * every `intervalMs` (default 30 s); undefined: no figures.
   */
  mirrorMetrics?: { target: MirrorMetricsTarget; intervalMs?: number };
}

export interface AgentNodeConfig {
  mirrorUrl: string;
  registries: RegistryTarget[];
  certsDir: string;
  /** containerd's config.toml, checked for config_path. */
  containerdConfig: string;
}

export interface AgentOptions {
  cri: CriClient;
  listen: { host: string; port: number };
  /** Pulls at a time. */
  concurrency: number;
  highWaterMark?: HighWaterMark;
  /** The containerd mirror configuration to apply at start; undefined leaves it alone. */
  node?: AgentNodeConfig;
  /**
   * Where the runtime finds registries (containerd's config_path, overridden by `node.certsDir`),
   * so that size estimates go through the same hosts; `mirrorUrl` is tried first for every image.
   */
  hosts?: { certsDir: string; mirrorUrl?: string };
  /** Registry credentials, for CRI PullImage and for the size estimate. */
  auth?: AuthFile;
  cluster?: AgentClusterOptions;
  logger: Logger;
}

/**
 * The node agent: applies the containerd mirror configuration, then pulls the images assigned to
 * this node through CRI with a bounded number at a time, and serves its state over loopback HTTP.
 */
export class Agent {
  readonly metrics = new AgentMetrics();
  readonly queue: PullQueue;
  readonly nodePulls: NodePullSync | undefined;
  private readonly pullSecrets: PullSecrets | undefined;
  private readonly watchdog: ProgressWatchdog;
  private readonly mirrorReporter: MirrorReporter | undefined;
  private readonly watchAbort = new AbortController();
  private readonly server: Server;
  private readonly opts: AgentOptions;
  private ready: string | undefined = 'starting';
  runtimeVersion: RuntimeVersion | undefined;
  configCheck: ConfigPathCheck | undefined;
  configured: FileResult[] = [];

  constructor(opts: AgentOptions) {
    this.opts = opts;
    const { cri } = opts;
    const runtime: ImageRuntime = {
      status: async (image) => {
        const found = await cri.imageStatus(image);
        return found ? { id: found.id, size: found.size, repoDigests: found.repoDigests } : undefined;
      },
      pull: async (image, signal) => {
        const auth = await this.credentialsFor(image);
        return cri.pullImage(image, { signal, ...(auth ? { auth } : {}) });
      },
    };
    const { cluster } = opts;
    if (cluster) {
      this.pullSecrets = new PullSecrets({
        namespace: cluster.namespace,
        read: (name) => cluster.api.readSecret(name),
      });
    }
    this.watchdog = new ProgressWatchdog({
      sample: () => cri.ingestStatuses(),
      onSampleError: (err) =>
        opts.logger.warn(
          { err: (err as Error).message },
          'cannot read the runtime content ingests: pulls are not timed out for lack of progress',
        ),
    });
    this.queue = new PullQueue({
      runtime,
      concurrency: opts.concurrency,
      metrics: this.metrics,
      stallWatch: this.watchdog,
      logger: opts.logger.child({ module: 'pull-queue' }),
      ...(opts.highWaterMark ? { guard: this.diskGuard(opts.highWaterMark).check } : {}),
    });
    this.nodePulls = cluster
      ? new NodePullSync({
          nodeName: cluster.nodeName,
          queue: this.queue,
          defaultConcurrency: opts.concurrency,
          writeStatus: (status) => cluster.api.patchStatus(status),
          criPinned: async (image) => (await cri.imageStatus(image))?.pinned ?? false,
          ...(cluster.pins ? { pins: cluster.pins } : {}),
          ...(cluster.pinBudgetBytes !== undefined ? { pinBudgetBytes: cluster.pinBudgetBytes } : {}),
          logger: opts.logger.child({ module: 'nodepull', node: cluster.nodeName }),
        })
      : undefined;
    const mirrorMetrics = cluster?.mirrorMetrics;
    const sync = this.nodePulls;
    this.mirrorReporter =
      mirrorMetrics && sync
        ? new MirrorReporter({
            read: () => readMirrorMetrics(mirrorMetrics.target, MIRROR_REPORT_DEFAULTS),
            onFigures: (status) => sync.setMirror(status),
            intervalMs: mirrorMetrics.intervalMs ?? MIRROR_REPORT_DEFAULTS.intervalMs,
            logger: opts.logger.child({ module: 'mirror-report' }),
          })
        : undefined;
    this.server = createAgentServer({
      queue: this.queue,
      metrics: this.metrics,
      notReadyReason: () => this.ready,
    });
  }

  /**
   * Credentials for the image's registry, as a CRI AuthConfig without server_address (as the
   * kubelet sends them): containerd answers any host's challenge with them. A NodePull entry's
   * pull secrets first (read at each attempt, so a rotated secret is used), then the auth file.
   */
  private async credentialsFor(image: string): Promise<RegistryAuth | undefined> {
    const secrets = this.nodePulls?.pullSecretsFor(image);
    if (secrets && secrets.length > 0 && this.pullSecrets) {
      const fromSecrets = await this.pullSecrets.credentialsFor(image, secrets);
      if (fromSecrets) return fromSecrets;
    }
    const registries = this.opts.auth?.registries;
    if (!registries || registries.size === 0) return undefined;
    return registries.get(parseImageReference(image).registry);
  }

  private diskGuard(mark: HighWaterMark): DiskGuard {
    const { node, hosts, auth } = this.opts;
    const certsDir = node?.certsDir ?? hosts?.certsDir;
    // Not node.mirrorUrl: the hosts.toml written at start puts the mirror first for exactly the
    // registries it serves, and the estimate follows hosts.toml as containerd does.
    const mirrorUrl = hosts?.mirrorUrl;
    return new DiskGuard({
      mark,
      cri: this.opts.cri,
      estimator: {
        ...(certsDir ? { certsDir } : {}),
        ...(mirrorUrl ? { mirrorUrl } : {}),
        credentials: (registry: string) =>
          auth?.registries.get(registry) ?? this.pullSecrets?.cached(registry),
      },
      onReading: (reading) => this.metrics.imageFsUsedBytes.set(reading.imageFsUsedBytes),
    });
  }

  /** Applies the containerd configuration, checks the runtime, then listens. */
  async start(): Promise<AddressInfo> {
    const { logger, node, cri } = this.opts;
    if (node) {
      this.configured = await configureHosts({
        certsDir: node.certsDir,
        mirrorUrl: node.mirrorUrl,
        registries: node.registries,
      });
      for (const f of this.configured)
        logger.info({ registry: f.registry, path: f.path, action: f.action }, 'hosts.toml');
      const mark = this.opts.cluster?.markMirrored;
      if (mark) {
        const mirrored = this.configured.filter((f) => f.action !== 'removed').map((f) => f.registry);
        void this.markNode(mark, mirrored);
      }
      this.configCheck = await checkContainerdConfig(node.containerdConfig, node.certsDir);
      if (this.configCheck.status !== 'ok') {
        logger.warn(
          { configFile: this.configCheck.configFile, suggestion: this.configCheck.suggestion },
          this.configCheck.message ?? 'containerd config_path does not point at the certs dir',
        );
      }
    }
    this.runtimeVersion = await cri.version();
    logger.info({ runtime: this.runtimeVersion, endpoint: cri.endpoint }, 'container runtime');
    const address = await listen(this.server, this.opts.listen.host, this.opts.listen.port);
    const { cluster } = this.opts;
    const sync = this.nodePulls;
    if (cluster && sync) {
      // Ready once the NodePull watch has listed; an unreachable API server leaves the agent
      // serving its local API and retrying in the background.
      this.ready = 'waiting for the first list of the NodePull';
      cluster.api
        .watch((nodePull) => sync.apply(nodePull), this.watchAbort.signal)
        .then(
          () => {
            if (this.ready !== 'shutting down') this.ready = undefined;
            logger.info({ node: cluster.nodeName }, 'watching the NodePull');
            if (!this.watchAbort.signal.aborted) this.mirrorReporter?.start();
          },
          (err: unknown) => {
            if (!this.watchAbort.signal.aborted)
              logger.error({ err: (err as Error).message }, 'NodePull watch ended');
          },
        );
    } else {
      this.ready = undefined;
    }
    return address;
  }

  /** Retries with backoff until the Node is marked or the agent shuts down; never throws. */
  private async markNode(mark: MirroredRegistriesMarker, registries: string[]): Promise<void> {
    const signal = this.watchAbort.signal;
    const backoff = new Backoff({ initialMs: 1_000, maxMs: 60_000 });
    while (!signal.aborted) {
      try {
        await mark(registries);
        this.opts.logger.info({ registries }, 'node marked with its mirrored registries');
        return;
      } catch (err) {
        this.opts.logger.warn(
          { err: (err as Error).message },
          'cannot annotate the node with its mirrored registries (pull telemetry counts its pulls as direct); retrying',
        );
        await sleep(backoff.next(), signal);
      }
    }
  }

  assign(images: string[], source: string): void {
    this.queue.assign(images, source);
  }

  async close(): Promise<void> {
    this.ready = 'shutting down';
    this.watchAbort.abort(new Error('the agent is shutting down'));
    this.mirrorReporter?.stop();
    // The last status first, then cancel pulls: a restart is not a failure of the images.
    await this.nodePulls?.close();
    this.queue.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.opts.cri.close();
  }
}
