import type { Command } from 'commander';
import {
  CONTAINERD_RENDER_DEFAULTS,
  DoctorError,
  KUBELET_RENDER_DEFAULTS,
  renderContainerdConfig,
  renderKubeletConfig,
  type ConfigFile,
} from '../doctor/index.js';
import {
  buildInstall,
  buildPrepullDaemonSet,
  checkComponentValues,
  DEFAULT_NAMESPACE,
  formatObjects,
  HOIST_VERSION,
  InstallError,
  installCrds,
  parseMaxUnavailable,
  parseNodeSelector,
  parseToleration,
  PREPULL_DEFAULTS,
  readValuesFile,
  resolveValues,
  valuesJsonSchema,
  type KubeObject,
  type ObjectFormat,
} from '../install/index.js';
import { collect, parseKeyValues } from './analyze-common.js';
import { UsageError } from './usage-error.js';

function int(value: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} "${value}": expected an integer from ${min} to ${max}`);
  }
  return n;
}

function print(files: ConfigFile[], output: string): void {
  if (output === 'json') process.stdout.write(`${JSON.stringify({ files }, null, 2)}\n`);
  else process.stdout.write(files.map((f) => `# ---- ${f.path}\n${f.content}`).join('\n'));
}

function rendered(work: () => ConfigFile[]): ConfigFile[] {
  try {
    return work();
  } catch (err) {
    if (err instanceof DoctorError) throw new UsageError(err.message, { cause: err });
    throw err;
  }
}

interface KubeletFlags {
  output: string;
  maxParallelImagePulls: string;
  imageGcHigh: string;
  imageGcLow: string;
  imageMinimumGcAge: string;
  imageMaximumGcAge?: string;
  registryPullQps: string;
  registryBurst: string;
}

interface ContainerdFlags {
  output: string;
  configVersion: string;
  configPath: string;
  maxConcurrentDownloads: string;
  stargz?: boolean;
  mirror?: string[];
}

function objectFormat(value: string): ObjectFormat {
  if (value === 'yaml' || value === 'json') return value;
  throw new UsageError(`--output "${value}": use yaml or json`);
}

/** InstallError is always about what the user gave: exit 2. */
async function asUsage<T>(work: () => T | Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof InstallError) throw new UsageError(err.message, { cause: err });
    throw err;
  }
}

interface InstallFlags {
  values?: string[];
  namespace: string;
  output: string;
  skipCrds?: boolean;
}

interface PrepullFlags {
  image?: string[];
  name: string;
  namespace: string;
  toleration?: string[];
  tolerateAll?: boolean;
  nodeSelector?: string[];
  maxUnavailable: string;
  helperImage: string;
  pauseImage: string;
  output: string;
}

function registerInstall(render: Command): void {
  render
    .command('install')
    .description(
      'the Kubernetes objects of a Hoist install, as `helm template hoist deploy/helm/hoist --include-crds` renders them',
    )
    .option(
      '-f, --values <file>',
      "values file (the chart's values.yaml format); repeatable, later wins",
      collect,
    )
    .option('--namespace <ns>', 'namespace to install into', DEFAULT_NAMESPACE)
    .option('--output <format>', 'yaml or json (a v1 List)', 'yaml')
    .option('--skip-crds', 'leave out the CustomResourceDefinitions')
    .addHelpText(
      'after',
      `
Apply with: kubectl create namespace NS && hoist render install --namespace NS | kubectl apply --server-side -f -
A bad value exits 2 naming its key, e.g. "mirror.mode: Invalid option: expected one of "node"|"zone"".`,
    )
    .action(async (opts: InstallFlags) => {
      const format = objectFormat(opts.output);
      const objects = await asUsage(async () => {
        const layers: unknown[] = [];
        for (const file of opts.values ?? []) layers.push(await readValuesFile(file));
        const values = resolveValues(...layers);
        await checkComponentValues(values);
        const crds = opts.skipCrds === true ? [] : installCrds();
        return buildInstall(values, { namespace: opts.namespace, crds });
      });
      const files = opts.values?.length ? opts.values.join(', ') : 'defaults';
      const header = [
        `Hoist ${HOIST_VERSION}: \`hoist render install --namespace ${opts.namespace}\` (values: ${files}).`,
        `Apply: kubectl create namespace ${opts.namespace} && kubectl apply --server-side -f FILE`,
      ];
      process.stdout.write(formatObjects(objects, format, header));
    });
  render
    .command('values-schema')
    .description("the JSON schema of the install values (the chart's values.schema.json)")
    .action(() => {
      process.stdout.write(`${JSON.stringify(valuesJsonSchema(), null, 2)}\n`);
    });
}

function registerPrepullDaemonSet(render: Command): void {
  const d = PREPULL_DEFAULTS;
  render
    .command('prepull-daemonset')
    .description(
      'a plain pre-pull DaemonSet (no Hoist agent needed) that works for images without a shell or `true`',
    )
    .option('--image <ref>', 'an image to pre-pull on every node; repeatable', collect)
    .option('--name <name>', 'name of the DaemonSet', d.name)
    .option('--namespace <ns>', 'its namespace', d.namespace)
    .option(
      '--toleration <key[=value][:effect]>',
      'tolerate a taint, e.g. nvidia.com/gpu:NoSchedule; repeatable',
      collect,
    )
    .option('--tolerate-all', 'tolerate every taint (reach every node)')
    .option('--node-selector <label=value>', 'only nodes with this label; repeatable', collect)
    .option('--max-unavailable <n|n%>', 'nodes pulling at once when the image list changes', d.maxUnavailable)
    .option('--helper-image <ref>', 'image whose static /bin/busybox becomes /hoist-bin/true', d.helperImage)
    .option('--pause-image <ref>', 'image of the container that keeps the pod', d.pauseImage)
    .option('--output <format>', 'yaml or json', 'yaml')
    .addHelpText(
      'after',
      `
Each image is an init container running /hoist-bin/true (busybox copied from --helper-image), so
images with no shell work. Pull policy: IfNotPresent, or Always for :latest (the kubelet's default).`,
    )
    .action(async (opts: PrepullFlags) => {
      const format = objectFormat(opts.output);
      if (opts.tolerateAll === true && (opts.toleration ?? []).length > 0) {
        throw new UsageError('give --toleration or --tolerate-all, not both');
      }
      if ((opts.image ?? []).length === 0) throw new UsageError('name at least one --image to pre-pull');
      const daemonSet: KubeObject = await asUsage(() =>
        buildPrepullDaemonSet({
          images: opts.image ?? [],
          name: opts.name,
          namespace: opts.namespace,
          tolerations:
            opts.tolerateAll === true
              ? [{ operator: 'Exists' }]
              : (opts.toleration ?? []).map(parseToleration),
          nodeSelector: parseNodeSelector(opts.nodeSelector ?? []),
          maxUnavailable: parseMaxUnavailable(opts.maxUnavailable),
          helperImage: opts.helperImage,
          pauseImage: opts.pauseImage,
        }),
      );
      if (format === 'json') process.stdout.write(`${JSON.stringify(daemonSet, null, 2)}\n`);
      else process.stdout.write(formatObjects([daemonSet], 'yaml'));
    });
}

export function registerRender(program: Command): void {
  const render = program
    .command('render')
    .description('print configuration snippets for fast, reliable pulls');
  const k = KUBELET_RENDER_DEFAULTS;
  render
    .command('kubelet-config')
    .description('a KubeletConfiguration fragment: parallel pulls, image GC that keeps pre-pulled images')
    .option('--output <format>', 'text or json', 'text')
    .option('--max-parallel-image-pulls <n>', 'pulls at once', String(k.maxParallelImagePulls))
    .option(
      '--image-gc-high <percent>',
      'disk use that starts image GC',
      String(k.imageGCHighThresholdPercent),
    )
    .option(
      '--image-gc-low <percent>',
      'disk use image GC frees down to',
      String(k.imageGCLowThresholdPercent),
    )
    .option(
      '--image-minimum-gc-age <duration>',
      'unused images younger than this are kept',
      k.imageMinimumGCAge,
    )
    .option('--image-maximum-gc-age <duration>', 'unused images older than this are removed (1.29+)')
    .option('--registry-pull-qps <n>', 'pull starts per second (0: no limit)', String(k.registryPullQPS))
    .option('--registry-burst <n>', 'pull starts allowed in a burst', String(k.registryBurst))
    .action((opts: KubeletFlags) => {
      if (!['text', 'json'].includes(opts.output))
        throw new UsageError(`--output "${opts.output}": use text or json`);
      const file = rendered(() => [
        renderKubeletConfig({
          maxParallelImagePulls: int(opts.maxParallelImagePulls, '--max-parallel-image-pulls', 1),
          imageGCHighThresholdPercent: int(opts.imageGcHigh, '--image-gc-high', 1, 100),
          imageGCLowThresholdPercent: int(opts.imageGcLow, '--image-gc-low', 0, 99),
          imageMinimumGCAge: opts.imageMinimumGcAge,
          ...(opts.imageMaximumGcAge !== undefined ? { imageMaximumGCAge: opts.imageMaximumGcAge } : {}),
          registryPullQPS: int(opts.registryPullQps, '--registry-pull-qps', 0),
          registryBurst: int(opts.registryBurst, '--registry-burst', 0),
        }),
      ]);
      print(file, opts.output);
    });
  const c = CONTAINERD_RENDER_DEFAULTS;
  render
    .command('containerd-config')
    .description(
      "containerd's config.toml with config_path (and stargz), plus a hosts.toml per mirrored registry",
    )
    .option('--output <format>', 'text or json', 'text')
    .option('--config-version <n>', '2 for containerd 1.x, 3 for containerd 2.x', String(c.version))
    .option('--config-path <dir>', 'where containerd reads hosts.toml files', c.configPath)
    .option(
      '--max-concurrent-downloads <n>',
      'layers downloaded at once per pull',
      String(c.maxConcurrentDownloads),
    )
    .option('--stargz', 'lazy pulling through the stargz snapshotter (proxy plugin)')
    .option(
      '--mirror <registry=url>',
      'a mirror for a registry, e.g. docker.io=http://127.0.0.1:5000; repeatable',
      collect,
    )
    .action((opts: ContainerdFlags) => {
      if (!['text', 'json'].includes(opts.output))
        throw new UsageError(`--output "${opts.output}": use text or json`);
      const version = int(opts.configVersion, '--config-version', 2, 3) as 2 | 3;
      if (!opts.configPath.startsWith('/'))
        throw new UsageError(`--config-path "${opts.configPath}": use an absolute path`);
      if (opts.configPath.includes(':'))
        throw new UsageError(
          `--config-path "${opts.configPath}": give one folder; containerd 2.x's transfer service ignores a ':' list (containerd#12415)`,
        );
      const files = rendered(() =>
        renderContainerdConfig({
          version,
          configPath: opts.configPath.replace(/\/+$/, ''),
          maxConcurrentDownloads: int(opts.maxConcurrentDownloads, '--max-concurrent-downloads', 1),
          stargz: opts.stargz === true,
          mirrors: parseKeyValues(opts.mirror ?? [], '--mirror'),
        }),
      );
      print(files, opts.output);
    });
  registerInstall(render);
  registerPrepullDaemonSet(render);
}
