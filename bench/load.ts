// Load: many connections against cached content, Hoist's mirror beside distribution's pull-through
// proxy (docker-registry 2.8), driven by wrk on loopback. Two scenarios, each on freshly started
// mirrors (so that VmHWM, the kernel's peak-RSS mark, covers that scenario alone):
//
// - small: 256 connections on a cached 16 KiB blob and a cached manifest (request rate);
// - many: 1,000 connections on a cached 1 MiB blob with a 10 s wrk timeout (memory and fairness:
//   every connection must be served, none starved, with a bounded peak RSS).
//
// Reports requests/s, latency p50/p99/max, errors (non-2xx answers and socket errors, timeouts
// among them: must be zero for hoist), the mirror's idle RSS after start, and its peak RSS.
//
//   node --import tsx bench/load.ts                     # 60 s per run (small), 20 s (many)
//   node --import tsx bench/load.ts --quick             # 10 s per run
//   node --import tsx bench/load.ts --scenario many --out load-many   # also bench/results/load-many.json
//
// Writes bench/out/load.json (and with --out NAME, bench/results/NAME.json with the commit, the
// machine and the command) and prints a table; exits 1 when hoist had any error.
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
import { describeMachine, keepResult } from './report.js';

const USAGE = `usage: node --import tsx bench/load.ts [--quick] [--scenario small|many|all] [--connections N]
       [--many-connections N] [--threads N] [--seconds N] [--out NAME]
  --quick               10 s per run instead of 60 (small) and 20 (many)
  --scenario S          small (16 KiB blob and a manifest), many (1 MiB blob, 1,000 connections), or all (default)
  --connections N       connections of the small scenario (default 256)
  --many-connections N  connections of the many scenario (default 1000)
  --threads N           wrk threads (default 2)
  --seconds N           duration of each run (overrides --quick)
  --out NAME            also write bench/results/NAME.json (commit, machine, command, results)`;

const REPO = 'bench/load';
const TAG = 'v1';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OUT_DIR = join(ROOT_DIR, 'bench', 'out');
/** A small layer, the size of an image config or a tiny layer: request rate, not bandwidth, is measured. */
const BLOB_BYTES = 16 * 1024;
/** The many-connections scenario's blob: each response is several send buffers long. */
const MANY_BLOB_BYTES = 1024 * 1024;
/** wrk gives up on a request after this; such requests count as errors (timeouts). */
const WRK_TIMEOUT_SMALL = '5s';
const WRK_TIMEOUT_MANY = '10s';

type ScenarioName = 'small' | 'many';

interface Plan {
  scenarios: ScenarioName[];
  /** Duration of each run of the small scenario, and of the many scenario. */
  seconds: number;
  manySeconds: number;
  connections: number;
  manyConnections: number;
  threads: number;
  out: string | undefined;
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
  scenario: ScenarioName;
  mirror: MirrorName;
  target: 'blob' | 'manifest';
  blobBytes: number;
  connections: number;
  seconds: number;
  wrk: WrkResult;
  errors: number;
  /** Requests the upstream saw while this run was going: a cached target needs none. */
  upstreamRequests: number;
  cpu: CpuTime;
  /** Highest VmRSS sampled during the run, and VmHWM (peak over the process's life) after it. */
  peakSampledRssBytes: number;
  hwmBytes: number;
}

/** RSS of a mirror just started (no request yet), and after one GET of each target. */
interface IdleMemory {
  scenario: ScenarioName;
  mirror: MirrorName;
  idleRssBytes: number;
  warmRssBytes: number;
}

function parsePlan(argv: string[]): Plan {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      scenario: { type: 'string', default: 'all' },
      connections: { type: 'string', default: '256' },
      'many-connections': { type: 'string', default: '1000' },
      threads: { type: 'string', default: '2' },
      seconds: { type: 'string' },
      out: { type: 'string' },
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
  const scenario = values.scenario;
  if (scenario !== 'small' && scenario !== 'many' && scenario !== 'all') {
    throw new Error(`--scenario: "${scenario}" is not small, many or all`);
  }
  if (values.out !== undefined && !/^[A-Za-z0-9._-]+$/.test(values.out)) {
    throw new Error(`--out: "${values.out}" must be a plain file name (letters, digits, . _ -)`);
  }
  const seconds = values.seconds !== undefined ? int('seconds', values.seconds) : undefined;
  return {
    scenarios: scenario === 'all' ? ['small', 'many'] : [scenario],
    seconds: seconds ?? (values.quick ? 10 : 60),
    manySeconds: seconds ?? (values.quick ? 10 : 20),
    connections: int('connections', values.connections),
    manyConnections: int('many-connections', values['many-connections']),
    threads: int('threads', values.threads),
    out: values.out,
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
async function pushImage(
  upstream: RegistryPeer,
  blobBytes: number,
  tag: string,
): Promise<{ blob: string; manifest: string }> {
  const config = await pushBlob(upstream, REPO, Buffer.from('{"architecture":"amd64","os":"linux"}'));
  const layer = randomBytes(blobBytes);
  const blob = await pushBlob(upstream, REPO, layer);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 37 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: blob, size: blobBytes }],
  });
  const res = await fetch(`${upstream.url}/v2/${REPO}/manifests/${tag}`, {
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

interface RunSpec {
  scenario: ScenarioName;
  connections: number;
  seconds: number;
  threads: number;
  wrkTimeout: string;
  blobBytes: number;
}

async function loadRun(
  spec: RunSpec,
  mirror: MirrorUnderTest,
  upstream: RegistryPeer,
  target: 'blob' | 'manifest',
  url: string,
): Promise<LoadRun> {
  const args = ['-c', String(spec.connections), '-t', String(spec.threads), '-d', `${spec.seconds}s`];
  args.push('--latency', '--timeout', spec.wrkTimeout);
  if (target === 'manifest') args.push('-H', `Accept: ${OCI_MANIFEST}`);
  args.push(url);
  progress(`${mirror.name} ${target}: wrk ${args.join(' ')}`);
  const upstreamBefore = upstream.accessLog().length;
  const sampler = new RssSampler(mirror.pid, 100);
  await sampler.begin();
  const cpuBefore = await readCpuTime(mirror.pid);
  const { stdout } = await run('wrk', args, { timeoutMs: (spec.seconds + 60) * 1000 });
  const cpu = cpuSince(cpuBefore, await readCpuTime(mirror.pid));
  const memory = await sampler.end();
  const wrk = parseWrk(stdout);
  const s = wrk.socketErrors;
  const errors = wrk.non2xx + s.connect + s.read + s.write + s.timeout;
  progress(
    `  ${wrk.requestsPerSecond.toFixed(0)} req/s, p50 ${wrk.latencyP50Ms.toFixed(2)} ms, ` +
      `p99 ${wrk.latencyP99Ms.toFixed(2)} ms, max ${wrk.latencyMaxMs.toFixed(0)} ms, errors ${errors} ` +
      `(timeouts ${s.timeout}), ` +
      `peak RSS ${(Math.max(memory.hwmBytes, memory.peakSampledRssBytes) / 2 ** 20).toFixed(0)} MiB`,
  );
  return {
    scenario: spec.scenario,
    mirror: mirror.name,
    target,
    blobBytes: spec.blobBytes,
    connections: spec.connections,
    seconds: spec.seconds,
    wrk,
    errors,
    upstreamRequests: upstream.accessLog().length - upstreamBefore,
    cpu,
    peakSampledRssBytes: memory.peakSampledRssBytes,
    hwmBytes: memory.hwmBytes,
  };
}

function renderTable(runs: LoadRun[], idle: IdleMemory[], threads: number): string {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  const kib = (n: number) => (n >= 2 ** 20 ? `${n / 2 ** 20} MiB` : `${n / 1024} KiB`);
  const rows = [
    [
      'mirror',
      'target',
      'conns',
      'req/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'non-2xx',
      'socket err',
      'timeouts',
      'upstream',
      'CPU s',
      'peak RSS',
    ],
  ];
  for (const r of runs) {
    const s = r.wrk.socketErrors;
    rows.push([
      r.mirror,
      `${r.target} ${kib(r.target === 'blob' ? r.blobBytes : 0).replace(/^0 KiB$/, '')}`.trim(),
      String(r.connections),
      r.wrk.requestsPerSecond.toFixed(0),
      r.wrk.latencyP50Ms.toFixed(2),
      r.wrk.latencyP99Ms.toFixed(2),
      r.wrk.latencyMaxMs.toFixed(0),
      String(r.wrk.non2xx),
      String(s.connect + s.read + s.write + s.timeout),
      String(s.timeout),
      String(r.upstreamRequests),
      (r.cpu.userSeconds + r.cpu.systemSeconds).toFixed(1),
      mib(Math.max(r.hwmBytes, r.peakSampledRssBytes)),
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  const line = (row: string[]) =>
    `| ${row.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i < 2 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const header = `wrk -t ${threads} --latency, loopback; peak RSS = max(VmHWM, sampled VmRSS) since the mirror started`;
  const idleLines = idle.map(
    (m) =>
      `${m.scenario}: ${m.mirror} idle RSS ${mib(m.idleRssBytes)} after start, ${mib(m.warmRssBytes)} after warm-up`,
  );
  return [header, '', line(rows[0] ?? []), sep, ...rows.slice(1).map(line), '', ...idleLines].join('\n');
}

/** Lets a mirror that just started settle (JIT, first timers) before its idle RSS is read. */
const IDLE_SETTLE_MS = 2000;

/**
 * One scenario on freshly started mirrors: idle RSS, warm-up (each target fetched once and stored),
 * then wrk against each target, alternating the mirrors, so that neither always runs on a machine
 * the other has just heated.
 */
async function runScenario(
  scenario: ScenarioName,
  plan: Plan,
  upstream: RegistryPeer,
  image: { blob: string; manifest: string },
  blobBytes: number,
): Promise<{ runs: LoadRun[]; idle: IdleMemory[] }> {
  const spec: RunSpec =
    scenario === 'small'
      ? {
          scenario,
          connections: plan.connections,
          seconds: plan.seconds,
          threads: plan.threads,
          wrkTimeout: WRK_TIMEOUT_SMALL,
          blobBytes,
        }
      : {
          scenario,
          connections: plan.manyConnections,
          seconds: plan.manySeconds,
          threads: plan.threads,
          wrkTimeout: WRK_TIMEOUT_MANY,
          blobBytes,
        };
  const targets: Array<'blob' | 'manifest'> = scenario === 'small' ? ['blob', 'manifest'] : ['blob'];
  const mirrors: MirrorUnderTest[] = [];
  const idle: IdleMemory[] = [];
  const runs: LoadRun[] = [];
  try {
    // Fresh processes: VmHWM then covers start-up, warm-up and this scenario's runs only.
    mirrors.push(await startHoist({ upstream, logPath: join(OUT_DIR, `hoist-load-${scenario}.log`) }));
    mirrors.push(await startRegistryProxy(upstream));
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
    for (const mirror of mirrors) {
      const idleRss = (await readMemory(mirror.pid)).rssBytes;
      await warm(`${mirror.url}/v2/${REPO}/blobs/${image.blob}`);
      if (targets.includes('manifest'))
        await warm(`${mirror.url}/v2/${REPO}/manifests/${image.manifest}`, OCI_MANIFEST);
      // distribution stores a proxied blob beside the response: wait until it is local.
      for (let i = 0; i < 300 && !(await mirror.isStored(image.blob.slice(7))); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const warmRss = (await readMemory(mirror.pid)).rssBytes;
      idle.push({ scenario, mirror: mirror.name, idleRssBytes: idleRss, warmRssBytes: warmRss });
      progress(
        `${scenario}: ${mirror.name} RSS ${(idleRss / 2 ** 20).toFixed(0)} MiB idle, ` +
          `${(warmRss / 2 ** 20).toFixed(0)} MiB warm`,
      );
    }
    for (const target of targets) {
      for (const mirror of mirrors) {
        const url =
          target === 'blob'
            ? `${mirror.url}/v2/${REPO}/blobs/${image.blob}`
            : `${mirror.url}/v2/${REPO}/manifests/${image.manifest}`;
        runs.push(await loadRun(spec, mirror, upstream, target, url));
      }
    }
  } finally {
    for (const m of mirrors) await m.stop();
  }
  return { runs, idle };
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
  const machine = await describeMachine();
  const upstream = await startRegistry();
  try {
    const runs: LoadRun[] = [];
    const idle: IdleMemory[] = [];
    for (const scenario of plan.scenarios) {
      const blobBytes = scenario === 'small' ? BLOB_BYTES : MANY_BLOB_BYTES;
      const image = await pushImage(upstream, blobBytes, scenario === 'small' ? TAG : `${TAG}-${scenario}`);
      progress(`${scenario}: upstream ${upstream.url}: blob ${image.blob}, manifest ${image.manifest}`);
      const r = await runScenario(scenario, plan, upstream, image, blobBytes);
      runs.push(...r.runs);
      idle.push(...r.idle);
    }
    const results = {
      bench: 'load',
      startedAt: startedAt.toISOString(),
      plan,
      runs,
      idle,
      durationSeconds: (Date.now() - startedAt.getTime()) / 1000,
    };
    const outPath = join(OUT_DIR, 'load.json');
    await writeFile(outPath, `${JSON.stringify(results, null, 2)}\n`);
    let written = outPath;
    if (plan.out !== undefined) {
      const kept = await keepResult(ROOT_DIR, plan.out, {
        date: startedAt.toISOString(),
        machine,
        command: `node --import tsx bench/load.ts ${process.argv.slice(2).join(' ')}`.trim(),
        result: results,
      });
      written += ` and ${kept}`;
    }
    process.stdout.write(`${renderTable(runs, idle, plan.threads)}\n\nresults: ${written}\n`);
    const hoistErrors = runs.filter((r) => r.mirror === 'hoist').reduce((n, r) => n + r.errors, 0);
    if (hoistErrors > 0) {
      process.stderr.write(`load: hoist had ${hoistErrors} errors (non-2xx answers or socket errors)\n`);
      process.exitCode = 1;
    }
  } finally {
    await upstream.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`load: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
