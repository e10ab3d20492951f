import { writeFile } from 'node:fs/promises';
import { format, resolveConfig } from 'prettier';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
// The results document (bench/out/results.json) and the table printed on stdout.
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { run } from '../test/helpers/process.js';
import type { ColdPullResult } from './cold-pull.js';
import type { MirrorName } from './mirrors.js';
import type { CpuTime } from './proc-stats.js';
import type { ThroughputResult } from './throughput.js';

export interface Machine {
  nproc: number;
  cpuModel: string;
  memoryBytes: number;
  kernel: string;
  node: string;
  dockerRegistry: string;
  curl: string;
  /** 1, 5 and 15 minute load averages when the run started: a busy machine skews every figure. */
  loadAverageAtStart: number[];
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args);
  return stdout.split('\n')[0]?.trim() ?? '';
}

export async function describeMachine(): Promise<Machine> {
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
    dockerRegistry: await firstLine('docker-registry', ['--version']),
    curl: await firstLine('curl', ['--version']),
    loadAverageAtStart: loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

export interface Target {
  name: string;
  met: boolean;
  detail: string;
}

export interface BenchResults {
  startedAt: string;
  quick: boolean;
  machine: Machine;
  throughput: ThroughputResult;
  coldFanOut: Record<MirrorName, ColdPullResult>;
  coldMemory: Record<MirrorName, ColdPullResult>;
  targets: Target[];
  durationSeconds: number;
}

const MiB = 1024 * 1024;

function size(bytes: number): string {
  return bytes >= 1024 * MiB ? `${bytes / 1024 / MiB} GiB` : `${bytes / MiB} MiB`;
}

function peakRss(r: ColdPullResult): number {
  return Math.max(r.memory.peakSampledRssBytes, r.memory.hwmBytes);
}

export function evaluateTargets(
  t: ThroughputResult,
  fan: Record<MirrorName, ColdPullResult>,
  mem: Record<MirrorName, ColdPullResult>,
): Target[] {
  const targets: Target[] = t.series.map((s) => {
    const ratio = s.medianMBps.hoist / s.medianMBps['docker-registry'];
    return {
      name: `cached throughput, ${s.clients} client(s): hoist >= docker-registry`,
      met: ratio >= 1,
      detail: `hoist ÷ docker-registry = ${ratio.toFixed(2)}`,
    };
  });
  const h = fan.hoist;
  targets.push({
    name: `cold fan-out: hoist fetches the blob from upstream exactly once (1.00x)`,
    met: h.upstreamBytes === h.blobBytes && h.upstreamGets === 1 && h.problems.length === 0,
    detail: `${h.upstreamGets} GET(s), ${h.upstreamRatio.toFixed(2)}x the blob, ${h.clientsOk}/${h.clients} clients verified`,
  });
  const rss = peakRss(mem.hoist);
  targets.push({
    name: `peak RSS: hoist under 200 MiB while ${mem.hoist.clients} clients pull a cold ${size(mem.hoist.blobBytes)} blob`,
    met: rss < 200 * MiB && mem.hoist.problems.length === 0,
    detail: `${(rss / MiB).toFixed(0)} MiB`,
  });
  return targets;
}

function cpuTotal(c: CpuTime): number {
  return c.userSeconds + c.systemSeconds;
}

/** "total (user+sys)", e.g. "1.16 (0.66+0.50)". */
function cpuText(c: CpuTime): string {
  return `${cpuTotal(c).toFixed(2)} (${c.userSeconds.toFixed(2)}+${c.systemSeconds.toFixed(2)})`;
}

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
}

function ratio(h: number, d: number, digits = 2): string {
  return d === 0 ? 'n/a' : (h / d).toFixed(digits);
}

export function renderTable(r: BenchResults): string {
  const rows: string[][] = [['measurement', 'hoist', 'docker-registry', 'hoist ÷ d-r']];
  const tb = size(r.throughput.blobBytes);
  for (const s of r.throughput.series) {
    const h = s.medianMBps.hoist;
    const d = s.medianMBps['docker-registry'];
    rows.push([
      `cached ${tb}, ${s.clients} client(s), MB/s (median of ${r.throughput.repetitions})`,
      h.toFixed(0),
      d.toFixed(0),
      ratio(h, d),
    ]);
  }
  for (const s of r.throughput.series) {
    const h = cpuTotal(s.medianCpuPerGiB.hoist);
    const d = cpuTotal(s.medianCpuPerGiB['docker-registry']);
    rows.push([
      `cached ${tb}, ${s.clients} client(s), mirror CPU s per GiB served`,
      cpuText(s.medianCpuPerGiB.hoist),
      cpuText(s.medianCpuPerGiB['docker-registry']),
      ratio(h, d),
    ]);
  }
  const fan = r.coldFanOut;
  const fb = size(fan.hoist.blobBytes);
  const fanLabel = `cold ${fb}, ${fan.hoist.clients} clients`;
  rows.push([
    `${fanLabel}: upstream bytes (x blob)`,
    fan.hoist.upstreamRatio.toFixed(2),
    fan['docker-registry'].upstreamRatio.toFixed(2),
    ratio(fan.hoist.upstreamRatio, fan['docker-registry'].upstreamRatio),
  ]);
  rows.push([
    `${fanLabel}: upstream GETs`,
    String(fan.hoist.upstreamGets),
    String(fan['docker-registry'].upstreamGets),
    ratio(fan.hoist.upstreamGets, fan['docker-registry'].upstreamGets),
  ]);
  rows.push([
    `${fanLabel}: wall time until all have it, s`,
    fan.hoist.wallSeconds.toFixed(2),
    fan['docker-registry'].wallSeconds.toFixed(2),
    ratio(fan.hoist.wallSeconds, fan['docker-registry'].wallSeconds),
  ]);
  rows.push([
    `${fanLabel}: mirror CPU s while clients ran`,
    cpuText(fan.hoist.cpu),
    cpuText(fan['docker-registry'].cpu),
    ratio(cpuTotal(fan.hoist.cpu), cpuTotal(fan['docker-registry'].cpu)),
  ]);
  rows.push([
    `${fanLabel}: clients with the right sha256`,
    `${fan.hoist.clientsOk}/${fan.hoist.clients}`,
    `${fan['docker-registry'].clientsOk}/${fan['docker-registry'].clients}`,
    '',
  ]);
  rows.push([
    `${fanLabel}: peak RSS, MiB`,
    (peakRss(fan.hoist) / MiB).toFixed(0),
    (peakRss(fan['docker-registry']) / MiB).toFixed(0),
    ratio(peakRss(fan.hoist), peakRss(fan['docker-registry'])),
  ]);
  const mem = r.coldMemory;
  const memLabel = `cold ${size(mem.hoist.blobBytes)}, ${mem.hoist.clients} clients`;
  rows.push([
    `${memLabel}: peak RSS, MiB`,
    (peakRss(mem.hoist) / MiB).toFixed(0),
    (peakRss(mem['docker-registry']) / MiB).toFixed(0),
    ratio(peakRss(mem.hoist), peakRss(mem['docker-registry'])),
  ]);
  rows.push([
    `${memLabel}: wall time, s`,
    mem.hoist.wallSeconds.toFixed(2),
    mem['docker-registry'].wallSeconds.toFixed(2),
    ratio(mem.hoist.wallSeconds, mem['docker-registry'].wallSeconds),
  ]);
  rows.push([
    `${memLabel}: upstream bytes (x blob)`,
    mem.hoist.upstreamRatio.toFixed(2),
    mem['docker-registry'].upstreamRatio.toFixed(2),
    ratio(mem.hoist.upstreamRatio, mem['docker-registry'].upstreamRatio),
  ]);

  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((cells) => (cells[i] ?? '').length))) ?? [];
  const lines = rows.map((cells) => row(cells, widths));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  lines.push('', 'targets:');
  for (const t of r.targets) lines.push(`  [${t.met ? 'met' : 'MISSED'}] ${t.name}: ${t.detail}`);
  const problems = [
    ...r.throughput.problems,
    ...Object.values(r.coldFanOut).flatMap((c) => c.problems),
    ...Object.values(r.coldMemory).flatMap((c) => c.problems),
  ];
  if (problems.length > 0) lines.push('', 'problems:', ...problems.map((p) => `  ${p}`));
  return lines.join('\n');
}

/** The commit a result was measured on; `+uncommitted` when tracked files differ from it. */
export function gitCommit(root: string): string {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: root,
      encoding: 'utf8',
    }).trim();
    return dirty ? `${commit}+uncommitted` : commit;
  } catch {
    return 'unknown';
  }
}

/** Writes `bench/results/NAME.json` in the shape every kept result has: commit, date, machine, command, result. */
export async function keepResult(
  root: string,
  name: string,
  doc: { date: string; machine: unknown; command: string; result: unknown },
): Promise<string> {
  if (!/^[A-Za-z0-9._-]+$/.test(name))
    throw new Error(`--out: "${name}" must be a plain file name (letters, digits, . _ -)`);
  const path = join(root, 'bench', 'results', `${name}.json`);
  await writeFile(path, await resultJson(path, { commit: gitCommit(root), ...doc }));
  return path;
}

/**
 * JSON as the repository's formatter writes it: results are committed under bench/results/, and
 * `prettier --check .` (the test command's lint step) fails on JSON.stringify's layout.
 */
export async function resultJson(path: string, value: unknown): Promise<string> {
  const options = (await resolveConfig(path)) ?? {};
  return format(JSON.stringify(value, null, 2), { ...options, filepath: path });
}
