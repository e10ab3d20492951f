// Builds and runs test/go/estargz-verify (the stargz reference library, Debian's
// golang-github-containerd-stargz-snapshotter-dev, in GOPATH mode), plus the small registry
// reads the eStargz tests share.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { goBinary } from '../helpers/go-peers.js';
import { runHoist, type HoistResult } from '../helpers/cri.js';
import { run } from '../helpers/process.js';

const SOURCE = fileURLToPath(new URL('./estargz-verify/main.go', import.meta.url));
export const STARGZ_LIBRARY = '/usr/share/gocode/src/github.com/containerd/stargz-snapshotter/estargz';
export const BIN = fileURLToPath(new URL('../../bin/hoist.js', import.meta.url));

export interface VerifiedFile {
  type: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  linkName?: string;
  source?: string;
  sha256?: string;
  xattrs?: Record<string, string>;
  devMajor?: number;
  devMinor?: number;
}

export interface VerifierReport {
  tocDigest: string;
  tocOffset: number;
  diffId: string;
  uncompressedSize: number;
  chunksVerified: number;
  tocOrder: string[];
  chunkSizes: Record<string, number[] | null>;
  files: Record<string, VerifiedFile>;
}

/**
 * `GO111MODULE=off GOPATH=<dir>:/usr/share/gocode go build`; returns the binary's path. The Go
 * is goBinary()'s (the preinstalled 1.26 before Debian's 1.19, whichever PATH lists first).
 */
export async function buildVerifier(dir: string): Promise<string> {
  const go = goBinary();
  if (go === undefined) throw new Error('no Go toolchain: run scripts/install-peers.sh');
  const pkg = join(dir, 'src', 'estargz-verify');
  await mkdir(pkg, { recursive: true });
  await copyFile(SOURCE, join(pkg, 'main.go'));
  const bin = join(dir, 'estargz-verify');
  await run(go, ['build', '-o', bin, '.'], {
    cwd: pkg,
    env: {
      ...process.env,
      GO111MODULE: 'off',
      // GOPATH mode has no go.mod to ask for another toolchain; never fetch one.
      GOTOOLCHAIN: 'local',
      GOPATH: `${dir}:/usr/share/gocode`,
      // The user's persistent build cache where there is one: Go >= 1.20 ships no precompiled
      // standard library, so a fresh cache recompiles it on every build (~30 s on 2 cores).
      ...(hasDefaultGoCache() ? {} : { GOCACHE: join(dir, 'cache') }),
    },
    timeoutMs: 300_000,
  });
  return bin;
}

function hasDefaultGoCache(): boolean {
  const env = process.env;
  return [env.GOCACHE, env.XDG_CACHE_HOME, env.HOME].some((v) => v !== undefined && v !== '');
}

export function hasStargzLibrary(): boolean {
  return existsSync(join(STARGZ_LIBRARY, 'estargz.go'));
}

/** Runs the verifier; rejects with its stderr when the reference library refuses the blob. */
export async function verifyBlob(bin: string, blobPath: string, tocDigest: string): Promise<VerifierReport> {
  const { stdout } = await run(bin, ['-blob', blobPath, '-toc-digest', tocDigest], { timeoutMs: 120_000 });
  return JSON.parse(stdout) as VerifierReport;
}

export type { HoistResult };

/** Runs the built `hoist` binary (npm run build first), in `env` (default: the test's own). */
export function hoist(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<HoistResult> {
  return runHoist(args, env === process.env ? {} : { env });
}

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export interface Fetched {
  body: Buffer;
  contentType: string;
  digest: string;
}

export async function getManifest(url: string, repo: string, ref: string): Promise<Fetched> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT } });
  if (res.status !== 200) throw new Error(`manifest ${repo}:${ref} answered ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  return {
    body,
    contentType: res.headers.get('content-type') ?? '',
    digest: `sha256:${createHash('sha256').update(body).digest('hex')}`,
  };
}

export async function getBlob(url: string, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${digest}`);
  if (res.status !== 200) throw new Error(`blob ${repo}@${digest} answered ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

export async function saveBlob(url: string, repo: string, digest: string, path: string): Promise<void> {
  await writeFile(path, await getBlob(url, repo, digest));
}
