// Scenarios 2 and 3: many clients at once on a blob the mirror does not hold yet. Measures the
// wall time until every client has it, what the mirror fetched from upstream, and its memory.
import type { RegistryPeer } from '../test/helpers/registry.js';
import type { BlobInfo } from './blobs.js';
import { checkResults, download, downloadAndHash, runClients } from './clients.js';
import type { CpuTime, MemoryReport } from './proc-stats.js';
import { cpuSince, readCpuTime, RssSampler } from './proc-stats.js';
import type { MirrorName, MirrorUnderTest } from './mirrors.js';
import { blobUrl } from './mirrors.js';
import { upstreamRequests, waitFor, waitForQuiet } from './stats.js';

export interface ColdPullResult {
  mirror: MirrorName;
  blobBytes: number;
  clients: number;
  /** Whether each client's body went through sha256sum. */
  checksummed: boolean;
  /** From starting the clients until the last one exited. */
  wallSeconds: number;
  clientsOk: number;
  upstreamGets: number;
  upstreamHeads: number;
  /** Body bytes of the upstream's GETs of this blob, from its access log. */
  upstreamBytes: number;
  /** upstreamBytes ÷ blob size. */
  upstreamRatio: number;
  /** hoist_mirror_upstream_bytes_total, for hoist. */
  mirrorMetricUpstreamBytes?: number;
  memory: MemoryReport;
  /** CPU time the mirror process used while the clients ran. */
  cpu: CpuTime;
  problems: string[];
}

export interface ColdPullOptions {
  mirror: MirrorUnderTest;
  upstream: RegistryPeer;
  repo: string;
  blob: BlobInfo;
  clients: number;
  checksum: boolean;
}

/** Upstream requests may trail the clients (a background store); wait this long for quiet. */
const UPSTREAM_QUIET_MS = 2_000;
const SETTLE_TIMEOUT_MS = 600_000;

export async function coldPull(opts: ColdPullOptions): Promise<ColdPullResult> {
  const { mirror, blob } = opts;
  const problems: string[] = [];
  if (upstreamRequests(opts.upstream, blob.digest).length > 0) {
    problems.push(`upstream had requests for ${blob.digest} before the run: not cold`);
  }
  const url = blobUrl(mirror, opts.repo, blob.digest);
  const sampler = new RssSampler(mirror.pid);
  await sampler.begin();
  const cpuBefore = await readCpuTime(mirror.pid);
  const { results, wallSeconds } = await runClients(opts.clients, () =>
    opts.checksum ? downloadAndHash(url) : download(url),
  );
  const cpu = cpuSince(cpuBefore, await readCpuTime(mirror.pid));
  const memory = await sampler.end();
  const clientProblems = checkResults(results, blob.sizeBytes, opts.checksum ? blob.hex : undefined);
  problems.push(...clientProblems.map((p) => `${mirror.name}: ${p}`));

  try {
    await waitFor(
      `${mirror.name} to store ${blob.digest}`,
      () => mirror.isStored(blob.hex),
      SETTLE_TIMEOUT_MS,
    );
    await waitForQuiet(
      () => upstreamRequests(opts.upstream, blob.digest).length,
      UPSTREAM_QUIET_MS,
      SETTLE_TIMEOUT_MS,
    );
  } catch (err) {
    problems.push(`${mirror.name}: ${String(err)}`);
  }
  const requests = upstreamRequests(opts.upstream, blob.digest);
  const getEntries = requests.filter((e) => e.method === 'GET');
  const upstreamBytes = getEntries.reduce((sum, e) => sum + e.bytes, 0);
  const metric = await mirror.upstreamBytesMetric().catch(() => undefined);
  return {
    mirror: mirror.name,
    blobBytes: blob.sizeBytes,
    clients: opts.clients,
    checksummed: opts.checksum,
    wallSeconds,
    clientsOk: results.filter(
      (r) => checkResults([r], blob.sizeBytes, opts.checksum ? blob.hex : undefined).length === 0,
    ).length,
    upstreamGets: getEntries.length,
    upstreamHeads: requests.filter((e) => e.method === 'HEAD').length,
    upstreamBytes,
    upstreamRatio: upstreamBytes / blob.sizeBytes,
    ...(metric !== undefined ? { mirrorMetricUpstreamBytes: metric } : {}),
    memory,
    cpu,
    problems,
  };
}
