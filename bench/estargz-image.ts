// The image both converters work on: many small text-like files (compressible, as source trees,
// configs and scripts are, so the output size compares gzip work and not only random bytes) and a
// few large random files (model weights, archives), in three gzip layers, built with the test
// helper buildImage (an OCI layout on disk, no daemon) and pushed with skopeo.
import { join } from 'node:path';
import { buildImage, pushImage, type FileSpec, type LayerSpec } from '../test/helpers/images.js';

export const MiB = 1024 * 1024;

export interface ImagePlan {
  /** Small text files in the first layer. */
  textFiles: number;
  /** Small text files in the third layer (a second, smaller tree). */
  moreTextFiles: number;
  /** Sizes of the large random files (second layer, and one in the third). */
  randomFileBytes: number[];
}

export const FULL_IMAGE: ImagePlan = {
  textFiles: 12_000,
  moreTextFiles: 3_000,
  randomFileBytes: [20 * MiB, 30 * MiB, 40 * MiB, 50 * MiB],
};

export const QUICK_IMAGE: ImagePlan = {
  textFiles: 2_000,
  moreTextFiles: 500,
  randomFileBytes: [20 * MiB],
};

const WORDS = (
  'const let function return import export from async await if else for while switch case break ' +
  'continue class extends new this super null undefined true false try catch finally throw typeof ' +
  'string number boolean object array map set promise buffer stream error result value options ' +
  'config path file name size count index offset length data chunk digest layer image manifest ' +
  'registry client server request response header status cache store entry token user group mode ' +
  'time date start end read write open close flush sync lock wait timeout retry backoff limit max ' +
  'min sum avg total debug info warn log trace metric label version build test spec util helper'
).split(' ');

/** xorshift32: a fixed seed gives the same tree on every run, so both converters see equal bytes. */
function prng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

/** Source-like text: indented lines of words, identifiers and numbers; about 3x smaller gzipped. */
function textFile(rand: () => number, bytes: number): string {
  const lines: string[] = [];
  let size = 0;
  while (size < bytes) {
    const indent = '  '.repeat(Math.floor(rand() * 4));
    const words: string[] = [];
    const n = 3 + Math.floor(rand() * 9);
    for (let i = 0; i < n; i++) {
      const w = WORDS[Math.floor(rand() * WORDS.length)] ?? 'x';
      words.push(rand() < 0.15 ? `${w}${Math.floor(rand() * 1000)}` : w);
    }
    const line = `${indent}${words.join(' ')};`;
    lines.push(line);
    size += line.length + 1;
  }
  return `${lines.join('\n')}\n`;
}

/** File sizes from 400 B to 100 KiB, median 1.6 KiB, mean 10 KiB, as in a real source tree. */
function textTree(prefix: string, count: number, seed: number): FileSpec[] {
  const rand = prng(seed);
  const files: FileSpec[] = [];
  for (let i = 0; i < count; i++) {
    const r = rand();
    const bytes = Math.floor(400 * Math.pow(256, r * r));
    const dir = `${prefix}/pkg${Math.floor(i / 100)}/mod${Math.floor(i / 10) % 10}`;
    files.push({ path: `${dir}/file${i}.ts`, content: textFile(rand, bytes) });
  }
  return files;
}

export interface SourceImage {
  ref: string;
  layers: number;
  compressedBytes: number;
  uncompressedBytes: number;
  files: number;
}

/** Builds the image in `dir` and pushes it as `host/repo:tag`. */
export async function buildAndPush(plan: ImagePlan, dir: string, ref: string): Promise<SourceImage> {
  const [first, ...rest] = plan.randomFileBytes;
  const layers: LayerSpec[] = [
    { files: textTree('usr/src/app', plan.textFiles, 1) },
    {
      files: rest.map((bytes, i) => ({ path: `opt/models/weights-${i}.bin`, size: bytes, seed: `w${i}` })),
    },
    {
      files: [
        ...textTree('usr/lib/tools', plan.moreTextFiles, 2),
        ...(first !== undefined ? [{ path: 'opt/data/archive.bin', size: first, seed: 'archive' }] : []),
      ],
    },
  ].filter((l) => l.files.length > 0);
  const layout = join(dir, 'layout');
  const built = await buildImage(layout, { tag: 'src', layers, gzipLevel: 6 });
  await pushImage(layout, 'src', ref);
  const manifest = built.manifests[0];
  return {
    ref,
    layers: layers.length,
    compressedBytes: manifest?.layers.reduce((s, l) => s + l.size, 0) ?? 0,
    uncompressedBytes: manifest?.layers.reduce((s, l) => s + l.uncompressedSize, 0) ?? 0,
    files: layers.reduce((s, l) => s + l.files.length, 0),
  };
}
