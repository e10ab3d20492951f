// Scenario 1: a cached blob served to 1 and to N concurrent clients, each downloading all of it.
import type { RegistryPeer } from '../test/helpers/registry.js';
import type { BlobInfo } from './blobs.js';
import { checkResults, download, downloadAndHash, runClients } from './clients.js';
import type { MirrorName, MirrorUnderTest } from './mirrors.js';
import { blobUrl } from './mirrors.js';
import type { CpuTime } from './proc-stats.js';
import { cpuSince, readCpuTime } from './proc-stats.js';
import { median, upstreamRequests, waitFor } from './stats.js';

export interface ThroughputSeries {
  clients: number;
  /** Aggregate MB/s (10^6 bytes/s: bytes received by all clients ÷ wall time) of each repetition. */
  runsMBps: Record<MirrorName, number[]>;
  medianMBps: Record<MirrorName, number>;
  /** CPU time of the mirror process per GiB served (user and system), median over the repetitions. */
  medianCpuPerGiB: Record<MirrorName, CpuTime>;
}

export interface ThroughputResult {
  blobBytes: number;
  repetitions: number;
  series: ThroughputSeries[];
  /** Upstream GETs of the blob after the cache was warm (expected 0: every run is a cache hit). */
  upstreamGetsWhileCached: Record<MirrorName, number>;
  problems: string[];
}

export interface ThroughputOptions {
  mirrors: MirrorUnderTest[];
  upstream: RegistryPeer;
  repo: string;
  blob: BlobInfo;
  clientCounts: number[];
  repetitions: number;
  progress: (line: string) => void;
}

export async function measureThroughput(opts: ThroughputOptions): Promise<ThroughputResult> {
  const { blob, repo } = opts;
  const problems: string[] = [];
  const gets = () => upstreamRequests(opts.upstream, blob.digest).filter((e) => e.method === 'GET').length;

  for (const mirror of opts.mirrors) {
    opts.progress(`warming ${mirror.name} with one full GET`);
    const warm = await downloadAndHash(blobUrl(mirror, repo, blob.digest));
    for (const p of checkResults([warm], blob.sizeBytes, blob.hex)) {
      problems.push(`${mirror.name} warm-up ${p}`);
    }
    // distribution stores the blob in a goroutine beside the response: wait until it is local.
    await waitFor(`${mirror.name} to store ${blob.digest}`, () => mirror.isStored(blob.hex), 300_000);
  }
  const cachedGets = new Map(opts.mirrors.map((m) => [m.name, 0]));
  const baseline = gets();

  const series: ThroughputSeries[] = [];
  for (const clients of opts.clientCounts) {
    const runsMBps = { hoist: [], 'docker-registry': [] } as Record<MirrorName, number[]>;
    const runsCpu = { hoist: [], 'docker-registry': [] } as Record<MirrorName, CpuTime[]>;
    for (let rep = 1; rep <= opts.repetitions; rep++) {
      // Alternate the mirrors within each repetition so that drift affects both alike.
      for (const mirror of opts.mirrors) {
        const before = gets();
        const url = blobUrl(mirror, repo, blob.digest);
        const cpuBefore = await readCpuTime(mirror.pid);
        const { results, wallSeconds } = await runClients(clients, () => download(url));
        const cpu = cpuSince(cpuBefore, await readCpuTime(mirror.pid));
        cachedGets.set(mirror.name, (cachedGets.get(mirror.name) ?? 0) + gets() - before);
        for (const p of checkResults(results, blob.sizeBytes)) {
          problems.push(`${mirror.name} ${clients} clients rep ${rep}: ${p}`);
        }
        const bytes = results.reduce((sum, r) => sum + r.bytes, 0);
        const mbps = bytes / wallSeconds / 1e6;
        runsMBps[mirror.name].push(mbps);
        const gib = bytes / 2 ** 30;
        runsCpu[mirror.name].push({
          userSeconds: cpu.userSeconds / gib,
          systemSeconds: cpu.systemSeconds / gib,
        });
        opts.progress(`${mirror.name}, ${clients} client(s), rep ${rep}: ${mbps.toFixed(0)} MB/s`);
      }
    }
    series.push({
      clients,
      runsMBps,
      medianMBps: { hoist: median(runsMBps.hoist), 'docker-registry': median(runsMBps['docker-registry']) },
      medianCpuPerGiB: {
        hoist: medianCpu(runsCpu.hoist),
        'docker-registry': medianCpu(runsCpu['docker-registry']),
      },
    });
  }
  if (gets() !== baseline) problems.push(`upstream saw ${gets() - baseline} GETs while the blob was cached`);
  return {
    blobBytes: blob.sizeBytes,
    repetitions: opts.repetitions,
    series,
    upstreamGetsWhileCached: {
      hoist: cachedGets.get('hoist') ?? 0,
      'docker-registry': cachedGets.get('docker-registry') ?? 0,
    },
    problems,
  };
}

function medianCpu(runs: CpuTime[]): CpuTime {
  return {
    userSeconds: median(runs.map((r) => r.userSeconds)),
    systemSeconds: median(runs.map((r) => r.systemSeconds)),
  };
}
