import type { Command } from 'commander';
import {
  CONTAINERD_RENDER_DEFAULTS,
  DoctorError,
  KUBELET_RENDER_DEFAULTS,
  renderContainerdConfig,
  renderKubeletConfig,
  type ConfigFile,
} from '../doctor/index.js';
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
}
