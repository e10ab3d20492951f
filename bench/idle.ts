// Idle memory: the RSS of a mirror just started, before any request, Hoist (`node bin/hoist.js
// mirror`) beside distribution's pull-through proxy (docker-registry 2.8), each started --starts
// times on fresh storage; medians are reported. Each start is read twice: --settle-seconds after it
// printed that it listens (what bench/load.ts reports as idle RSS), and --later-seconds after, once
// V8's memory reducer has had its chance to give back the young generation that start-up grew (it
// runs after about 8 s without allocation). VmRSS is split into RssAnon (the process's own memory)
// and RssFile (pages of the node binary and libraries, shared with every other process that maps
// them and dropped by the kernel under pressure), from /proc/PID/status.
//
//   node --import tsx bench/idle.ts                      # 5 starts, read at 2 s and 30 s
//   node --import tsx bench/idle.ts --node-options '--max-semi-space-size=1'   # hoist under node flags
//   node --import tsx bench/idle.ts --out idle           # also bench/results/idle.json
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findBinary } from '../test/helpers/peers.js';
import { startRegistry } from '../test/helpers/registry.js';
import type { MirrorName, MirrorUnderTest } from './mirrors.js';
import { requireHoistBuild, ROOT_DIR, startHoist, startRegistryProxy } from './mirrors.js';
import { describeMachine, keepResult } from './report.js';

const USAGE = `usage: node --import tsx bench/idle.ts [--starts N] [--settle-seconds S] [--later-seconds S]
       [--node-options FLAGS] [--out NAME]
  --starts N          starts of each mirror (default 5); medians are reported
  --settle-seconds S  first reading, S seconds after "listening" (default 2, as bench/load.ts)
  --later-seconds S   second reading (default 30); 0 skips it
  --node-options F    node flags for hoist's process, space-separated (default none)
  --out NAME          also write bench/results/NAME.json (commit, machine, command, results)`;

const OUT_DIR = join(ROOT_DIR, 'bench', 'out');

interface Plan {
  starts: number;
  settleSeconds: number;
  laterSeconds: number;
  nodeArgs: string[];
  out: string | undefined;
}

/** One reading of /proc/PID/status, in bytes. */
interface Reading {
  rssBytes: number;
  rssAnonBytes: number;
  rssFileBytes: number;
}

interface MirrorIdle {
  mirror: MirrorName;
  settle: Reading[];
  later: Reading[];
  medianSettle: Reading;
  medianLater: Reading | undefined;
}

function parsePlan(argv: string[]): Plan {
  const { values } = parseArgs({
    args: argv,
    options: {
      starts: { type: 'string', default: '5' },
      'settle-seconds': { type: 'string', default: '2' },
      'later-seconds': { type: 'string', default: '30' },
      'node-options': { type: 'string', default: '' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const num = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: "${v}" is not a number >= ${min}`);
    return n;
  };
  const plan: Plan = {
    starts: num('starts', values.starts, 1),
    settleSeconds: num('settle-seconds', values['settle-seconds'], 0),
    laterSeconds: num('later-seconds', values['later-seconds'], 0),
    nodeArgs: values['node-options'].split(' ').filter((a) => a !== ''),
    out: values.out,
  };
  if (!Number.isInteger(plan.starts)) throw new Error(`--starts: "${values.starts}" is not an integer`);
  if (plan.laterSeconds !== 0 && plan.laterSeconds <= plan.settleSeconds)
    throw new Error('--later-seconds must be 0 or more than --settle-seconds');
  return plan;
}

async function readStatus(pid: number): Promise<Reading> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]) * 1024;
  };
  return { rssBytes: kib('VmRSS'), rssAnonBytes: kib('RssAnon'), rssFileBytes: kib('RssFile') };
}

/** Each field's median over `readings` (the upper middle one for an even count). */
function median(readings: Reading[]): Reading {
  const mid = (pick: (r: Reading) => number) => {
    const sorted = readings.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? 0;
  };
  return {
    rssBytes: mid((r) => r.rssBytes),
    rssAnonBytes: mid((r) => r.rssAnonBytes),
    rssFileBytes: mid((r) => r.rssFileBytes),
  };
}

const sleep = (seconds: number) => new Promise((r) => setTimeout(r, seconds * 1000));
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const progress = (line: string) => process.stderr.write(`idle: ${line}\n`);

async function measure(
  name: MirrorName,
  plan: Plan,
  start: () => Promise<MirrorUnderTest>,
): Promise<MirrorIdle> {
  const settle: Reading[] = [];
  const later: Reading[] = [];
  for (let i = 0; i < plan.starts; i++) {
    const mirror = await start();
    try {
      await sleep(plan.settleSeconds);
      const first = await readStatus(mirror.pid);
      settle.push(first);
      let line = `${name} start ${i + 1}: ${mib(first.rssBytes)} after ${plan.settleSeconds} s`;
      if (plan.laterSeconds > 0) {
        await sleep(plan.laterSeconds - plan.settleSeconds);
        const second = await readStatus(mirror.pid);
        later.push(second);
        line += `, ${mib(second.rssBytes)} after ${plan.laterSeconds} s`;
      }
      progress(line);
    } finally {
      await mirror.stop();
    }
  }
  return {
    mirror: name,
    settle,
    later,
    medianSettle: median(settle),
    medianLater: later.length > 0 ? median(later) : undefined,
  };
}

function renderTable(results: MirrorIdle[], plan: Plan): string {
  const cell = (r: Reading | undefined) =>
    r === undefined ? '-' : `${mib(r.rssBytes)} (anon ${mib(r.rssAnonBytes)}, file ${mib(r.rssFileBytes)})`;
  const lines = [
    `median of ${plan.starts} starts; RSS (RssAnon, RssFile)`,
    `| mirror | after ${plan.settleSeconds} s | after ${plan.laterSeconds} s |`,
    '| --- | --- | --- |',
    ...results.map((r) => `| ${r.mirror} | ${cell(r.medianSettle)} | ${cell(r.medianLater)} |`),
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const plan = parsePlan(process.argv.slice(2));
  if (findBinary('docker-registry') === undefined)
    throw new Error('docker-registry is not installed (scripts/install-peers.sh installs it)');
  await requireHoistBuild();
  await mkdir(OUT_DIR, { recursive: true });
  const startedAt = new Date();
  const machine = await describeMachine();
  // The upstream both mirrors point at; neither is asked for anything.
  const upstream = await startRegistry();
  try {
    const results = [
      await measure('hoist', plan, () =>
        startHoist({ upstream, logPath: join(OUT_DIR, 'hoist-idle.log'), nodeArgs: plan.nodeArgs }),
      ),
      await measure('docker-registry', plan, () => startRegistryProxy(upstream)),
    ];
    const doc = { bench: 'idle', startedAt: startedAt.toISOString(), plan, results };
    const outPath = join(OUT_DIR, 'idle.json');
    await writeFile(outPath, `${JSON.stringify(doc, null, 2)}\n`);
    let written = outPath;
    if (plan.out !== undefined) {
      const kept = await keepResult(ROOT_DIR, plan.out, {
        date: startedAt.toISOString(),
        machine,
        command: `node --import tsx bench/idle.ts ${process.argv.slice(2).join(' ')}`.trim(),
        result: doc,
      });
      written += ` and ${kept}`;
    }
    process.stdout.write(`${renderTable(results, plan)}\n\nresults: ${written}\n`);
  } finally {
    await upstream.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`idle: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
