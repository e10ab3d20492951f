// Builds test images as OCI image layouts on disk with no download (tar-stream + zlib), and moves
// them in and out of registries with the real skopeo.
//
// Image layout: OCI image-spec image-layout.md (oci-layout, index.json, blobs/sha256/<hex>);
// manifests and indexes: manifest.md and image-index.md; layer diff IDs: config.md "rootfs".
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import type { Pack } from 'tar-stream';
import type { CommandWrapper } from './netns.js';
import { run } from './process.js';

export { run } from './process.js';
export type { RunOptions, RunResult } from './process.js';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

const REF_NAME = 'org.opencontainers.image.ref.name';
/** Fixed timestamp for tar headers and the config, so equal inputs give equal digests. */
const EPOCH = new Date(0);

/**
 * A file in a layer. `size` fills it with pseudo-random bytes: the same `seed` always gives the
 * same bytes (so layers can be shared between images), no seed gives fresh random bytes.
 */
export type FileSpec =
  | { path: string; size: number; seed?: string; mode?: number }
  | { path: string; content: Buffer | string; mode?: number }
  | { path: string; fromFile: string; mode?: number }
  | { path: string; symlink: string };

export interface LayerSpec {
  files: FileSpec[];
  /** 'gzip' (default) gives tar+gzip layers; 'none' plain tar. */
  compression?: 'gzip' | 'none';
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface BuildImageOptions {
  layers: LayerSpec[];
  /**
   * One platform (default: this machine's linux platform) gives an image manifest; two or more
   * give an image index whose per-platform manifests share the given layers plus one small
   * platform-specific layer each, so every platform's manifest differs.
   */
  platforms?: Platform[];
  /** Tag recorded as org.opencontainers.image.ref.name in index.json; default 'latest'. */
  tag?: string;
  /** Runtime config (Cmd, Entrypoint, Env, WorkingDir, ...) for the image config's `config`. */
  config?: Record<string, unknown>;
  /**
   * zlib level for gzip layers; default 1. zlib manages only ~35 MB/s on random content at level 1
   * (2 cores here); level 0 (stored blocks, still valid gzip) manages ~150 MB/s for big layers.
   */
  gzipLevel?: number;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface BuiltLayer extends Descriptor {
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
  uncompressedSize: number;
}

export interface BuiltManifest {
  platform: Platform;
  manifest: Descriptor;
  config: Descriptor;
  layers: BuiltLayer[];
}

export interface BuiltImage {
  dir: string;
  tag: string;
  /** What index.json points to for this tag: the index (multi-platform) or the manifest. */
  digest: string;
  mediaType: string;
  size: number;
  /** Set for multi-platform images. */
  index?: Descriptor;
  manifests: BuiltManifest[];
  /** Every blob digest of the image (index, manifests, configs, layers), without duplicates. */
  allDigests: string[];
}

export function hostPlatform(): Platform {
  const arch: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
  };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function blobPath(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

async function writeBlob(dir: string, mediaType: string, data: Buffer): Promise<Descriptor> {
  const digest = sha256(data);
  await writeFile(blobPath(dir, digest), data);
  return { mediaType, digest, size: data.length };
}

async function writeJsonBlob(dir: string, mediaType: string, value: unknown): Promise<Descriptor> {
  return writeBlob(dir, mediaType, Buffer.from(JSON.stringify(value)));
}

const CHUNK_BYTES = 1 << 20;

/** Pseudo-random bytes: AES-256-CTR over zeros, keyed by the seed (fast, deterministic). */
function* pseudoRandom(size: number, seed: string | undefined): Generator<Buffer> {
  const key = seed === undefined ? randomBytes(32) : createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK_BYTES);
  for (let left = size; left > 0; left -= CHUNK_BYTES) {
    yield cipher.update(left >= CHUNK_BYTES ? zeros : zeros.subarray(0, left));
  }
}

/** Writes one tar entry and waits until tar-stream has taken all of it. */
async function writeEntry(
  pack: Pack,
  header: Parameters<Pack['entry']>[0],
  chunks?: Iterable<Buffer> | AsyncIterable<Buffer>,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const entry = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    if (chunks === undefined) {
      entry.end(undefined);
      return;
    }
    void (async () => {
      try {
        for await (const chunk of chunks) {
          if (!entry.write(chunk)) await new Promise<void>((r) => entry.once('drain', () => r()));
        }
        entry.end(undefined);
      } catch (e) {
        entry.destroy(e as Error);
        reject(e);
      }
    })();
  });
}

async function writeLayerEntries(pack: Pack, files: FileSpec[]): Promise<void> {
  const dirs = new Set<string>();
  const common = { mtime: EPOCH, uid: 0, gid: 0, uname: 'root', gname: 'root' };
  for (const file of files) {
    const name = posix.normalize(file.path).replace(/^\/+/, '');
    // Parent directories first, as real image builders do; unpackers then set their modes.
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (dirs.has(d)) continue;
      dirs.add(d);
      await writeEntry(pack, { ...common, name: `${d}/`, type: 'directory', mode: 0o755 });
    }
    if ('symlink' in file) {
      await writeEntry(pack, { ...common, name, type: 'symlink', linkname: file.symlink, mode: 0o777 });
    } else if ('size' in file) {
      const header = { ...common, name, type: 'file' as const, size: file.size, mode: file.mode ?? 0o644 };
      await writeEntry(pack, header, pseudoRandom(file.size, file.seed));
    } else if ('content' in file) {
      const content = Buffer.from(file.content);
      const header = {
        ...common,
        name,
        type: 'file' as const,
        size: content.length,
        mode: file.mode ?? 0o644,
      };
      await writeEntry(pack, header, [content]);
    } else {
      const { size, mode } = await stat(file.fromFile);
      const header = { ...common, name, type: 'file' as const, size, mode: file.mode ?? mode & 0o7777 };
      await writeEntry(pack, header, createReadStream(file.fromFile));
    }
  }
}

async function* counting(
  source: AsyncIterable<Buffer>,
  hash: ReturnType<typeof createHash>,
  total: { bytes: number },
): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    hash.update(chunk);
    total.bytes += chunk.length;
    yield chunk;
  }
}

/** Streams a layer to a temp file while hashing both the tar (diff ID) and the blob (digest). */
async function buildLayer(dir: string, spec: LayerSpec, gzipLevel: number): Promise<BuiltLayer> {
  const tmp = join(dir, 'blobs', `.tmp-${randomBytes(8).toString('hex')}`);
  const gzip = spec.compression !== 'none';
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  const tarBytes = { bytes: 0 };
  const blobBytes = { bytes: 0 };
  const pack = tarPack();
  const tar = counting(pack as AsyncIterable<Buffer>, diffHash, tarBytes);
  const written = gzip
    ? pipeline(
        tar,
        createGzip({ level: gzipLevel }),
        (s: AsyncIterable<Buffer>) => counting(s, blobHash, blobBytes),
        createWriteStream(tmp),
      )
    : pipeline(tar, createWriteStream(tmp));
  const produced = writeLayerEntries(pack, spec.files).then(
    () => pack.finalize(),
    (e: unknown) => {
      pack.destroy(e as Error);
      throw e;
    },
  );
  await Promise.all([written, produced]);
  const diffId = `sha256:${diffHash.digest('hex')}`;
  const digest = gzip ? `sha256:${blobHash.digest('hex')}` : diffId;
  await rename(tmp, blobPath(dir, digest));
  return {
    mediaType: gzip ? MEDIA_TYPES.ociLayerGzip : MEDIA_TYPES.ociLayer,
    digest,
    size: gzip ? blobBytes.bytes : tarBytes.bytes,
    diffId,
    uncompressedSize: tarBytes.bytes,
  };
}

function platformKey(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

async function writeManifest(
  dir: string,
  platform: Platform,
  layers: BuiltLayer[],
  runtimeConfig: Record<string, unknown> | undefined,
): Promise<BuiltManifest> {
  const configJson = {
    created: EPOCH.toISOString(),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    config: runtimeConfig ?? {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: EPOCH.toISOString(), created_by: 'hoist test helper' })),
  };
  const config = await writeJsonBlob(dir, MEDIA_TYPES.ociConfig, configJson);
  const manifest = await writeJsonBlob(dir, MEDIA_TYPES.ociManifest, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config,
    layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
  });
  return { platform, manifest, config, layers };
}

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Array<Descriptor & { annotations?: Record<string, string> }>;
}

async function readLayoutIndex(dir: string): Promise<LayoutIndex> {
  try {
    return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as LayoutIndex;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      return { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] };
    }
    throw e;
  }
}

/**
 * Builds an image into the OCI image layout at `dir` (created when missing). Building several tags
 * into one layout adds them to its index.json; a tag built twice points at the newer image.
 */
export async function buildImage(dir: string, opts: BuildImageOptions): Promise<BuiltImage> {
  const tag = opts.tag ?? 'latest';
  const platforms = opts.platforms ?? [hostPlatform()];
  if (platforms.length === 0) throw new Error('buildImage: platforms must not be empty');
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const gzipLevel = opts.gzipLevel ?? 1;

  const shared: BuiltLayer[] = [];
  for (const spec of opts.layers) shared.push(await buildLayer(dir, spec, gzipLevel));

  const manifests: BuiltManifest[] = [];
  let top: Descriptor;
  let index: Descriptor | undefined;
  const [only] = platforms;
  if (platforms.length === 1 && only !== undefined) {
    const built = await writeManifest(dir, only, shared, opts.config);
    manifests.push(built);
    top = built.manifest;
  } else {
    for (const platform of platforms) {
      const marker = await buildLayer(
        dir,
        { files: [{ path: 'etc/hoist-platform', content: `${platformKey(platform)}\n` }] },
        gzipLevel,
      );
      manifests.push(await writeManifest(dir, platform, [...shared, marker], opts.config));
    }
    index = await writeJsonBlob(dir, MEDIA_TYPES.ociIndex, {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: manifests.map((m) => ({ ...m.manifest, platform: m.platform })),
    });
    top = index;
  }

  const layout = await readLayoutIndex(dir);
  layout.manifests = layout.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
  layout.manifests.push({ ...top, annotations: { [REF_NAME]: tag } });
  await writeFile(join(dir, 'index.json'), JSON.stringify(layout));

  const all = new Set<string>();
  if (index !== undefined) all.add(index.digest);
  for (const m of manifests) {
    all.add(m.manifest.digest);
    all.add(m.config.digest);
    for (const l of m.layers) all.add(l.digest);
  }
  return {
    dir,
    tag,
    digest: top.digest,
    mediaType: top.mediaType,
    size: top.size,
    ...(index !== undefined ? { index } : {}),
    manifests,
    allDigests: [...all],
  };
}

export interface PushOptions {
  /** Manifest format in the registry: 'oci' (default, unchanged) or 'v2s2' (Docker schema 2). */
  format?: 'oci' | 'v2s2';
  /** Copy every platform of an index (`--all`); without it skopeo copies only this machine's. */
  all?: boolean;
  /** USER:PASSWORD for the destination registry. */
  creds?: string;
  /**
   * `--preserve-digests`: keep every digest. Without it skopeo gzips uncompressed ('none') layers on
   * the way to a registry, which changes the layer and manifest digests.
   */
  preserveDigests?: boolean;
  timeoutMs?: number;
  /** Run skopeo elsewhere, e.g. in a network namespace (test/helpers/netns.ts). */
  command?: CommandWrapper;
}

/** `skopeo copy oci:DIR:TAG docker://DEST` over plain HTTP; dest like 127.0.0.1:PORT/repo:tag. */
export async function pushImage(
  layoutDir: string,
  tag: string,
  dest: string,
  opts: PushOptions = {},
): Promise<void> {
  const args = ['copy', '--retry-times', '0', '--dest-tls-verify=false'];
  if (opts.all === true) args.push('--all');
  if (opts.format === 'v2s2') args.push('--format', 'v2s2');
  if (opts.format === 'oci') args.push('--format', 'oci');
  if (opts.preserveDigests === true) args.push('--preserve-digests');
  if (opts.creds !== undefined) args.push('--dest-creds', opts.creds);
  args.push(`oci:${layoutDir}:${tag}`, `docker://${dest}`);
  await runSkopeo(args, opts.command, opts.timeoutMs);
}

export interface CopyToDirOptions {
  all?: boolean;
  creds?: string;
  timeoutMs?: number;
  /** Run skopeo elsewhere, e.g. in a network namespace (test/helpers/netns.ts). */
  command?: CommandWrapper;
}

/**
 * `skopeo copy docker://... dir:OUT` over plain HTTP. OUT gets manifest.json (the top manifest or
 * index, byte for byte), one file per blob named by its hex digest, and with --all one
 * `<hex>.manifest.json` per platform manifest.
 */
export async function skopeoCopyToDir(
  src: string,
  outDir: string,
  opts: CopyToDirOptions = {},
): Promise<void> {
  const args = ['copy', '--retry-times', '0', '--src-tls-verify=false'];
  if (opts.all === true) args.push('--all');
  if (opts.creds !== undefined) args.push('--src-creds', opts.creds);
  args.push(src, `dir:${outDir}`);
  await runSkopeo(args, opts.command, opts.timeoutMs);
}

async function runSkopeo(
  args: string[],
  command: CommandWrapper | undefined,
  timeoutMs = 300_000,
): Promise<void> {
  const c = command?.('skopeo', args) ?? { cmd: 'skopeo', args };
  await run(c.cmd, c.args, { timeoutMs });
}

/** sha256 digest of a file's bytes (e.g. a manifest.json written by skopeoCopyToDir). */
export async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return `sha256:${hash.digest('hex')}`;
}
