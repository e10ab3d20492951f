// Hoist's mirror against distribution's pull-through proxy (docker-registry 2.8), one run, same
// machine, same blobs. `npm run bench` (full) or `npm run bench -- --quick` (small blobs).
// Writes bench/out/results.json and prints a table; see BENCHMARKS.md for what is measured.
import { mkdir, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findBinary, removeTempDir, tempDir } from '../test/helpers/peers.js';
import type { RegistryPeer } from '../test/helpers/registry.js';
import { startRegistry } from '../test/helpers/registry.js';
import type { BlobInfo } from './blobs.js';
import { makeUpstreamBlob, MiB } from './blobs.js';
import type { ColdPullResult } from './cold-pull.js';
import { coldPull } from './cold-pull.js';
import type { MirrorName, MirrorUnderTest } from './mirrors.js';
import { MIRROR_NAMES, requireHoistBuild, ROOT_DIR, startHoist, startRegistryProxy } from './mirrors.js';
import type { BenchResults } from './report.js';
import { describeMachine, evaluateTargets, keepResult, renderTable } from './report.js';
import { measureThroughput } from './throughput.js';

const USAGE = `usage: npm run bench -- [--quick] [--repetitions N] [--cpu-prof]
  --quick          64 MiB blobs for throughput and fan-out, 256 MiB for memory (default 512 MiB / 2 GiB)
  --repetitions N  repetitions of each throughput measurement (default 5, 3 with --quick)
  --cpu-prof       run the hoist mirror under node --cpu-prof; profiles go to bench/out/prof/
  --out NAME       also keep the results as bench/results/NAME.json (commit, machine, command)`;

interface Plan {
  quick: boolean;
  throughputBlobBytes: number;
  fanOutBlobBytes: number;
  fanOutClients: number;
  memoryBlobBytes: number;
  memoryClients: number;
  throughputClients: number[];
  repetitions: number;
  cpuProf: boolean;
  /** Also keep the results as bench/results/<out>.json (with commit, machine and command). */
  out: string | undefined;
}

const REPO = 'bench/blob';
const OUT_DIR = join(ROOT_DIR, 'bench', 'out');

function parsePlan(argv: string[]): Plan {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      repetitions: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick;
  const repetitions = values.repetitions === undefined ? (quick ? 3 : 5) : Number(values.repetitions);
  if (!Number.isInteger(repetitions) || repetitions < 1)
    throw new Error(`--repetitions: not a positive integer`);
  return {
    quick,
    throughputBlobBytes: (quick ? 64 : 512) * MiB,
    fanOutBlobBytes: (quick ? 64 : 512) * MiB,
    fanOutClients: 16,
    memoryBlobBytes: (quick ? 256 : 2048) * MiB,
    memoryClients: 8,
    throughputClients: [1, 8],
    repetitions,
    cpuProf: values['cpu-prof'],
    out: values.out,
  };
}

function progress(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

/** Fails early when the temp file system cannot hold every copy the run makes. */
async function checkDisk(dir: string, plan: Plan): Promise<void> {
  const perCopy = plan.throughputBlobBytes + 2 * plan.fanOutBlobBytes + 2 * plan.memoryBlobBytes;
  // The upstream holds every blob, each mirror one copy of what it pulled, plus one file in flight.
  const needed = 2 * perCopy + plan.memoryBlobBytes;
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  if (free < needed * 1.2) {
    throw new Error(
      `${dir} has ${(free / 2 ** 30).toFixed(1)} GiB free; the run needs about ${(needed / 2 ** 30).toFixed(1)} GiB`,
    );
  }
}

/** Starts a mirror, runs `body` against it and always stops it (which deletes its storage). */
async function withMirror<T>(
  start: () => Promise<MirrorUnderTest>,
  body: (m: MirrorUnderTest) => Promise<T>,
): Promise<T> {
  const mirror = await start();
  try {
    return await body(mirror);
  } finally {
    await mirror.stop();
  }
}

/** The three scenarios against one running upstream; blob files are made in `blobDir`. */
async function runScenarios(
  plan: Plan,
  upstream: RegistryPeer,
  blobDir: string,
): Promise<Omit<BenchResults, 'startedAt' | 'quick' | 'machine' | 'durationSeconds'>> {
  const nodeArgs = plan.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(OUT_DIR, 'prof')] : [];
  const starters = (label: string): Record<MirrorName, () => Promise<MirrorUnderTest>> => ({
    hoist: () => startHoist({ upstream, logPath: join(OUT_DIR, `hoist-${label}.log`), nodeArgs }),
    'docker-registry': () => startRegistryProxy(upstream),
  });
  const blob = (name: string, bytes: number): Promise<BlobInfo> => {
    progress(`generating and pushing ${name} (${bytes / MiB} MiB)`);
    return makeUpstreamBlob(blobDir, name, bytes, upstream.url, REPO);
  };

  // 1. Cached throughput: both mirrors run side by side and take turns.
  const cachedBlob = await blob('cached', plan.throughputBlobBytes);
  const start = starters('throughput');
  const throughput = await withMirror(start.hoist, (hoist) =>
    withMirror(start['docker-registry'], (proxy) =>
      measureThroughput({
        mirrors: [hoist, proxy],
        upstream,
        repo: REPO,
        blob: cachedBlob,
        clientCounts: plan.throughputClients,
        repetitions: plan.repetitions,
        progress,
      }),
    ),
  );

  // 2. and 3. Cold pulls: a fresh mirror and a blob of its own for each, one mirror at a time.
  const cold = async (label: string, bytes: number, clients: number, checksum: boolean) => {
    const out = {} as Record<MirrorName, ColdPullResult>;
    for (const name of MIRROR_NAMES) {
      const b = await blob(`${label}-${name}`, bytes);
      progress(`${label}: ${clients} clients on a cold ${bytes / MiB} MiB blob through ${name}`);
      const r = await withMirror(starters(label)[name], (mirror) =>
        coldPull({ mirror, upstream, repo: REPO, blob: b, clients, checksum }),
      );
      const peak = Math.max(r.memory.hwmBytes, r.memory.peakSampledRssBytes);
      progress(
        `${name}: ${r.wallSeconds.toFixed(2)} s, upstream ${r.upstreamRatio.toFixed(2)}x, ` +
          `peak RSS ${(peak / MiB).toFixed(0)} MiB`,
      );
      out[name] = r;
    }
    return out;
  };
  const coldFanOut = await cold('fan-out', plan.fanOutBlobBytes, plan.fanOutClients, true);
  const coldMemory = await cold('memory', plan.memoryBlobBytes, plan.memoryClients, false);
  return { throughput, coldFanOut, coldMemory, targets: evaluateTargets(throughput, coldFanOut, coldMemory) };
}

async function main(): Promise<void> {
  const plan = parsePlan(process.argv.slice(2));
  for (const bin of ['docker-registry', 'curl', 'sha256sum', 'bash']) {
    if (findBinary(bin) === undefined) {
      throw new Error(`${bin} is not installed (scripts/install-peers.sh installs it)`);
    }
  }
  await requireHoistBuild();
  const startedAt = new Date();
  const machine = await describeMachine();
  const blobDir = await tempDir('hoist-bench-blobs');
  let upstream: RegistryPeer | undefined;
  try {
    await checkDisk(blobDir, plan);
    await mkdir(OUT_DIR, { recursive: true });
    upstream = await startRegistry();
    progress(`upstream docker-registry at ${upstream.url}`);
    const measured = await runScenarios(plan, upstream, blobDir);
    const results: BenchResults = {
      startedAt: startedAt.toISOString(),
      quick: plan.quick,
      machine,
      ...measured,
      durationSeconds: (Date.now() - startedAt.getTime()) / 1000,
    };
    const outPath = join(OUT_DIR, 'results.json');
    await writeFile(outPath, `${JSON.stringify(results, null, 2)}\n`);
    let written = outPath;
    if (plan.out !== undefined) {
      const kept = await keepResult(ROOT_DIR, plan.out, {
        date: startedAt.toISOString(),
        machine,
        command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
        result: results,
      });
      written += ` and ${kept}`;
    }
    process.stdout.write(`${renderTable(results)}\n\nresults: ${written}\n`);
  } finally {
    await upstream?.stop();
    await removeTempDir(blobDir);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
