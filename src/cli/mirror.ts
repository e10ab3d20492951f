import { access, constants } from 'node:fs/promises';
import type { Server } from 'node:http';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { pino } from 'pino';
import {
  ConfigError,
  loadMirrorConfig,
  Mirror,
  MIRROR_DEFAULTS,
  serveMetricsSocket,
  StorageLockedError,
  verifyStorage,
  VerifyError,
  type MirrorFlags,
  type VerifyReport,
} from '../mirror/index.js';
import { listenFailure, printListening } from './listening.js';
import { UsageError } from './usage-error.js';
import { registerMirrorPeers } from './mirror-peers.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerMirror(program: Command): void {
  const mirror = program
    .command('mirror')
    // `hoist mirror verify --storage DIR`: options after a subcommand's name belong to it, not to
    // `mirror` (which has a --storage of its own); `hoist mirror --listen ...` is unaffected.
    .enablePositionalOptions()
    .description('run the read-only OCI pull-through mirror for many upstream registries')
    .option('--listen <host:port>', `address to serve on (default ${MIRROR_DEFAULTS.listen})`)
    .option(
      '--storage <dir>',
      `where blobs, manifests and tags are kept (default ${MIRROR_DEFAULTS.storage})`,
    )
    .option(
      '--upstream <name=url>',
      'an upstream registry: NAME is the host as clients name it (docker.io, 127.0.0.1:6000); repeatable',
      collect,
    )
    .option('--default-upstream <name>', 'upstream for requests that name none (default docker.io)')
    .option('--config <file>', 'YAML configuration file; flags win over it')
    .option('--peer <url>', 'a peer mirror of the cluster-wide cache (http://HOST:PORT); repeatable', collect)
    .option(
      '--peer-dns <name:port>',
      'a DNS name whose addresses are the peer mirrors, re-resolved every 30 s',
    )
    .option(
      '--peer-service <namespace/name>',
      "peers are the ready endpoints of this Service (in-cluster; the chart's <release>-mirror-peers)",
    )
    .option('--peer-self <url>', "this mirror's own peer URL (default http://$POD_IP:<listen port>)")
    .option('--peer-token-file <file>', 'the cluster token every peer mirror shares (required with peers)')
    .option(
      '--peer-min-bytes-per-second <n>',
      'leave a peer that holds the whole blob but sends slower than this (default 1000000; 0: never)',
    )
    .option(
      '--metrics-socket <path>',
      "also serve GET /metrics (only that) on this unix socket, for the node agent's NodePull status",
    )
    .addHelpText(
      'after',
      `
With no upstream configured it mirrors docker.io, ghcr.io, quay.io, registry.k8s.io, gcr.io,
nvcr.io and public.ecr.aws. Logs are JSON lines on stderr; stdout gets one line,
"listening on http://HOST:PORT", once requests are accepted.`,
    )
    .action(async (opts: MirrorFlags & { metricsSocket?: string }) => {
      let config;
      try {
        config = await loadMirrorConfig(opts);
      } catch (err) {
        if (err instanceof ConfigError) throw new UsageError(err.message, { cause: err });
        throw err;
      }
      const logger = pino({ level: config.logLevel }, pino.destination({ fd: 2, sync: false }));
      const mirror = new Mirror({
        config,
        logger,
        kubeClient: async () => {
          const { KubeClient, loadKubeConfig } = await import('../kube/index.js');
          return new KubeClient(await loadKubeConfig({}));
        },
      });
      // The socket's directory is checked before the mirror starts, so that a bad path is one line
      // of bad usage; the socket itself comes after the storage lock (a second mirror on the same
      // storage must not take over the first one's socket).
      const socketFailure = (err: unknown) => {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        return new UsageError(
          `cannot serve --metrics-socket ${opts.metricsSocket}: ${code}; name a path in an existing directory this user may write`,
          { cause: err },
        );
      };
      if (opts.metricsSocket !== undefined) {
        await access(dirname(opts.metricsSocket), constants.W_OK).catch((err: unknown) => {
          throw socketFailure(err);
        });
      }
      let address;
      try {
        address = await mirror.listen();
      } catch (err) {
        if (err instanceof StorageLockedError) throw new UsageError(err.message, { cause: err });
        throw listenFailure(err, `${config.listen.host}:${config.listen.port}`);
      }
      let metricsSocket: Server | undefined;
      if (opts.metricsSocket !== undefined) {
        try {
          metricsSocket = await serveMetricsSocket(opts.metricsSocket, mirror.metrics, logger);
        } catch (err) {
          await mirror.close();
          throw socketFailure(err);
        }
      }
      // The signal handlers are in place before the line that says the mirror is up: a supervisor
      // that stops it as soon as it reads that line gets a clean shutdown, not a kill by signal.
      const stopped = new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'shutting down');
          metricsSocket?.close();
          mirror.close().then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      printListening(address);
      await stopped;
    });
  registerVerify(mirror);
  registerMirrorPeers(mirror);
}

function registerVerify(mirror: Command): void {
  mirror
    .command('verify')
    .description(
      'check every stored blob and manifest against its digest; remove bad ones and crash leftovers',
    )
    .option('--storage <dir>', `the mirror's storage (default ${MIRROR_DEFAULTS.storage})`)
    .option('--config <file>', "the mirror's YAML configuration file, for its storage; flags win over it")
    .option('--dry-run', 'report only; remove nothing')
    .option('--output <format>', 'text or json')
    .addHelpText(
      'after',
      `
It refuses to run while a mirror is using the storage (its temp files are live downloads). Exit codes:
0 nothing bad, 1 bad entries were found (and removed unless --dry-run), 2 bad usage.`,
    )
    .action(async (_opts: unknown, command: Command) => {
      // optsWithGlobals: `hoist mirror --storage DIR verify` works too.
      const opts = command.optsWithGlobals<{
        storage?: string;
        config?: string;
        dryRun?: boolean;
        output?: string;
      }>();
      const output = opts.output ?? 'text';
      if (output !== 'text' && output !== 'json') {
        throw new UsageError(`--output must be text or json, not "${output}"`);
      }
      let storage = opts.storage ?? MIRROR_DEFAULTS.storage;
      if (opts.config !== undefined) {
        try {
          storage = (await loadMirrorConfig({ config: opts.config, ...(opts.storage ? { storage } : {}) }))
            .storage;
        } catch (err) {
          if (err instanceof ConfigError) throw new UsageError(err.message, { cause: err });
          throw err;
        }
      }
      let report: VerifyReport;
      try {
        report = await verifyStorage(storage, { dryRun: opts.dryRun === true, concurrency: 2 });
      } catch (err) {
        if (err instanceof VerifyError) throw new UsageError(err.message, { cause: err });
        throw err;
      }
      if (output === 'json') process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(formatVerifyReport(report));
      if (!report.ok) process.exitCode = 1;
    });
}

function formatVerifyReport(r: VerifyReport): string {
  const lines: string[] = [];
  const mib = (r.blobs.bytes / (1024 * 1024)).toFixed(1);
  lines.push(
    `checked ${r.blobs.checked} blobs (${mib} MiB) and ${r.manifests.checked} manifests in ${r.storage}`,
  );
  const fate = r.dryRun ? 'would be removed' : 'removed';
  for (const b of r.bad) {
    const why = b.error ?? `expected ${b.expected}, content is ${b.actual ?? 'unreadable'}`;
    lines.push(`bad ${b.kind} ${b.path}: ${why} (${fate})`);
  }
  for (const t of r.tempFiles) lines.push(`leftover temp file ${t.path}, ${t.bytes} bytes (${fate})`);
  lines.push(r.ok ? 'no bad entries' : `${r.bad.length} bad entries ${fate}`);
  return `${lines.join('\n')}\n`;
}
