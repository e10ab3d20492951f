// A cold rollout to N nodes at the same moment, on hosts in network namespaces with tbf-shaped
// links (test/helpers/netns.ts): one docker-registry upstream, N nodes each pulling a multi-layer
// image with skopeo, and the ways of getting it there (bench/peers-modes.ts): straight from the
// upstream, through one shared zonal Hoist mirror, (next) Hoist peers, Spegel. Per round: blob
// bytes the upstream sent (its access log), time until the last node is done, each node's time,
// whether every node's copy is byte-identical to the image, and the CPU the round used (every
// mirror, registry and client process, and the machine's busy time: bench/cpu-account.ts), so
// that a slow round can be told CPU-bound from link-bound. Root only.
//
//   node --import tsx bench/peers.ts            # 300 MB image, 2, 4 and 8 nodes; bench/results/peers.json
//   node --import tsx bench/peers.ts --quick    # 40 MB image, 2 and 4 nodes; bench/out/peers-quick.json
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { BuiltImage } from '../test/helpers/images.js';
import { buildImage, fileDigest, pushImage, skopeoCopyToDir } from '../test/helpers/images.js';
import type { HostSpec, NetnsHost, Topology } from '../test/helpers/netns.js';
import { createTopology, netnsUnavailable } from '../test/helpers/netns.js';
import { findBinary, removeTempDir, tempDir } from '../test/helpers/peers.js';
import type { RegistryPeer } from '../test/helpers/registry.js';
import { startRegistry } from '../test/helpers/registry.js';
import { requireHoistBuild, ROOT_DIR } from './mirrors.js';
import type { BenchMode, LinkPlan, ModeName } from './peers-modes.js';
import { MODES } from './peers-modes.js';
import { cpuSince, markCpu, type RoundCpu } from './cpu-account.js';
import { resultJson } from './report.js';
import type { BlobGet, NodeDiagnostics } from './peers-diagnostics.js';
import { describe, diagnoseNode, upstreamGetsByBlob } from './peers-diagnostics.js';

const USAGE = `usage: node --import tsx bench/peers.ts [--quick] [--nodes 2,4,8] [--modes direct,zonal,peers]
    [--layers-mb 100,80,50,40,20,10] [--rate 200] [--node-mbit N] [--upstream-mbit N] [--mirror-mbit N] [--out FILE]
    [--repeat N] [--keep-logs DIR] [--mirror-arg=--FLAG=VALUE ...]
  --quick        layers 16,12,8,4 MB and nodes 2,4; writes bench/out/peers-quick.json
  --rate         every link's rate in Mbit/s, each way (default 200); the --*-mbit flags override one kind
  --modes        any of direct, zonal, peers, spegel (modes that cannot run yet are recorded as such)
  --mirror-mbit  the zonal mirror's link; default: the same as a node's (every machine one NIC)
  --repeat       run each round N times (the single-node reference once): timing-sensitive effects
  --keep-logs    write each peer mirror's JSON log to DIR/<mode>-<nodes>-<run>-<node>.log
  --mirror-arg   one more flag for every peer mirror, e.g. --mirror-arg=--peer-min-bytes-per-second=0`;

const MB = 1_000_000;
const REPO = 'bench/peers';
const TAG = 'v1';

interface Plan {
  quick: boolean;
  nodeCounts: number[];
  modes: BenchMode[];
  layerBytes: number[];
  links: LinkPlan;
  out: string;
  repeat: number;
  keepLogs: string | undefined;
  mirrorArgs: string[];
}

function numbers(flag: string, value: string): number[] {
  const list = value.split(',').map(Number);
  if (list.length === 0 || list.some((n) => !(n > 0)))
    throw new Error(`--${flag}: give positive numbers, e.g. 2,4,8`);
  return list;
}

function positive(flag: string, value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new Error(`--${flag}: give a positive number of Mbit/s, got '${value}'`);
  return n;
}

function parsePlan(argv: string[]): Plan {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      nodes: { type: 'string' },
      modes: { type: 'string', default: 'direct,zonal,peers' },
      'layers-mb': { type: 'string' },
      rate: { type: 'string', default: '200' },
      'node-mbit': { type: 'string' },
      'upstream-mbit': { type: 'string' },
      'mirror-mbit': { type: 'string' },
      out: { type: 'string' },
      repeat: { type: 'string', default: '1' },
      'keep-logs': { type: 'string' },
      'mirror-arg': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick;
  const modes = values.modes.split(',').map((m) => {
    const mode = MODES[m as ModeName];
    if (mode === undefined) throw new Error(`--modes: unknown mode '${m}' (direct, zonal, peers, spegel)`);
    return mode;
  });
  const rate = positive('rate', values.rate);
  const nodeMbit = positive('node-mbit', values['node-mbit'] ?? String(rate));
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1)
    throw new Error(`--repeat: give a whole number >= 1, got '${values.repeat}'`);
  const defaultLayers = quick ? '16,12,8,4' : '100,80,50,40,20,10';
  return {
    quick,
    nodeCounts: numbers('nodes', values.nodes ?? (quick ? '2,4' : '2,4,8')),
    modes,
    layerBytes: numbers('layers-mb', values['layers-mb'] ?? defaultLayers).map((mb) => Math.round(mb * MB)),
    links: {
      nodeMbit,
      upstreamMbit: positive('upstream-mbit', values['upstream-mbit'] ?? String(rate)),
      mirrorMbit: positive('mirror-mbit', values['mirror-mbit'] ?? String(nodeMbit)),
    },
    repeat,
    keepLogs: values['keep-logs'],
    mirrorArgs: values['mirror-arg'],
    out:
      values.out ??
      join(ROOT_DIR, 'bench', quick ? 'out' : 'results', quick ? 'peers-quick.json' : 'peers.json'),
  };
}

function progress(line: string): void {
  process.stderr.write(`[peers] ${line}\n`);
}

export interface RoundResult {
  mode: ModeName;
  nodes: number;
  /** From the common start to the last node's skopeo exit. */
  lastNodeSeconds: number;
  nodeSeconds: number[];
  /** Blob bytes the upstream's access log shows sent (GET, 200/206), and those GETs. */
  upstreamBlobBytes: number;
  upstreamBlobGets: number;
  /** upstreamBlobBytes ÷ the image's blob bytes: 1 means each blob crossed once. */
  upstreamCopies: number;
  /** How often the most-fetched blob was sent. */
  maxGetsOfOneBlob: number;
  /** Of upstreamBlobGets, the ranged ones (206): the rest of a blob after a switch or a resume. */
  rangedUpstreamGets: number;
  /** Every upstream blob GET, per blob (first 12 hex digits): which node, 200 or 206, bytes. */
  upstreamGetsByBlob: Record<string, BlobGet[]>;
  /** Packets each host's tbf dropped during the round, per direction: a full link queue. */
  linkDrops: Record<string, { up: number; down: number }>;
  /** Per node, its own mirror's peer counters and peer log events (modes with a mirror per node). */
  perNode?: NodeDiagnostics[];
  /** Bytes the upstream's tbf sent during the round (includes headers and TCP). */
  upstreamLinkBytes: number;
  /** Every node holds every blob of the image, each file's sha256 equal to its name. */
  identical: boolean;
  /** CPU over the pulls: processes by command, the machine's busy fraction (bench/cpu-account.ts). */
  cpu: RoundCpu;
  /** lastNodeSeconds ÷ the single-node direct time of the same run. */
  slowestVsSingleNode?: number;
  notes: Record<string, unknown>;
}

interface Ctx {
  topology: Topology;
  upstream: RegistryPeer;
  upstreamHost: NetnsHost;
  image: BuiltImage;
  imageBlobBytes: number;
  workDir: string;
}

/** Distribution logs a request after its response is complete: a marker request, then its line. */
let markers = 0;
async function settleAccessLog(ctx: Ctx): Promise<void> {
  const mark = `mark=${++markers}`;
  await ctx.upstreamHost.run('curl', ['-s', '-o', '/dev/null', `${ctx.upstream.url}/v2/?${mark}`]);
  await ctx.upstream.waitForAccess((e) => e.query === mark, 10_000);
}

/** Every blob of the image is in the node's copy, and every file named by a digest hashes to it. */
async function verifyCopy(dir: string, image: BuiltImage): Promise<boolean> {
  const files = new Set(await readdir(dir));
  const m = image.manifests[0];
  if (m === undefined) return false;
  if ((await fileDigest(join(dir, 'manifest.json'))) !== m.manifest.digest) return false;
  for (const d of [m.config.digest, ...m.layers.map((l) => l.digest)]) {
    const hex = d.slice('sha256:'.length);
    if (!files.has(hex) || (await fileDigest(join(dir, hex))) !== d) return false;
  }
  return true;
}

interface RoundOptions {
  links: LinkPlan;
  mirrorArgs?: readonly string[];
  /** Where to keep the mirrors' logs, and this round's run number for their names. */
  keepLogs?: { dir: string; run: number } | undefined;
}

async function round(ctx: Ctx, mode: BenchMode, n: number, opts: RoundOptions): Promise<RoundResult> {
  const { links } = opts;
  const nodes = Array.from({ length: n }, (_, i) => ctx.topology.host(`node${i + 1}`));
  const running = await mode.start({
    topology: ctx.topology,
    upstream: ctx.upstream,
    nodes,
    logDir: ctx.workDir,
    mirrorArgs: opts.mirrorArgs ?? [],
  });
  const outDirs = nodes.map((node) => join(ctx.workDir, `${mode.name}-${n}-${node.name}`));
  try {
    await settleAccessLog(ctx);
    const mark = ctx.upstream.accessLog().length;
    const linkBefore = (await ctx.upstreamHost.tbfStats('up'))?.sentBytes ?? 0;
    progress(`${mode.name}: ${n} node(s) pull ${(ctx.imageBlobBytes / MB).toFixed(0)} MB at once`);
    const dropHosts = [ctx.upstreamHost, ...nodes];
    const dropsBefore = await Promise.all(dropHosts.map((h) => linkDrops(h)));
    const cpuMark = await markCpu();
    const startMs = Date.now();
    const start = performance.now();
    const nodeSeconds = await Promise.all(
      nodes.map(async (node, i) => {
        const src = `docker://${running.sourceFor(node)}/${REPO}:${TAG}`;
        await skopeoCopyToDir(src, outDirs[i] ?? '', { command: node.command, timeoutMs: 1_800_000 });
        return (performance.now() - start) / 1000;
      }),
    );
    const lastNodeSeconds = Math.max(...nodeSeconds);
    // Read while the mode's servers still run: their time is in /proc only while they live.
    const cpu = await cpuSince(cpuMark);
    const dropsAfter = await Promise.all(dropHosts.map((h) => linkDrops(h)));
    const drops: RoundResult['linkDrops'] = {};
    for (const [i, h] of dropHosts.entries()) {
      const [b, a] = [dropsBefore[i], dropsAfter[i]] as [
        { up: number; down: number },
        { up: number; down: number },
      ];
      drops[h.name] = { up: a.up - b.up, down: a.down - b.down };
    }
    const nodeByAddress = new Map(nodes.map((node) => [node.address, node.name]));
    const nodeByUrl = new Map(
      (running.nodeMirrors ?? []).map((m) => [m.url.replace(/\/$/, ''), m.node.name] as const),
    );
    const perNode = running.nodeMirrors
      ? await Promise.all(running.nodeMirrors.map((m) => diagnoseNode(m, startMs, nodeByUrl)))
      : undefined;
    if (opts.keepLogs && running.nodeMirrors) {
      const { dir, run } = opts.keepLogs;
      await mkdir(dir, { recursive: true });
      for (const m of running.nodeMirrors)
        await writeFile(join(dir, `${mode.name}-${n}-${run}-${m.node.name}.log`), m.stderr());
    }
    await settleAccessLog(ctx);
    const linkAfter = (await ctx.upstreamHost.tbfStats('up'))?.sentBytes ?? 0;
    const gets = ctx.upstream
      .accessLog()
      .slice(mark)
      .filter(
        (e) =>
          e.method === 'GET' && /\/blobs\/sha256:/.test(e.path) && (e.status === 200 || e.status === 206),
      );
    const perBlob = new Map<string, number>();
    for (const g of gets) perBlob.set(g.path, (perBlob.get(g.path) ?? 0) + 1);
    const upstreamBlobBytes = gets.reduce((s, g) => s + g.bytes, 0);
    let identical = true;
    for (const d of outDirs) identical &&= await verifyCopy(d, ctx.image);
    const r: RoundResult = {
      mode: mode.name,
      nodes: n,
      lastNodeSeconds,
      nodeSeconds,
      upstreamBlobBytes,
      upstreamBlobGets: gets.length,
      upstreamCopies: upstreamBlobBytes / ctx.imageBlobBytes,
      maxGetsOfOneBlob: Math.max(0, ...perBlob.values()),
      linkDrops: drops,
      rangedUpstreamGets: gets.filter((g) => g.status === 206).length,
      upstreamGetsByBlob: upstreamGetsByBlob(gets, nodeByAddress),
      ...(perNode ? { perNode } : {}),
      upstreamLinkBytes: linkAfter - linkBefore,
      identical,
      cpu,
      notes: { ...running.notes, links },
    };
    progress(
      `${mode.name} ×${n}: last node ${lastNodeSeconds.toFixed(1)} s, upstream ${r.upstreamCopies.toFixed(2)} copies, ` +
        `identical ${identical}, processes ${cpu.processSeconds.toFixed(1)} CPU s, ` +
        `machine busy ${(cpu.machineBusyFraction * 100).toFixed(0)}%`,
    );
    // Direct pulls fetch every blob once per node by design: only the modes with mirrors are explained.
    for (const line of describe(perNode ?? [], perNode ? r.upstreamGetsByBlob : {})) progress(line);
    progress(
      `  tbf drops (up/down): ${Object.entries(drops)
        .map(([h, d]) => `${h} ${d.up}/${d.down}`)
        .join(', ')}`,
    );
    return r;
  } finally {
    await running.stop();
    for (const d of outDirs) await removeTempDir(d);
  }
}

async function linkDrops(host: NetnsHost): Promise<{ up: number; down: number }> {
  return {
    up: (await host.tbfStats('up'))?.drops ?? 0,
    down: (await host.tbfStats('down'))?.drops ?? 0,
  };
}

function hostsFor(plan: Plan): HostSpec[] {
  const { nodeMbit, upstreamMbit } = plan.links;
  const maxNodes = Math.max(1, ...plan.nodeCounts);
  const hosts: HostSpec[] = [{ name: 'upstream', rate: { upMbit: upstreamMbit, downMbit: upstreamMbit } }];
  const extra = new Map<string, HostSpec>();
  for (const m of plan.modes) for (const h of m.extraHosts(plan.links)) extra.set(h.name, h);
  hosts.push(...extra.values());
  for (let i = 1; i <= maxNodes; i++)
    hosts.push({ name: `node${i}`, rate: { upMbit: nodeMbit, downMbit: nodeMbit } });
  return hosts;
}

function describeMachine(): string {
  const os = execFileSync('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"'], {
    encoding: 'utf8',
  }).trim();
  return (
    `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
    `${os}, Linux ${release()}, Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)} at start`
  );
}

function gitCommit(): string {
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: ROOT_DIR,
    encoding: 'utf8',
  }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
    cwd: ROOT_DIR,
    encoding: 'utf8',
  }).trim();
  return dirty ? `${head}+dirty` : head;
}

async function main(): Promise<void> {
  const plan = parsePlan(process.argv.slice(2));
  const reason = netnsUnavailable();
  if (reason !== undefined) throw new Error(`${reason}; run as root on a machine with iproute2`);
  for (const bin of ['docker-registry', 'skopeo', 'curl']) {
    if (findBinary(bin) === undefined)
      throw new Error(`${bin} is not installed (scripts/install-peers.sh installs it)`);
  }
  await requireHoistBuild();
  // Ctrl-C: exit through 'exit', where the netns helper deletes what is left.
  process.once('SIGINT', () => process.exit(130));

  const startedAt = new Date();
  const machine = describeMachine();
  const workDir = await tempDir('hoist-bench-peers');
  const topology = await createTopology({ prefix: 'hoist-bench', hosts: hostsFor(plan) });
  let upstream: RegistryPeer | undefined;
  try {
    const upstreamHost = topology.host('upstream');
    upstream = await startRegistry({ placement: upstreamHost.placement() });
    progress(`upstream docker-registry at ${upstream.url} in ${upstreamHost.netns}`);
    const image = await buildImage(join(workDir, 'layout'), {
      tag: TAG,
      gzipLevel: 0,
      layers: plan.layerBytes.map((size, i) => ({ files: [{ path: `data/layer-${i}.bin`, size }] })),
    });
    const m = image.manifests[0];
    if (m === undefined) throw new Error('image has no manifest');
    const imageBlobBytes = m.config.size + m.layers.reduce((s, l) => s + l.size, 0);
    // Pushed from the upstream's own host: its own address is local there, so the push is not shaped.
    await pushImage(image.dir, TAG, `${upstream.host}/${REPO}:${TAG}`, { command: upstreamHost.command });
    await removeTempDir(join(workDir, 'layout', 'blobs'));
    const ctx: Ctx = { topology, upstream, upstreamHost, image, imageBlobBytes, workDir };

    const reference = await round(ctx, MODES.direct, 1, { links: plan.links });
    const rounds: RoundResult[] = [];
    const unavailable: Record<string, string> = {};
    for (const n of plan.nodeCounts) {
      for (const mode of plan.modes) {
        if (mode.unavailable !== undefined) {
          unavailable[mode.name] = mode.unavailable;
          continue;
        }
        for (let run = 1; run <= plan.repeat; run++) {
          const r = await round(ctx, mode, n, {
            links: plan.links,
            mirrorArgs: plan.mirrorArgs,
            keepLogs: plan.keepLogs === undefined ? undefined : { dir: plan.keepLogs, run },
          });
          r.slowestVsSingleNode = r.lastNodeSeconds / reference.lastNodeSeconds;
          rounds.push(r);
        }
      }
    }
    const results = {
      commit: gitCommit(),
      date: startedAt.toISOString(),
      machine,
      command: `node --import tsx bench/peers.ts ${process.argv.slice(2).join(' ')}`.trim(),
      result: {
        benchmark: 'peers',
        quick: plan.quick,
        image: {
          digest: image.digest,
          blobBytes: imageBlobBytes,
          layerBytes: m.layers.map((l) => l.size),
        },
        links: plan.links,
        ...(plan.mirrorArgs.length > 0 ? { mirrorArgs: plan.mirrorArgs } : {}),
        singleNode: reference,
        rounds,
        unavailable,
        durationSeconds: (Date.now() - startedAt.getTime()) / 1000,
      },
    };
    await mkdir(join(plan.out, '..'), { recursive: true });
    await writeFile(plan.out, await resultJson(plan.out, results));
    process.stdout.write(`${renderTable(reference, rounds)}\nresults: ${plan.out}\n`);
  } finally {
    await upstream?.stop();
    await topology.destroy();
    await removeTempDir(workDir);
  }
}

function renderTable(reference: RoundResult, rounds: RoundResult[]): string {
  const rows = [reference, ...rounds].map((r) =>
    [
      r.mode.padEnd(7),
      String(r.nodes).padStart(5),
      r.lastNodeSeconds.toFixed(1).padStart(9),
      (r.upstreamBlobBytes / MB).toFixed(0).padStart(11),
      r.upstreamCopies.toFixed(2).padStart(7),
      `${r.upstreamBlobGets}/${r.rangedUpstreamGets}`.padStart(8),
      (r.slowestVsSingleNode ?? 1).toFixed(2).padStart(9),
      String(r.identical).padStart(9),
      r.cpu.processSeconds.toFixed(1).padStart(9),
      `${(r.cpu.machineBusyFraction * 100).toFixed(0)}%`.padStart(6),
    ].join(' '),
  );
  return [
    'mode    nodes   last s  upstream MB  copies  GETs/206  vs 1 node  identical  CPU s   busy',
    ...rows,
    `(GETs/206: upstream blob GETs, of them ranged; CPU s: user+system seconds of every mirror, registry and client process during the pulls;`,
    ` busy: the machine's busy share of its ${cpus().length} cores over the same time)`,
  ].join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench peers: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
