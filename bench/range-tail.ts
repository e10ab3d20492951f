// What holding a range's last byte until the blob is verified costs a lazy pull. The stargz
// snapshotter reads a layer's footer first (eStargz spec: the last 51 bytes), so on a cold blob
// that read now waits for the whole-blob download to be verified. Against Debian's docker-registry
// on loopback, each run on a fresh (cold) mirror, it times the full answer of:
//
//   held    Range: bytes=-51          reaches the last byte: held until the download is verified
//   unheld  Range: bytes=S-51..S-2    50 bytes ending one byte short: passed through from upstream
//                                     unverified, as every far-ahead range was before the hold
//   whole   GET without Range         the whole blob, for scale
//
// Usage: node --import tsx bench/range-tail.ts [--sizes-mib 64,256] [--runs 3] [--output json]
import { hostname, cpus } from 'node:os';
import { execFileSync } from 'node:child_process';
import { startMirror } from '../test/helpers/mirror.js';
import { removeTempDir, tempDir } from '../test/helpers/peers.js';
import { startRegistry } from '../test/helpers/registry.js';
import { makeUpstreamBlob, MiB, type BlobInfo } from './blobs.js';
import { median } from './stats.js';

type Mode = 'held' | 'unheld' | 'whole';
const MODES: readonly Mode[] = ['held', 'unheld', 'whole'];
const REPO = 'bench/range-tail';

interface Row {
  sizeMiB: number;
  mode: Mode;
  range: string | null;
  /** Milliseconds from the request to the last byte of the answer, one per run. */
  ms: number[];
  medianMs: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

function rangeFor(mode: Mode, size: number): string | undefined {
  if (mode === 'held') return 'bytes=-51';
  if (mode === 'unheld') return `bytes=${size - 51}-${size - 2}`;
  return undefined;
}

/** One cold request through a fresh mirror: milliseconds to the full answer. */
async function timeOnce(upstreamUrl: string, blob: BlobInfo, mode: Mode): Promise<number> {
  const mirror = await startMirror({ 'upstream.bench': upstreamUrl });
  try {
    const url = `${mirror.url}/v2/${REPO}/blobs/${blob.digest}?ns=upstream.bench`;
    const range = rangeFor(mode, blob.sizeBytes);
    const t0 = performance.now();
    const res = await fetch(url, range ? { headers: { range } } : {});
    const body = Buffer.from(await res.arrayBuffer());
    const ms = performance.now() - t0;
    const wantBytes = mode === 'held' ? 51 : mode === 'unheld' ? 50 : blob.sizeBytes;
    if (body.byteLength !== wantBytes)
      throw new Error(`${mode}: got ${body.byteLength} bytes, not ${wantBytes}`);
    return ms;
  } finally {
    await mirror.close();
  }
}

async function main(): Promise<void> {
  const sizes = arg('--sizes-mib', '64,256').split(',').map(Number);
  const runs = Number(arg('--runs', '3'));
  const json = arg('--output', 'text') === 'json';
  const registry = await startRegistry();
  const dir = await tempDir('hoist-bench-range-');
  const rows: Row[] = [];
  try {
    for (const sizeMiB of sizes) {
      const blob = await makeUpstreamBlob(dir, `blob-${sizeMiB}`, sizeMiB * MiB, registry.url, REPO);
      await timeOnce(registry.url, blob, 'whole'); // warms the upstream's page cache
      for (const mode of MODES) {
        const ms: number[] = [];
        for (let i = 0; i < runs; i++) ms.push(await timeOnce(registry.url, blob, mode));
        rows.push({ sizeMiB, mode, range: rangeFor(mode, blob.sizeBytes) ?? null, ms, medianMs: median(ms) });
      }
    }
  } finally {
    await registry.stop();
    await removeTempDir(dir);
  }
  const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  const machine = { host: hostname(), cpu: cpus()[0]?.model ?? 'unknown', cpus: cpus().length };
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ bench: 'range-tail', commit, machine, runs, rows }, null, 2)}\n`,
    );
    return;
  }
  process.stdout.write(
    `range-tail on ${commit.slice(0, 12)}, ${machine.cpus}× ${machine.cpu}, ${runs} cold runs each\n`,
  );
  for (const r of rows) {
    const all = r.ms.map((m) => m.toFixed(0)).join(' ');
    process.stdout.write(
      `${String(r.sizeMiB).padStart(5)} MiB  ${r.mode.padEnd(7)} median ${r.medianMs.toFixed(0).padStart(6)} ms  (${all})\n`,
    );
  }
}

await main();
