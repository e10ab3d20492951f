import { Command, CommanderError, Option } from 'commander';
import { parseGoDuration, parseKubeletEvents } from '../analyze/index.js';
import {
  buildStatusReport,
  buildTopReport,
  buildWhyReport,
  formatStatusText,
  formatTopText,
  formatWhyText,
  ImageQueryError,
  parseImageQuery,
  PluginCluster,
  PluginError,
} from '../kubectl-plugin/index.js';
import { UsageError } from './usage-error.js';
import { VERSION } from './main.js';

/**
 * `kubectl hoist`: the kubectl plugin (the `kubectl-hoist` binary beside `hoist`). kubectl finds
 * it on PATH and passes it the arguments after `hoist`, but none of its own global flags, so the
 * plugin takes --kubeconfig, --context, -n and -A itself (kubectl's plugin mechanism:
 * https://kubernetes.io/docs/tasks/extend-kubectl/kubectl-plugins/). Parsing and printing only;
 * the views are in src/kubectl-plugin.
 */

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const DEFAULTS = { since: '1h', limit: 10 } as const;

interface CommonFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  allNamespaces?: boolean;
  output?: string;
}

type Format = 'table' | 'wide' | 'json';

function addCommon(cmd: Command, namespaceHelp: string): Command {
  return cmd
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context (default: its current-context)')
    .option('-n, --namespace <ns>', namespaceHelp)
    .option('-A, --all-namespaces', 'every namespace')
    .addOption(new Option('-o, --output <format>', 'wide or json (default: a table)'));
}

function outputFormat(flags: CommonFlags): Format {
  const o = flags.output;
  if (o === undefined || o === 'table') return 'table';
  if (o === 'wide' || o === 'json') return o;
  throw new UsageError(`--output "${o}": use wide or json (or leave it out for a table)`);
}

function printJson(doc: unknown): void {
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
}

async function withCluster<T>(flags: CommonFlags, work: (c: PluginCluster) => Promise<T>): Promise<T> {
  if (flags.namespace !== undefined && flags.allNamespaces) {
    throw new UsageError('pass either -n/--namespace or -A/--all-namespaces, not both');
  }
  const cluster = await PluginCluster.connect({
    ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
    ...(flags.context !== undefined ? { context: flags.context } : {}),
  });
  try {
    return await work(cluster);
  } finally {
    cluster.close();
  }
}

function parseSince(value: string): number {
  const seconds = parseGoDuration(value);
  if (seconds === undefined || seconds <= 0) {
    throw new UsageError(`--since "${value}": give a positive duration such as 30m, 1h or 2h30m`);
  }
  return seconds;
}

function parseLimit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new UsageError(`--limit "${value}": give a whole number >= 1`);
  return n;
}

function registerStatus(program: Command): void {
  addCommon(
    program
      .command('status')
      .description(
        "PrePulls and their progress; with -o wide or --nodes, every node and image, and the nodes' mirror caches",
      )
      .argument('[name]', 'one PrePull'),
    "the PrePulls' namespace (default: the context's)",
  )
    .option('--nodes', 'add the per-node, per-image table (as -o wide)')
    .action(async (name: string | undefined, flags: CommonFlags & { nodes?: boolean }) => {
      const format = outputFormat(flags);
      if (name !== undefined && flags.allNamespaces) {
        throw new UsageError(
          'a PrePull cannot be named across all namespaces: drop -A, or give -n NAMESPACE',
        );
      }
      await withCluster(flags, async (cluster) => {
        const namespace = flags.allNamespaces ? undefined : (flags.namespace ?? cluster.namespace);
        const prePulls =
          name !== undefined
            ? [await cluster.getPrePull(namespace ?? cluster.namespace, name)]
            : await cluster.listPrePulls(namespace);
        const nodePulls = await cluster.listNodePulls();
        const now = new Date();
        // One PrePull: the caches of its nodes; a listing: every node's (targeted or not).
        const report = buildStatusReport(prePulls, nodePulls, now, {
          caches: name !== undefined ? 'prePullNodes' : 'all',
        });
        if (format === 'json') return printJson(report);
        const wide = format === 'wide' || flags.nodes === true;
        if (report.prePulls.length === 0) {
          // As `kubectl get` says it, on stderr, exit 0; the wide view still lists the caches.
          process.stderr.write(
            namespace === undefined
              ? 'No PrePulls found.\n'
              : `No PrePulls found in ${namespace} namespace.\n`,
          );
          if (!wide) return;
        }
        process.stdout.write(formatStatusText(report, { withNamespace: namespace === undefined, wide, now }));
      });
    });
}

function registerWhy(program: Command): void {
  addCommon(
    program
      .command('why')
      .description(
        'where an image is, where its pulls failed and why, and which PrePulls want it (a reference without tag or digest matches every tag)',
      )
      .argument(
        '<image>',
        'image reference: nginx:1.25, docker.io/library/nginx:1.25, ghcr.io/org/app@sha256:...',
      ),
    'read PrePulls and events of this namespace only (default: all)',
  ).action(async (image: string, flags: CommonFlags) => {
    const format = outputFormat(flags);
    let query;
    try {
      query = parseImageQuery(image);
    } catch (err) {
      if (err instanceof ImageQueryError) throw new UsageError(err.message, { cause: err });
      throw err;
    }
    await withCluster(flags, async (cluster) => {
      const namespace = flags.namespace;
      const [prePulls, nodePulls, nodes, events] = await Promise.all([
        cluster.listPrePulls(namespace),
        cluster.listNodePulls(),
        cluster.listNodes(),
        cluster.listPodEvents(namespace),
      ]);
      const report = buildWhyReport({
        query,
        prePulls,
        nodePulls,
        nodes,
        events: parseKubeletEvents(events),
      });
      if (format === 'json') printJson(report);
      else process.stdout.write(formatWhyText(report));
    });
  });
}

function registerTop(program: Command): void {
  addCommon(
    program
      .command('top')
      .description(
        'the slowest pulls now: finished kubelet pulls (Pulled events) within --since, and pulls in progress (NodePull status)',
      ),
    'read events of this namespace only (default: all)',
  )
    .option(
      '--since <duration>',
      'how far back to look at kubelet events (Go duration: 30m, 1h, 2h30m)',
      DEFAULTS.since,
    )
    .option('--limit <n>', 'rows per table', String(DEFAULTS.limit))
    .action(async (flags: CommonFlags & { since: string; limit: string }) => {
      const format = outputFormat(flags);
      const sinceSeconds = parseSince(flags.since);
      const limit = parseLimit(flags.limit);
      await withCluster(flags, async (cluster) => {
        const [events, nodePulls] = await Promise.all([
          cluster.listPodEvents(flags.namespace),
          cluster.listNodePulls(),
        ]);
        const now = new Date();
        const report = buildTopReport({
          pulls: parseKubeletEvents(events).pulls,
          nodePulls,
          now,
          since: flags.since,
          sinceSeconds,
          limit,
        });
        if (format === 'json') printJson(report);
        else process.stdout.write(formatTopText(report, now));
      });
    });
}

export function buildPluginProgram(): Command {
  const program = new Command('kubectl hoist')
    .description(
      "Hoist's view of image pulls in the cluster: PrePull progress, where an image is, slowest pulls",
    )
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerStatus(program);
  registerWhy(program);
  registerTop(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildPluginProgram();
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`kubectl hoist: ${message}\n`);
    if (err instanceof UsageError || (err instanceof PluginError && err.usage)) return EXIT_USAGE;
    return EXIT_FAILED;
  }
}
