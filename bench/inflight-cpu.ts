// What a download costs the mirror's CPU when its body arrives in small reads (issue 13: the peers
// bench's mirrors used 31 CPU s at 200 Mbit/s and 79 at 50 Mbit/s for the same bytes). An upstream
// (bench/paced-upstream.ts, a process of its own) sends one blob in `--chunk-kib` writes, one per
// `--interval-ms` tick; a fresh `hoist mirror` (the built tree, and any other built trees given
// with --tree, e.g. the commit before a change) fetches it while `--readers` clients read it from
// the in-flight download at once, as a node's client and the relays below it do. Recorded per run:
// the mirror process's user+system CPU seconds (/proc/PID/stat) from the clients' start to the
// last client's end (after one warm-up request), per GiB received from the upstream.
//
// Usage:
//   npm run build && node --import tsx bench/inflight-cpu.ts
//   node --import tsx bench/inflight-cpu.ts --tree before=/tmp/base   # a second built tree, same run
//   options: --size-mib 64 --chunk-kib 4,16 --interval-ms 1 --readers 1,4 --runs 3
//            --cpu-prof DIR (the mirror runs with --cpu-prof) --out NAME (bench/results/NAME.json)
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { access } from 'node:fs/promises';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { ROOT_DIR, startHoist } from './mirrors.js';
import { readCpuTime } from './proc-stats.js';
import { describeMachine, keepResult } from './report.js';
import { median } from './stats.js';

const GiB = 1024 * 1024 * 1024;
const REPO = 'bench/inflight';
const UPSTREAM = 'paced.bench';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

function args(name: string): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === name && process.argv[i + 1] !== undefined) out.push(process.argv[i + 1] as string);
  });
  return out;
}

function numbers(name: string, fallback: string): number[] {
  const list = arg(name, fallback).split(',').map(Number);
  if (list.some((n) => !(n > 0))) usage(`${name} takes positive numbers separated by commas`);
  return list;
}

function usage(what: string): never {
  process.stderr.write(`inflight-cpu: ${what} (see the usage at the top of bench/inflight-cpu.ts)\n`);
  process.exit(2);
}

interface Tree {
  name: string;
  root: string;
}

interface Upstream {
  url: string;
  digest: string;
  size: number;
  stop(): Promise<void>;
}

/** Reads lines of `child`'s stdout until `pattern` matches one. */
function lineMatching(child: ChildProcess, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolvePromise, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 30 s`)), 30_000);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      text += chunk;
      const m = pattern.exec(text);
      if (m) {
        clearTimeout(timer);
        resolvePromise(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${String(code)}) before it was ready`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

async function startUpstream(sizeMiB: number, chunkKiB: number, intervalMs: number): Promise<Upstream> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT_DIR, 'bench', 'paced-upstream.ts'),
      '--size-mib',
      String(sizeMiB),
      '--chunk-kib',
      String(chunkKiB),
      '--interval-ms',
      String(intervalMs),
    ],
    { cwd: ROOT_DIR, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const m = await lineMatching(child, /ready (\d+) (sha256:[0-9a-f]{64}) (\d+)/, 'the paced upstream');
  return {
    url: `http://127.0.0.1:${m[1]}`,
    digest: m[2] as string,
    size: Number(m[3]),
    stop: () => stopChild(child),
  };
}

interface Mirror {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function startMirror(tree: Tree, upstream: Upstream, profDir: string | undefined): Promise<Mirror> {
  return startHoist({
    upstream: { host: UPSTREAM, url: upstream.url },
    bin: join(tree.root, 'bin', 'hoist.js'),
    logPath: join(ROOT_DIR, 'bench', 'out', 'inflight-cpu', `${tree.name}-mirror.log`),
    nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', join(profDir, tree.name)] : [],
  });
}

/** One client reading the whole blob; resolves with the sha256 of what it got. */
function readBlob(url: string): Promise<{ digest: string; bytes: number }> {
  return new Promise((resolvePromise, reject) => {
    const req = request(url, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`${url}: HTTP ${String(res.statusCode)}`));
        return;
      }
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.byteLength;
      });
      res.on('end', () => resolvePromise({ digest: `sha256:${hash.digest('hex')}`, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Asks for a blob the upstream does not hold; expects the mirror's 404. */
function warmUp(url: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const req = request(url, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 404
          ? resolvePromise()
          : reject(new Error(`warm-up ${url}: HTTP ${String(res.statusCode)}, not 404`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

interface Run {
  tree: string;
  chunkKiB: number;
  readers: number;
  run: number;
  cpuSeconds: number;
  userSeconds: number;
  systemSeconds: number;
  cpuSecondsPerGiB: number;
  wallSeconds: number;
}

async function measure(
  tree: Tree,
  upstream: Upstream,
  readers: number,
  profDir: string | undefined,
): Promise<Omit<Run, 'tree' | 'chunkKiB' | 'readers' | 'run'>> {
  const mirror = await startMirror(tree, upstream, profDir);
  try {
    const url = `${mirror.url}/v2/${REPO}/blobs/${upstream.digest}?ns=${UPSTREAM}`;
    // One request that goes upstream first (a blob the upstream does not have), so that loading
    // the request path's modules and connecting upstream fall outside the measurement.
    await warmUp(`${mirror.url}/v2/${REPO}/blobs/sha256:${'0'.repeat(64)}?ns=${UPSTREAM}`);
    const before = await readCpuTime(mirror.pid);
    const t0 = performance.now();
    const got = await Promise.all(Array.from({ length: readers }, () => readBlob(url)));
    const wallSeconds = (performance.now() - t0) / 1000;
    const after = await readCpuTime(mirror.pid);
    for (const g of got) {
      if (g.digest !== upstream.digest || g.bytes !== upstream.size)
        throw new Error(`a client got ${g.bytes} bytes with digest ${g.digest}, not the blob`);
    }
    const userSeconds = after.userSeconds - before.userSeconds;
    const systemSeconds = after.systemSeconds - before.systemSeconds;
    const cpuSeconds = userSeconds + systemSeconds;
    return {
      cpuSeconds,
      userSeconds,
      systemSeconds,
      cpuSecondsPerGiB: cpuSeconds / (upstream.size / GiB),
      wallSeconds,
    };
  } finally {
    await mirror.stop();
  }
}

function fmt(n: number, digits = 1): string {
  return n.toFixed(digits);
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    process.stdout.write('see the usage at the top of bench/inflight-cpu.ts\n');
    return;
  }
  const sizeMiB = numbers('--size-mib', '64')[0] as number;
  const chunks = numbers('--chunk-kib', '4,16');
  const readerCounts = numbers('--readers', '1,4');
  const runs = numbers('--runs', '3')[0] as number;
  const intervalMs = Number(arg('--interval-ms', '1'));
  const profArg = arg('--cpu-prof', '');
  const profDir = profArg ? resolve(profArg) : undefined;
  const out = arg('--out', '');
  const trees: Tree[] = [{ name: 'this', root: ROOT_DIR }];
  for (const t of args('--tree')) {
    const [name, root] = t.split('=', 2);
    if (!name || !root) usage(`--tree takes NAME=DIR, not "${t}"`);
    trees.push({ name, root: resolve(root) });
  }
  for (const t of trees) {
    await access(join(t.root, 'dist', 'cli', 'main.js')).catch(() =>
      usage(`${t.root}/dist/cli/main.js is missing: build that tree first (npm run build)`),
    );
  }

  const results: Run[] = [];
  for (const chunkKiB of chunks) {
    const upstream = await startUpstream(sizeMiB, chunkKiB, intervalMs);
    try {
      // Runs interleave the trees, so that load from elsewhere on the machine falls on each alike.
      for (let run = 1; run <= runs; run++) {
        for (const readers of readerCounts) {
          for (const tree of trees) {
            const r = await measure(tree, upstream, readers, profDir);
            results.push({ tree: tree.name, chunkKiB, readers, run, ...r });
            process.stderr.write(
              `${tree.name} chunk ${chunkKiB} KiB, ${readers} reader(s), run ${run}: ` +
                `${fmt(r.cpuSeconds, 2)} CPU s in ${fmt(r.wallSeconds)} s = ${fmt(r.cpuSecondsPerGiB)} CPU s/GiB\n`,
            );
          }
        }
      }
    } finally {
      await upstream.stop();
    }
  }

  const rows: string[] = [
    '| tree | chunk | readers | CPU s per GiB, median (min–max) | user / system s (median) | wall s (median) |',
    '| ---- | ----: | ------: | ------------------------------: | -----------------------: | --------------: |',
  ];
  const summary: unknown[] = [];
  for (const chunkKiB of chunks) {
    for (const readers of readerCounts) {
      for (const tree of trees) {
        const rs = results.filter(
          (r) => r.tree === tree.name && r.chunkKiB === chunkKiB && r.readers === readers,
        );
        const perGiB = rs.map((r) => r.cpuSecondsPerGiB);
        const row = {
          tree: tree.name,
          chunkKiB,
          readers,
          cpuSecondsPerGiBMedian: median(perGiB),
          cpuSecondsPerGiBMin: Math.min(...perGiB),
          cpuSecondsPerGiBMax: Math.max(...perGiB),
          userSecondsMedian: median(rs.map((r) => r.userSeconds)),
          systemSecondsMedian: median(rs.map((r) => r.systemSeconds)),
          wallSecondsMedian: median(rs.map((r) => r.wallSeconds)),
        };
        summary.push(row);
        rows.push(
          `| ${tree.name} | ${chunkKiB} KiB | ${readers} | ${fmt(row.cpuSecondsPerGiBMedian)} ` +
            `(${fmt(row.cpuSecondsPerGiBMin)}–${fmt(row.cpuSecondsPerGiBMax)}) | ` +
            `${fmt(row.userSecondsMedian, 2)} / ${fmt(row.systemSecondsMedian, 2)} | ${fmt(row.wallSecondsMedian)} |`,
        );
      }
    }
  }
  process.stdout.write(`${rows.join('\n')}\n`);
  if (out) {
    const path = await keepResult(ROOT_DIR, out, {
      date: new Date().toISOString(),
      machine: await describeMachine(),
      command: `node --import tsx ${process.argv.slice(1).join(' ')}`,
      result: {
        sizeMiB,
        intervalMs,
        trees: trees.map((t) => ({ name: t.name, root: t.root === ROOT_DIR ? '.' : t.root })),
        summary,
        runs: results,
      },
    });
    process.stderr.write(`wrote ${path}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`inflight-cpu: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
