// The two converters, registry to registry, each measured the same way: wall time, CPU time and
// peak RSS (getrusage through `/usr/bin/time -v` for a command; VmHWM, reset through clear_refs,
// for the long-running containerd), and the size of the layers each one pushed.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startContainerd, type ContainerdPeer } from '../test/helpers/containerd.js';
import { run } from '../test/helpers/process.js';
import { getManifest } from '../test/go/estargz-verifier.js';
import type { RegistryPeer } from '../test/helpers/registry.js';
import { cpuSince, findPid, readCpuTime, readMemory, RssSampler } from './proc-stats.js';
import { ROOT_DIR } from './mirrors.js';

export const HOIST_BIN = join(ROOT_DIR, 'bin', 'hoist.js');

export interface Timed {
  wallSeconds: number;
  userSeconds: number;
  systemSeconds: number;
  /** Peak RSS of the command (getrusage ru_maxrss). */
  maxRssBytes: number;
  stdout: string;
}

/** Runs a command under `/usr/bin/time -v`, which reports the child's own peak RSS and CPU time. */
export async function timed(cmd: string, args: string[], timeoutMs = 1_800_000): Promise<Timed> {
  const start = process.hrtime.bigint();
  const res = await run('/usr/bin/time', ['-v', cmd, ...args], { timeoutMs });
  const wallSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  const field = (name: string) => {
    const m = new RegExp(`${name}: ([\\d.]+)`).exec(res.stderr);
    if (m === null) throw new Error(`/usr/bin/time printed no "${name}":\n${res.stderr}`);
    return Number(m[1]);
  };
  return {
    wallSeconds,
    userSeconds: field('User time \\(seconds\\)'),
    systemSeconds: field('System time \\(seconds\\)'),
    maxRssBytes: field('Maximum resident set size \\(kbytes\\)') * 1024,
    stdout: res.stdout,
  };
}

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** The layers of `repo:tag` as the registry serves them (a single-platform image manifest). */
export async function pushedLayers(reg: RegistryPeer, repo: string, tag: string): Promise<Layer[]> {
  const m = JSON.parse((await getManifest(reg.url, repo, tag)).body.toString()) as { layers?: Layer[] };
  if (!m.layers) throw new Error(`${repo}:${tag} is not an image manifest`);
  return m.layers;
}

export interface ConversionOptions {
  gzipLevel: number;
  chunkSizeBytes: number;
}

export interface HoistRun {
  convert: Timed;
  layerBytes: number;
  layers: number;
}

export async function runHoist(
  reg: RegistryPeer,
  src: string,
  dstRepo: string,
  opts: ConversionOptions & { nodeArgs?: string[] },
): Promise<HoistRun> {
  const dst = `${reg.host}/${dstRepo}:esgz`;
  const convert = await timed(process.execPath, [
    ...(opts.nodeArgs ?? []),
    HOIST_BIN,
    'convert',
    src,
    dst,
    '--gzip-level',
    String(opts.gzipLevel),
    '--chunk-size',
    String(opts.chunkSizeBytes),
    '--output',
    'json',
  ]);
  const layers = await pushedLayers(reg, dstRepo, 'esgz');
  return { convert, layerBytes: layers.reduce((s, l) => s + l.size, 0), layers: layers.length };
}

export interface DaemonUsage {
  /** Peak RSS of containerd during the step (VmHWM after resetting it just before). */
  peakRssBytes: number;
  userSeconds: number;
  systemSeconds: number;
}

export interface CtrRemoteRun {
  /** `ctr content fetch`: the source's blobs into containerd's content store. */
  fetch: Timed;
  convert: Timed;
  containerdDuringConvert: DaemonUsage;
  push: Timed;
  containerdDuringPush: DaemonUsage;
  layerBytes: number;
  layers: number;
}

/** containerd with ctr-remote beside it; the pid is containerd's own, for /proc. */
export interface CtrRemoteHost {
  containerd: ContainerdPeer;
  pid: number;
  stop(): Promise<void>;
}

export async function startCtrRemoteHost(): Promise<CtrRemoteHost> {
  const containerd = await startContainerd();
  try {
    const pid = await findPid(containerd.configPath);
    return { containerd, pid, stop: () => containerd.stop() };
  } catch (e) {
    await containerd.stop();
    throw e;
  }
}

/** Runs `step` while watching containerd: its VmHWM is reset first (proc(5) clear_refs "5"). */
async function watchDaemon<T>(pid: number, step: () => Promise<T>): Promise<[T, DaemonUsage]> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
  const cpu = await readCpuTime(pid);
  const sampler = new RssSampler(pid, 50);
  await sampler.begin();
  const result = await step();
  const memory = await sampler.end();
  const used = cpuSince(cpu, await readCpuTime(pid));
  const hwm = (await readMemory(pid)).hwmBytes;
  return [result, { peakRssBytes: Math.max(hwm, memory.peakSampledRssBytes), ...used }];
}

/**
 * ctr-remote converts inside containerd's content store: fetch the source (not part of the
 * conversion, timed on its own), `images convert --estargz --oci` (the conversion runs in the
 * ctr-remote process, which reads and writes blobs through containerd), then `images push`.
 */
export async function runCtrRemote(
  host: CtrRemoteHost,
  reg: RegistryPeer,
  src: string,
  dstRepo: string,
  opts: ConversionOptions,
): Promise<CtrRemoteRun> {
  const sock = host.containerd.socket;
  const ctr = (args: string[]) => timed('ctr-remote', ['--address', sock, ...args]);
  const dst = `${reg.host}/${dstRepo}:esgz`;
  const fetch = await ctr(['content', 'fetch', '--plain-http', src]);
  const [convert, containerdDuringConvert] = await watchDaemon(host.pid, () =>
    ctr([
      'images',
      'convert',
      '--estargz',
      '--oci',
      '--estargz-compression-level',
      String(opts.gzipLevel),
      '--estargz-chunk-size',
      String(opts.chunkSizeBytes),
      src,
      dst,
    ]),
  );
  const [push, containerdDuringPush] = await watchDaemon(host.pid, () =>
    ctr(['images', 'push', '--plain-http', dst]),
  );
  const layers = await pushedLayers(reg, dstRepo, 'esgz');
  // Remove both images and their content (--sync waits for containerd's GC), so that the next
  // repetition fetches and converts from scratch.
  await run('ctr-remote', ['--address', sock, 'images', 'rm', '--sync', dst, src]);
  return {
    fetch,
    convert,
    containerdDuringConvert,
    push,
    containerdDuringPush,
    layerBytes: layers.reduce((s, l) => s + l.size, 0),
    layers: layers.length,
  };
}
