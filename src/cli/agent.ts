import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { pino } from 'pino';
import {
  Agent,
  kubeMirroredRegistriesMarker,
  kubeNodePullApi,
  MIRROR_REPORT_DEFAULTS,
  parseMirrorMetricsTarget,
  type MirrorMetricsTarget,
  parseHighWaterMark,
  parseImagesFile,
  type AgentClusterOptions,
  type AgentNodeConfig,
} from '../agent/index.js';
import { ContainerdImages, CriClient, ImagePins, resolveRuntimeSocket } from '../cri/index.js';
import { KubeClient, loadKubeConfig } from '../kube/index.js';
import { parseMirrorUrl, parseRegistryList } from '../node/index.js';
import { PUBLIC_UPSTREAMS } from '../mirror/index.js';
import {
  asUsage,
  authFileAlias,
  authfileFlag,
  authfileFlagName,
  authfileOption,
  type AuthfileFlags,
  DEFAULT_CERTS_DIR,
  DEFAULT_CONTAINERD_CONFIG,
  parseMark,
  readAuthFile,
} from './node.js';
import { listenFailure, printListening } from './listening.js';
import { UsageError } from './usage-error.js';

const DEFAULT_LISTEN = '127.0.0.1:5010';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

interface AgentFlags extends AuthfileFlags {
  runtimeEndpoint?: string;
  listen: string;
  mirror?: string;
  registries: string;
  certsDir: string;
  containerdConfig: string;
  concurrency: string;
  diskHighWater: string;
  imagesFile?: string;
  image?: string[];
  logLevel: string;
  nodeName?: string;
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  namespace?: string;
  pinBudgetBytes: string;
  mirrorMetrics?: string;
  mirrorMetricsIntervalSeconds: string;
}

/** The namespace of mirrored pull secrets when --namespace is not given (docs/prepull.md). */
const DEFAULT_NAMESPACE = 'hoist-system';

/** `--pin-budget-bytes`: a size (50GiB, 1e10, 500MB) or "unlimited"; undefined for unlimited. */
function parsePinBudget(value: string): number | undefined {
  const v = value.trim().toLowerCase();
  if (v === 'unlimited' || v === 'none') return undefined;
  let mark;
  try {
    mark = parseHighWaterMark(v);
  } catch {
    mark = undefined;
  }
  if (mark?.kind !== 'bytes') {
    throw new UsageError(`--pin-budget-bytes "${value}" is not a size (50GiB, 500MB, 1e10) or "unlimited"`);
  }
  return mark.bytes;
}

interface ClusterFlags {
  nodeName: string;
  mirrorMetrics?: { target: MirrorMetricsTarget; intervalMs: number };
  kubeconfig?: string;
  context?: string;
  inCluster: boolean;
  namespace?: string;
  pinBudgetBytes?: number;
}

/** Cluster mode is on with --kubeconfig or --in-cluster; it then needs a node name. */
function parseClusterFlags(opts: AgentFlags, env: NodeJS.ProcessEnv): ClusterFlags | undefined {
  const pinBudgetBytes = parsePinBudget(opts.pinBudgetBytes);
  if (opts.kubeconfig !== undefined && opts.inCluster) {
    throw new UsageError('pass either --kubeconfig or --in-cluster, not both');
  }
  const nodeName = opts.nodeName ?? env.NODE_NAME;
  const mirrorMetrics = parseMirrorMetricsFlags(opts);
  if (opts.kubeconfig === undefined && !opts.inCluster) {
    if (
      opts.nodeName !== undefined ||
      opts.namespace !== undefined ||
      opts.context !== undefined ||
      mirrorMetrics !== undefined
    ) {
      throw new UsageError(
        '--node-name, --namespace, --context and --mirror-metrics need --kubeconfig FILE or --in-cluster',
      );
    }
    return undefined;
  }
  if (!nodeName) {
    throw new UsageError(
      'cluster mode needs the node name: pass --node-name NAME or set NODE_NAME (fieldRef spec.nodeName)',
    );
  }
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(nodeName)) {
    throw new UsageError(`--node-name "${nodeName}" is not a Kubernetes node name`);
  }
  return {
    nodeName,
    inCluster: opts.inCluster === true,
    ...(opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : {}),
    ...(opts.context !== undefined ? { context: opts.context } : {}),
    ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
    ...(pinBudgetBytes !== undefined ? { pinBudgetBytes } : {}),
    ...(mirrorMetrics ? { mirrorMetrics } : {}),
  };
}

/** `--mirror-metrics` and its interval; undefined when no mirror is named (or "none"). */
function parseMirrorMetricsFlags(opts: AgentFlags): ClusterFlags['mirrorMetrics'] {
  const seconds = Number(opts.mirrorMetricsIntervalSeconds);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 86_400) {
    throw new UsageError(
      `--mirror-metrics-interval-seconds must be a whole number from 1 to 86400, not "${opts.mirrorMetricsIntervalSeconds}"`,
    );
  }
  if (opts.mirrorMetrics === undefined) return undefined;
  let target;
  try {
    target = parseMirrorMetricsTarget(opts.mirrorMetrics);
  } catch (err) {
    throw new UsageError(`--mirror-metrics ${(err as Error).message}`);
  }
  return target ? { target, intervalMs: seconds * 1000 } : undefined;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** HOST:PORT on loopback only: the assignment endpoint has no authentication. */
function parseListen(value: string): { host: string; port: number } {
  const m = /^(127(?:\.\d{1,3}){3}|localhost|\[::1\]):(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port > 65535) {
    throw new UsageError(
      `--listen "${value}" must be a loopback HOST:PORT such as 127.0.0.1:5010 (the agent's API takes assignments without authentication)`,
    );
  }
  return { host: m[1] === '[::1]' ? '::1' : m[1]!, port };
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the node agent: apply the containerd mirror config, then pull assigned images over CRI')
    .option(
      '--runtime-endpoint <endpoint>',
      'CRI socket, e.g. unix:///run/containerd/containerd.sock (default: the first that exists)',
    )
    .option(
      '--listen <host:port>',
      'loopback address of the agent API, /metrics, /healthz, /readyz',
      DEFAULT_LISTEN,
    )
    .option(
      '--mirror <url>',
      'the Hoist mirror to configure containerd with at start (omit to leave hosts.toml alone)',
    )
    .option(
      '--registries <list>',
      'registries to send through the mirror, comma-separated; NAME=URL sets the origin',
      Object.keys(PUBLIC_UPSTREAMS).join(','),
    )
    .option('--certs-dir <dir>', "containerd's registry config_path", DEFAULT_CERTS_DIR)
    .option(
      '--containerd-config <file>',
      "containerd's config.toml, checked for config_path",
      DEFAULT_CONTAINERD_CONFIG,
    )
    .option('--concurrency <n>', 'images pulled at a time', '2')
    .option(
      '--disk-high-water <mark>',
      "refuse a pull when the image filesystem is at this, or the image's estimated size would take it past: 85%, 40GiB, or none",
      '85%',
    )
    .addOption(authfileOption())
    .addOption(authFileAlias())
    .option('--images-file <file>', 'images to pull at start, one reference per line (# comments)')
    .option('--image <ref>', 'an image to pull at start; repeatable', collect)
    .option('--log-level <level>', `one of ${LOG_LEVELS.join(', ')}`, 'info')
    .option(
      '--node-name <name>',
      "cluster mode: this node's name, whose NodePull the agent follows (default: $NODE_NAME)",
    )
    .option('--kubeconfig <file>', 'cluster mode: reach the Kubernetes API with this kubeconfig')
    .option('--context <name>', "the kubeconfig context (default: the file's current-context)")
    .option('--in-cluster', "cluster mode: reach the Kubernetes API with the pod's service account")
    .option(
      '--namespace <ns>',
      `where the mirrored pull secrets live (default: the pod's namespace with --in-cluster, the kubeconfig context's when set, else ${DEFAULT_NAMESPACE})`,
    )
    .option(
      '--pin-budget-bytes <size>',
      'most bytes of images Hoist pins on this node (50GiB, 1e10); images past it are not pinned',
      'unlimited',
    )
    .option(
      '--mirror-metrics <url>',
      "cluster mode: the node mirror whose /metrics figures go into the NodePull status (http://HOST:PORT, or unix:///PATH for the mirror's --metrics-socket)",
    )
    .option(
      '--mirror-metrics-interval-seconds <n>',
      'how often the mirror figures are read; status changes only when they did',
      String(MIRROR_REPORT_DEFAULTS.intervalMs / 1000),
    )
    .addHelpText(
      'after',
      `
API (loopback): POST /v1/pulls {"images": [...]} assigns images; GET /v1/images reports each one
as pending, pulling, present or failed (with the reason); GET /metrics, /healthz, /readyz.
stdout gets one line, "listening on http://HOST:PORT", once the API accepts requests.

Cluster mode (--kubeconfig or --in-cluster, with --node-name): the agent watches the NodePull named
after its node (prepull.hoist.dev/v1alpha1), pulls its images with their pull secrets, retries,
pins, and writes the NodePull status; /readyz answers 200 once the NodePull has been listed.`,
    )
    .action(async (opts: AgentFlags) => {
      const listen = parseListen(opts.listen);
      const concurrency = Number(opts.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
        throw new UsageError(`--concurrency must be a whole number from 1 to 64, not "${opts.concurrency}"`);
      }
      if (!LOG_LEVELS.includes(opts.logLevel)) {
        throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
      }
      const highWaterMark = parseMark(opts.diskHighWater);
      let node: AgentNodeConfig | undefined;
      if (opts.mirror !== undefined) {
        node = {
          mirrorUrl: asUsage(() => parseMirrorUrl(opts.mirror!)),
          registries: asUsage(() => parseRegistryList(opts.registries)),
          certsDir: opts.certsDir,
          containerdConfig: opts.containerdConfig,
        };
      }
      let fileImages: string[] = [];
      if (opts.imagesFile !== undefined) {
        const text = await readFile(opts.imagesFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
          throw new UsageError(`--images-file ${opts.imagesFile}: ${err.code ?? err.message}`);
        });
        fileImages = asUsage(() => parseImagesFile(text, opts.imagesFile!));
      }
      const flagImages = asUsage(() => parseImagesFile((opts.image ?? []).join('\n'), '--image'));
      const auth = await readAuthFile(authfileFlag(opts), authfileFlagName(opts));
      const clusterFlags = parseClusterFlags(opts, process.env);
      const kubeConfig = clusterFlags
        ? await loadKubeConfig({
            ...(clusterFlags.kubeconfig !== undefined ? { kubeconfig: clusterFlags.kubeconfig } : {}),
            ...(clusterFlags.context !== undefined ? { context: clusterFlags.context } : {}),
            inCluster: clusterFlags.inCluster,
          }).catch((err: Error) => {
            throw new UsageError(err.message, { cause: err });
          })
        : undefined;
      const socket = asUsage(() => resolveRuntimeSocket(opts.runtimeEndpoint));

      const logger = pino({ level: opts.logLevel }, pino.destination({ fd: 2, sync: false }));
      if (auth) {
        logger.info({ authFile: auth.path, registries: [...auth.registries.keys()] }, 'registry credentials');
        for (const skipped of auth.skipped)
          logger.warn({ authFile: auth.path }, `credentials skipped: ${skipped}`);
      }
      let kube: KubeClient | undefined;
      let images: ContainerdImages | undefined;
      let cluster: AgentClusterOptions | undefined;
      if (clusterFlags && kubeConfig) {
        const config = kubeConfig;
        // A kubeconfig context that names no namespace says "default", which is no place for
        // Hoist's secrets; the pod's own namespace is the natural one in cluster.
        const fromConfig =
          clusterFlags.inCluster || (config.namespace && config.namespace !== 'default')
            ? config.namespace
            : undefined;
        const namespace = clusterFlags.namespace ?? fromConfig ?? DEFAULT_NAMESPACE;
        kube = new KubeClient(config, { userAgent: 'hoist-agent' });
        images = new ContainerdImages({ socket });
        cluster = {
          nodeName: clusterFlags.nodeName,
          namespace,
          api: kubeNodePullApi({
            client: kube,
            nodeName: clusterFlags.nodeName,
            namespace,
            logger: logger.child({ module: 'kube' }),
          }),
          pins: new ImagePins(images),
          markMirrored: kubeMirroredRegistriesMarker(kube, clusterFlags.nodeName),
          ...(clusterFlags.mirrorMetrics ? { mirrorMetrics: clusterFlags.mirrorMetrics } : {}),
          ...(clusterFlags.pinBudgetBytes !== undefined
            ? { pinBudgetBytes: clusterFlags.pinBudgetBytes }
            : {}),
        };
        logger.info(
          {
            node: cluster.nodeName,
            namespace,
            server: config.server,
            pinBudgetBytes: cluster.pinBudgetBytes,
          },
          'cluster mode',
        );
      }
      const closeCluster = () => {
        images?.close();
        kube?.close();
      };
      const agent = new Agent({
        cri: new CriClient({ socket }),
        listen,
        concurrency,
        logger,
        ...(highWaterMark ? { highWaterMark } : {}),
        ...(node ? { node } : {}),
        hosts: { certsDir: opts.certsDir },
        ...(auth ? { auth } : {}),
        ...(cluster ? { cluster } : {}),
      });
      let address;
      try {
        address = await agent.start();
      } catch (err) {
        await agent.close();
        closeCluster();
        throw listenFailure(err, opts.listen);
      }
      // Signal handlers before the line that says the agent is up (as in `hoist mirror`): a
      // supervisor that stops it as soon as it reads that line gets a clean shutdown.
      const stopped = new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'shutting down');
          agent.close().finally(closeCluster).then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      printListening(address);
      if (fileImages.length > 0) agent.assign(fileImages, `file:${opts.imagesFile}`);
      if (flagImages.length > 0) agent.assign(flagImages, 'flag');
      await stopped;
    });
}
