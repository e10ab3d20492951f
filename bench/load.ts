// Load: hundreds of connections for a minute against a cached small blob and a cached manifest,
// Hoist's mirror beside distribution's pull-through proxy (docker-registry 2.8), driven by wrk on
// loopback. Reports requests/s, latency p50/p99, errors (non-2xx answers and socket errors, which
// must be zero for hoist) and the mirror's peak RSS (VmHWM), to show memory stays bounded.
//
//   node --import tsx bench/load.ts            # 60 s per run, 256 connections, 2 wrk threads
//   node --import tsx bench/load.ts --quick    # 10 s per run
//
// Writes bench/out/load.json and prints a table; exits 1 when hoist had any error.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findBinary } from '../test/helpers/peers.js';
import { run } from '../test/helpers/process.js';
import type { RegistryPeer } from '../test/helpers/registry.js';
import { pushBlob, startRegistry } from '../test/helpers/registry.js';
import type { MirrorName, MirrorUnderTest } from './mirrors.js';
import { requireHoistBuild, ROOT_DIR, startHoist, startRegistryProxy } from './mirrors.js';
import { cpuSince, readCpuTime, readMemory, RssSampler, type CpuTime } from './proc-stats.js';

const USAGE = `usage: node --import tsx bench/load.ts [--quick] [--connections N] [--threads N] [--seconds N]
  --quick          10 s per run instead of 60
  --connections N  concurrent connections (default 256)
  --threads N      wrk threads (default 2)
  --seconds N      duration of each run (overrides --quick)`;

const REPO = 'bench/load';
const TAG = 'v1';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OUT_DIR = join(ROOT_DIR, 'bench', 'out');
/** A small layer, the size of an image config or a tiny layer: request rate, not bandwidth, is measured. */
const BLOB_BYTES = 16 * 1024;

interface Plan {
  seconds: number;
  connections: number;
  threads: number;
}

/** What wrk printed, parsed. Latencies in milliseconds. */
export interface WrkResult {
  requests: number;
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

interface LoadRun {
  mirror: MirrorName;
  target: 'blob' | 'manifest';
  wrk: WrkResult;
  errors: number;
  /** Requests the upstream saw while this run was going: a cached target needs none. */
  upstreamRequests: number;
  cpu: CpuTime;
  /** Highest VmRSS sampled during the run, and VmHWM (peak over the process's life) after it. */
  peakSampledRssBytes: number;
  hwmBytes: number;
}

function parsePlan(argv: string[]): Plan {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      connections: { type: 'string', default: '256' },
      threads: { type: 'string', default: '2' },
      seconds: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: "${v}" is not a positive integer`);
    return n;
  };
  return {
    seconds: values.seconds !== undefined ? int('seconds', values.seconds) : values.quick ? 10 : 60,
    connections: int('connections', values.connections),
    threads: int('threads', values.threads),
  };
}

function progress(line: string): void {
  process.stderr.write(`[load] ${line}\n`);
}

/** wrk prints durations as 812.00us, 1.23ms, 2.01s or 1.00m. */
function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!m) throw new Error(`wrk: cannot read the duration "${value}"`);
  const n = Number(m[1]);
  const unit = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm'];
  return n * unit;
}

/** Parses `wrk --latency` output (pure). */
export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp, what: string): string => {
    const m = re.exec(out);
    if (m?.[1] === undefined) throw new Error(`wrk output has no ${what}:\n${out}`);
    return m[1];
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: Number(num(/^\s*(\d+) requests in /m, 'request count')),
    requestsPerSecond: Number(num(/^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec')),
    latencyP50Ms: toMs(num(/^\s+50%\s+(\S+)/m, 'latency p50')),
    latencyP99Ms: toMs(num(/^\s+99%\s+(\S+)/m, 'latency p99')),
    latencyMaxMs: toMs(num(/^\s+Latency\s+\S+\s+\S+\s+(\S+)/m, 'latency max')),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
    },
  };
}

/** A small image in the upstream: a config and one layer blob, and an OCI manifest tagged v1. */
async function pushSmallImage(upstream: RegistryPeer): Promise<{ blob: string; manifest: string }> {
  const config = await pushBlob(upstream, REPO, Buffer.from('{"architecture":"amd64","os":"linux"}'));
  const layer = randomBytes(BLOB_BYTES);
  const blob = await pushBlob(upstream, REPO, layer);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 37 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: blob, size: BLOB_BYTES }],
  });
  const res = await fetch(`${upstream.url}/v2/${REPO}/manifests/${TAG}`, {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`manifest push answered ${res.status}: ${await res.text()}`);
  const digest = res.headers.get('docker-content-digest');
  if (digest === null) throw new Error('manifest push answered no Docker-Content-Digest');
  return { blob, manifest: digest };
}

/** Fetches a URL until the mirror answers 200 (it has the content) and the answer is complete. */
async function warm(url: string, accept?: string): Promise<void> {
  const res = await fetch(url, {
    headers: accept !== undefined ? { accept } : {},
    signal: AbortSignal.timeout(30_000),
  });
  const body = await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`warm-up GET ${url} answered ${res.status}`);
  void body;
}

async function loadRun(
  plan: Plan,
  mirror: MirrorUnderTest,
  upstream: RegistryPeer,
  target: 'blob' | 'manifest',
  url: string,
): Promise<LoadRun> {
  const args = ['-c', String(plan.connections), '-t', String(plan.threads), '-d', `${plan.seconds}s`];
  args.push('--latency', '--timeout', '5s');
  if (target === 'manifest') args.push('-H', `Accept: ${OCI_MANIFEST}`);
  args.push(url);
  progress(`${mirror.name} ${target}: wrk ${args.join(' ')}`);
  const upstreamBefore = upstream.accessLog().length;
  const sampler = new RssSampler(mirror.pid, 100);
  await sampler.begin();
  const cpuBefore = await readCpuTime(mirror.pid);
  const { stdout } = await run('wrk', args, { timeoutMs: (plan.seconds + 60) * 1000 });
  const cpu = cpuSince(cpuBefore, await readCpuTime(mirror.pid));
  const memory = await sampler.end();
  const wrk = parseWrk(stdout);
  const s = wrk.socketErrors;
  const errors = wrk.non2xx + s.connect + s.read + s.write + s.timeout;
  progress(
    `  ${wrk.requestsPerSecond.toFixed(0)} req/s, p50 ${wrk.latencyP50Ms.toFixed(2)} ms, ` +
      `p99 ${wrk.latencyP99Ms.toFixed(2)} ms, errors ${errors}, ` +
      `peak RSS ${(Math.max(memory.hwmBytes, memory.peakSampledRssBytes) / 2 ** 20).toFixed(0)} MiB`,
  );
  return {
    mirror: mirror.name,
    target,
    wrk,
    errors,
    upstreamRequests: upstream.accessLog().length - upstreamBefore,
    cpu,
    peakSampledRssBytes: memory.peakSampledRssBytes,
    hwmBytes: memory.hwmBytes,
  };
}

function renderTable(runs: LoadRun[], plan: Plan): string {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  const rows = [
    [
      'mirror',
      'target',
      'req/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'non-2xx',
      'socket err',
      'upstream',
      'CPU s',
      'peak RSS',
    ],
  ];
  for (const r of runs) {
    const s = r.wrk.socketErrors;
    rows.push([
      r.mirror,
      r.target,
      r.wrk.requestsPerSecond.toFixed(0),
      r.wrk.latencyP50Ms.toFixed(2),
      r.wrk.latencyP99Ms.toFixed(2),
      r.wrk.latencyMaxMs.toFixed(0),
      String(r.wrk.non2xx),
      String(s.connect + s.read + s.write + s.timeout),
      String(r.upstreamRequests),
      (r.cpu.userSeconds + r.cpu.systemSeconds).toFixed(1),
      mib(Math.max(r.hwmBytes, r.peakSampledRssBytes)),
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  const line = (row: string[]) =>
    `| ${row.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i < 2 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const header = `wrk -c ${plan.connections} -t ${plan.threads} -d ${plan.seconds}s --latency, loopback`;
  return [header, '', line(rows[0] ?? []), sep, ...rows.slice(1).map(line)].join('\n');
}

async function main(): Promise<void> {
  const plan = parsePlan(process.argv.slice(2));
  for (const bin of ['wrk', 'docker-registry']) {
    if (findBinary(bin) === undefined)
      throw new Error(`${bin} is not installed (scripts/install-peers.sh installs it)`);
  }
  await requireHoistBuild();
  await mkdir(OUT_DIR, { recursive: true });
  const startedAt = new Date();
  const upstream = await startRegistry();
  const mirrors: MirrorUnderTest[] = [];
  try {
    const { blob, manifest } = await pushSmallImage(upstream);
    progress(`upstream ${upstream.url}: blob ${blob}, manifest ${manifest}`);
    // Both mirrors start fresh here, so VmHWM covers only start-up, warm-up and these runs.
    mirrors.push(await startHoist({ upstream, logPath: join(OUT_DIR, 'hoist-load.log') }));
    mirrors.push(await startRegistryProxy(upstream));
    const runs: LoadRun[] = [];
    for (const mirror of mirrors) {
      const blobUrl = `${mirror.url}/v2/${REPO}/blobs/${blob}`;
      const manifestUrl = `${mirror.url}/v2/${REPO}/manifests/${manifest}`;
      await warm(blobUrl);
      await warm(manifestUrl, OCI_MANIFEST);
      // distribution stores a proxied blob beside the response: wait until it is local.
      for (let i = 0; i < 300 && !(await mirror.isStored(blob.slice(7))); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const memory = await readMemory(mirror.pid);
      progress(`${mirror.name} warm: RSS ${(memory.rssBytes / 2 ** 20).toFixed(0)} MiB`);
    }
    // Alternate the mirrors, so that neither always runs on a machine the other has just heated.
    for (const target of ['blob', 'manifest'] as const) {
      for (const mirror of mirrors) {
        const url =
          target === 'blob'
            ? `${mirror.url}/v2/${REPO}/blobs/${blob}`
            : `${mirror.url}/v2/${REPO}/manifests/${manifest}`;
        runs.push(await loadRun(plan, mirror, upstream, target, url));
      }
    }
    const results = {
      startedAt: startedAt.toISOString(),
      plan,
      blobBytes: BLOB_BYTES,
      runs,
      durationSeconds: (Date.now() - startedAt.getTime()) / 1000,
    };
    const outPath = join(OUT_DIR, 'load.json');
    await writeFile(outPath, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`${renderTable(runs, plan)}\n\nresults: ${outPath}\n`);
    const hoistErrors = runs.filter((r) => r.mirror === 'hoist').reduce((n, r) => n + r.errors, 0);
    if (hoistErrors > 0) {
      process.stderr.write(`load: hoist had ${hoistErrors} errors (non-2xx answers or socket errors)\n`);
      process.exitCode = 1;
    }
  } finally {
    for (const m of mirrors) await m.stop();
    await upstream.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`load: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
