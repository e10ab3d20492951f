// `hoist convert` against `ctr-remote image convert --estargz --oci` (stargz-snapshotter, on a
// real containerd) on the same image, same gzip level and chunk size: wall time, CPU time, peak
// memory and output size. Run: `npm run build && node --import tsx bench/estargz.ts [--quick]`.
// Writes bench/out/estargz.json and prints a table; needs root (containerd mounts snapshots).
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ESTARGZ_DEFAULTS } from '../src/estargz/index.js';
import { hoist } from '../test/go/estargz-verifier.js';
import { findBinary, removeTempDir, tempDir } from '../test/helpers/peers.js';
import { run } from '../test/helpers/process.js';
import { startRegistry, type RegistryPeer } from '../test/helpers/registry.js';
import { buildAndPush, FULL_IMAGE, MiB, QUICK_IMAGE, type SourceImage } from './estargz-image.js';
import { renderEstargzTable, summarize, type EstargzResults } from './estargz-report.js';
import {
  runCtrRemote,
  runHoist,
  startCtrRemoteHost,
  type CtrRemoteHost,
  type CtrRemoteRun,
  type HoistRun,
} from './estargz-runners.js';
import { requireHoistBuild, ROOT_DIR } from './mirrors.js';

const USAGE = `usage: node --import tsx bench/estargz.ts [--quick] [--repetitions N] [--cpu-prof]
  --quick          a ~45 MB image: 2,500 text files, one 20 MiB random file
                   (default ~310 MB: 15,000 text files, 150 MB of them, and four 20-50 MiB random files)
  --repetitions N  conversions by each tool, alternating which goes first (default 3)
  --cpu-prof       run hoist under node --cpu-prof; profiles go to bench/out/prof/`;

const OUT_DIR = join(ROOT_DIR, 'bench', 'out');

function progress(line: string): void {
  process.stderr.write(`[bench:estargz] ${line}\n`);
}

function parsePlan(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      repetitions: { type: 'string', default: '3' },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const repetitions = Number(values.repetitions);
  if (!Number.isInteger(repetitions) || repetitions < 1)
    throw new Error('--repetitions: not a positive integer');
  return { quick: values.quick, repetitions, cpuProf: values['cpu-prof'] };
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args);
  return stdout.split('\n')[0]?.trim() ?? '';
}

/** Both outputs must be valid eStargz, or the comparison means nothing. */
async function checkOutput(ref: string): Promise<void> {
  const res = await hoist(['convert', '--check', ref, '--output', 'json']);
  const out = JSON.parse(res.stdout || '{}') as { valid?: boolean };
  if (res.code !== 0 || out.valid !== true) throw new Error(`${ref} is not valid eStargz: ${res.stdout}`);
}

async function measure(
  plan: ReturnType<typeof parsePlan>,
  reg: RegistryPeer,
  host: CtrRemoteHost,
  image: SourceImage,
): Promise<{ hoist: HoistRun[]; ctrRemote: CtrRemoteRun[] }> {
  const options = { gzipLevel: ESTARGZ_DEFAULTS.gzipLevel, chunkSizeBytes: ESTARGZ_DEFAULTS.chunkSizeBytes };
  const nodeArgs = plan.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(OUT_DIR, 'prof')] : [];
  const hoistRuns: HoistRun[] = [];
  const ctrRuns: CtrRemoteRun[] = [];
  for (let i = 0; i < plan.repetitions; i++) {
    // Alternate who goes first, so page-cache warmth and background load fall on both alike.
    const order = i % 2 === 0 ? (['hoist', 'ctr-remote'] as const) : (['ctr-remote', 'hoist'] as const);
    for (const tool of order) {
      if (tool === 'hoist') {
        const r = await runHoist(reg, image.ref, `hoist-${i}/app`, { ...options, nodeArgs });
        progress(
          `hoist #${i + 1}: ${r.convert.wallSeconds.toFixed(2)} s, ${(r.convert.maxRssBytes / MiB).toFixed(0)} MiB, ${r.layerBytes} bytes`,
        );
        hoistRuns.push(r);
      } else {
        const r = await runCtrRemote(host, reg, image.ref, `ctr-${i}/app`, options);
        progress(
          `ctr-remote #${i + 1}: fetch ${r.fetch.wallSeconds.toFixed(2)} s, convert ${r.convert.wallSeconds.toFixed(2)} s, ` +
            `push ${r.push.wallSeconds.toFixed(2)} s, ${(r.convert.maxRssBytes / MiB).toFixed(0)} MiB + containerd ` +
            `${(r.containerdDuringConvert.peakRssBytes / MiB).toFixed(0)} MiB, ${r.layerBytes} bytes`,
        );
        ctrRuns.push(r);
      }
    }
  }
  await checkOutput(`${reg.host}/hoist-0/app:esgz`);
  await checkOutput(`${reg.host}/ctr-0/app:esgz`);
  return { hoist: hoistRuns, ctrRemote: ctrRuns };
}

async function main(): Promise<void> {
  const plan = parsePlan(process.argv.slice(2));
  for (const bin of ['docker-registry', 'skopeo', 'containerd', 'ctr-remote', 'time']) {
    if (findBinary(bin) === undefined) {
      throw new Error(`${bin} is not installed (scripts/install-peers.sh installs it)`);
    }
  }
  if (process.getuid?.() !== 0) throw new Error('run as root: containerd mounts snapshots');
  await requireHoistBuild();
  await mkdir(OUT_DIR, { recursive: true });
  const startedAt = new Date();
  const work = await tempDir('hoist-bench-estargz');
  let reg: RegistryPeer | undefined;
  let host: CtrRemoteHost | undefined;
  try {
    reg = await startRegistry();
    const imagePlan = plan.quick ? QUICK_IMAGE : FULL_IMAGE;
    progress(`building the source image (${imagePlan.textFiles + imagePlan.moreTextFiles} text files)`);
    const image = await buildAndPush(imagePlan, work, `${reg.host}/src/app:v1`);
    progress(
      `source: ${(image.uncompressedBytes / MiB).toFixed(0)} MiB in ${image.files} files, ` +
        `${(image.compressedBytes / MiB).toFixed(0)} MiB gzipped, ${image.layers} layers`,
    );
    host = await startCtrRemoteHost();
    const runs = await measure(plan, reg, host, image);
    const results: EstargzResults = {
      startedAt: startedAt.toISOString(),
      quick: plan.quick,
      machine: {
        nproc: availableParallelism(),
        cpuModel: cpus()[0]?.model ?? 'unknown',
        memoryBytes: totalmem(),
        kernel: release(),
        node: process.version,
        ctrRemote: await firstLine('ctr-remote', ['--version']),
        containerd: await firstLine('containerd', ['--version']),
      },
      settings: { gzipLevel: ESTARGZ_DEFAULTS.gzipLevel, chunkSizeBytes: ESTARGZ_DEFAULTS.chunkSizeBytes },
      image,
      runs,
      summary: summarize(runs.hoist, runs.ctrRemote),
      durationSeconds: (Date.now() - startedAt.getTime()) / 1000,
    };
    const name = plan.quick ? 'estargz-quick.json' : 'estargz.json';
    await writeFile(join(OUT_DIR, name), `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(renderEstargzTable(results));
    progress(`wrote bench/out/${name}`);
  } finally {
    await host?.stop();
    await reg?.stop();
    await removeTempDir(work);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:estargz: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
