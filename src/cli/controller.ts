import { hostname } from 'node:os';
import type { Command } from 'commander';
import { pino } from 'pino';
import { Dashboard, startMirrorCache } from '../dashboard/index.js';
import { KubeClient, KubeConfigError, loadKubeConfig } from '../kube/index.js';
import { PUBLIC_UPSTREAMS } from '../mirror/index.js';
import {
  ControllerMetrics,
  createControllerServer,
  DigestResolver,
  listen,
  PrePullController,
} from '../prepull/index.js';
import { PullTelemetry } from '../telemetry/index.js';
import { listenFailure, printListening } from './listening.js';
import { UsageError } from './usage-error.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** Defaults in one place, units in the names. */
const DEFAULTS = {
  listen: '0.0.0.0:8080',
  namespace: 'hoist-system',
  leaseName: 'hoist-controller',
  resyncSeconds: 300,
  agentTimeoutSeconds: 300,
} as const;

interface ControllerFlags {
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  namespace?: string;
  leaseName: string;
  identity?: string;
  resyncSeconds: string;
  agentTimeoutSeconds: string;
  listen: string;
  plainHttp?: string[];
  pullTelemetry: boolean;
  telemetryRegistries?: string;
  mirrorService?: string;
  logLevel: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function parseListen(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new UsageError(`--listen "${value}" must be HOST:PORT, e.g. 0.0.0.0:8080`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** `--telemetry-registries`: comma-separated registry hosts (host or host:port). */
function parseRegistryHosts(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const hosts = value
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  for (const h of hosts) {
    if (!/^[a-z0-9.-]+(:\d{1,5})?$/.test(h))
      throw new UsageError(
        `--telemetry-registries: "${h}" is not a registry host; give hosts like docker.io,ghcr.io,registry.example.com:5000`,
      );
  }
  return hosts;
}

export function registerController(program: Command): void {
  program
    .command('controller')
    .description(
      'run the PrePull controller: turn PrePull resources into staggered per-node pulls (NodePulls), with status',
    )
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else in-cluster)')
    .option('--context <name>', 'kubeconfig context (default: its current-context)')
    .option('--in-cluster', "use the pod's service account")
    .option(
      '--namespace <ns>',
      `the controller's own namespace, for its Lease and mirrored pull secrets (default: the pod's or the context's, else ${DEFAULTS.namespace})`,
    )
    .option('--lease-name <name>', 'name of the leader-election Lease', DEFAULTS.leaseName)
    .option('--identity <id>', 'this replica in the Lease (default: hostname_pid)')
    .option(
      '--resync-seconds <n>',
      'reconcile (and re-read pull secrets) at least this often',
      String(DEFAULTS.resyncSeconds),
    )
    .option(
      '--agent-timeout-seconds <n>',
      'a node whose agent has not reported for this long while it has images to pull counts as failed (AgentUnavailable) and frees its stagger slot; the agent renews its heartbeat every minute',
      String(DEFAULTS.agentTimeoutSeconds),
    )
    .option(
      '--listen <host:port>',
      'address for the dashboard (/), /metrics, /healthz, /readyz',
      DEFAULTS.listen,
    )
    .option(
      '--plain-http <registry>',
      'reach this registry over http when resolving tags (loopback ones always are); repeatable',
      collect,
    )
    .option(
      '--no-pull-telemetry',
      "don't watch the kubelet's pull events (no hoist_image_pull_* metrics, no recent pulls)",
    )
    .option(
      '--telemetry-registries <list>',
      'registry hosts that get their own value of the registry label of hoist_image_pull_duration_seconds, comma-separated; others are "other" (default: the public registries the mirror knows)',
    )
    .option(
      '--mirror-service <name>',
      "the mirrors' Service in --namespace: the dashboard reads each ready endpoint's /metrics every 15 s for per-node cache use",
    )
    .option('--log-level <level>', `one of ${LOG_LEVELS.join(', ')}`, 'info')
    .addHelpText(
      'after',
      `
One replica leads (a coordination.k8s.io Lease in --namespace); the others wait. The leader watches
PrePulls (all namespaces), Nodes and NodePulls, resolves tags to digests with each PrePull's pull
secrets, writes one NodePull per node and PrePull status. See docs/prepull.md. The leader also
watches the kubelet's pull events (Pulled, Failed, BackOff) and exports hoist_image_pull_* metrics
(README "Pull telemetry").
stdout gets one line, "listening on http://HOST:PORT", once /healthz answers.`,
    )
    .action(async (opts: ControllerFlags) => {
      const listenAt = parseListen(opts.listen);
      const resyncSeconds = Number(opts.resyncSeconds);
      if (!Number.isInteger(resyncSeconds) || resyncSeconds < 1 || resyncSeconds > 86_400) {
        throw new UsageError(
          `--resync-seconds must be a whole number from 1 to 86400, not "${opts.resyncSeconds}"`,
        );
      }
      const agentTimeoutSeconds = Number(opts.agentTimeoutSeconds);
      if (
        !Number.isInteger(agentTimeoutSeconds) ||
        agentTimeoutSeconds < 90 ||
        agentTimeoutSeconds > 86_400
      ) {
        throw new UsageError(
          `--agent-timeout-seconds must be a whole number from 90 to 86400 (agents report every 60 s), not "${opts.agentTimeoutSeconds}"`,
        );
      }
      if (
        opts.mirrorService !== undefined &&
        !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(opts.mirrorService)
      )
        throw new UsageError(
          `--mirror-service "${opts.mirrorService}" must be a Service name (a DNS label, e.g. hoist-mirror-peers)`,
        );
      if (!LOG_LEVELS.includes(opts.logLevel))
        throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
      const telemetryRegistries = parseRegistryHosts(opts.telemetryRegistries);
      let config;
      try {
        config = await loadKubeConfig({
          ...(opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : {}),
          ...(opts.context !== undefined ? { context: opts.context } : {}),
          ...(opts.inCluster ? { inCluster: true } : {}),
        });
      } catch (err) {
        if (err instanceof KubeConfigError)
          throw new UsageError(`${err.message}; give --kubeconfig FILE or --in-cluster`);
        throw err;
      }
      const namespace = opts.namespace ?? config.namespace ?? DEFAULTS.namespace;
      const identity = opts.identity ?? `${hostname()}_${process.pid}`;
      const logger = pino({ level: opts.logLevel }, pino.destination({ fd: 2, sync: false }));
      const client = new KubeClient(config, { userAgent: 'hoist-controller' });
      const metrics = new ControllerMetrics();
      const telemetry = opts.pullTelemetry
        ? new PullTelemetry({
            client,
            registry: metrics.registry,
            logger,
            registries: telemetryRegistries ?? Object.keys(PUBLIC_UPSTREAMS),
          })
        : undefined;
      const controller = new PrePullController({
        client,
        namespace,
        leaseName: opts.leaseName,
        identity,
        resyncSeconds,
        agentTimeoutSeconds,
        logger,
        metrics,
        resolver: new DigestResolver({ plainHttp: opts.plainHttp ?? [] }),
        // Leader only: every replica counting the same events would double Prometheus sums.
        ...(telemetry ? { whileLeading: [(signal: AbortSignal) => telemetry.start(signal)] } : {}),
      });
      const stop = new AbortController();
      const cache =
        opts.mirrorService !== undefined
          ? startMirrorCache({ client, namespace, service: opts.mirrorService, signal: stop.signal, logger })
          : undefined;
      // Every replica serves the dashboard (its own informers), leader or standby.
      const dashboard = new Dashboard({
        client,
        identity,
        isLeader: () => controller.isLeader,
        logger,
        ...(cache ? { cache } : {}),
        // Filled on the leader (telemetry runs there); a standby's pull sections say "no data yet".
        ...(telemetry ? { telemetry } : {}),
      });
      const server = createControllerServer({
        metrics,
        ready: () => controller.ready,
        routes: (req, res, url) => dashboard.handle(req, res, url),
      });
      let address;
      try {
        address = await listen(server, listenAt.host, listenAt.port);
      } catch (err) {
        stop.abort();
        client.close();
        throw listenFailure(err, opts.listen);
      }
      // Signal handlers before the line that says the controller is up (as in `hoist mirror`).
      const onSignal = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        stop.abort();
      };
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      process.once('SIGINT', () => onSignal('SIGINT'));
      printListening(address);
      logger.info(
        { namespace, identity, lease: opts.leaseName, server: config.server },
        'controller starting',
      );
      dashboard.start(stop.signal);
      try {
        // Gives up the Lease on the way out, so another replica takes over at once.
        await controller.run(stop.signal);
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        client.close();
        logger.flush();
      }
    });
}
