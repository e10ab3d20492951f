// The two mirrors under test behind one interface: Hoist (`node bin/hoist.js mirror`, a separate
// process) and distribution's pull-through proxy (`docker-registry` with `proxy.remoteurl`).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, removeTempDir, tempDir } from '../test/helpers/peers.js';
import type { RegistryPeer } from '../test/helpers/registry.js';
import { startRegistry } from '../test/helpers/registry.js';
import { MIRROR_NODE_FLAGS } from '../src/mirror/node-flags.js';
import { findPid } from './proc-stats.js';

export type MirrorName = 'hoist' | 'docker-registry';
export const MIRROR_NAMES: readonly MirrorName[] = ['hoist', 'docker-registry'];

export interface MirrorUnderTest {
  readonly name: MirrorName;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly pid: number;
  /** True once the blob is complete in the mirror's own storage. */
  isStored(blobHex: string): Promise<boolean>;
  /** Upstream blob bytes by the mirror's own count, when it keeps one. */
  upstreamBytesMetric(): Promise<number | undefined>;
  /** Stops the process and deletes its storage. */
  stop(): Promise<void>;
}

export const ROOT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const HOIST_BIN = join(ROOT_DIR, 'bin', 'hoist.js');
const HOIST_START_TIMEOUT_MS = 20_000;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Fails with what to do when the mirror has not been built. */
export async function requireHoistBuild(): Promise<void> {
  if (!(await exists(join(ROOT_DIR, 'dist', 'cli', 'main.js')))) {
    throw new Error('dist/cli/main.js is missing: build the mirror first with `npm run build`');
  }
}

export interface HoistOptions {
  /** Named on the mirror's command line by its host, reached at its URL. */
  upstream: Pick<RegistryPeer, 'host' | 'url'>;
  /** The `bin/hoist.js` to run: this tree's unless another built tree is compared. */
  bin?: string;
  /** The mirror's JSON log (stderr) goes to this file. */
  logPath: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
}

export async function startHoist(opts: HoistOptions): Promise<MirrorUnderTest> {
  const storage = await tempDir('hoist-bench-mirror');
  const port = await freePort();
  await mkdir(dirname(opts.logPath), { recursive: true });
  const log = createWriteStream(opts.logPath);
  await once(log, 'open');
  const up = opts.upstream.host;
  const child = spawn(
    process.execPath,
    [
      // As the image runs it (Dockerfile ENTRYPOINT).
      ...MIRROR_NODE_FLAGS,
      // Extra flags for a look inside (--cpu-prof, --trace-gc): options, or $HOIST_NODE_ARGS.
      ...(opts.nodeArgs ?? (process.env.HOIST_NODE_ARGS ?? '').split(' ').filter(Boolean)),
      opts.bin ?? HOIST_BIN,
      'mirror',
      '--listen',
      `127.0.0.1:${port}`,
      '--storage',
      storage,
      '--upstream',
      `${up}=${opts.upstream.url}`,
      '--default-upstream',
      up,
    ],
    { stdio: ['ignore', 'pipe', log] },
  );
  const exited = once(child, 'exit');
  let stdout = '';
  child.stdout.setEncoding('utf8');
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`hoist did not print "listening on" within ${HOIST_START_TIMEOUT_MS} ms`)),
      HOIST_START_TIMEOUT_MS,
    );
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      log.write(chunk); // beside the JSON log: what node flags such as --trace-gc print
      const m = /listening on (http:\/\/\S+)/.exec(stdout);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void exited.then(([code]) => {
      clearTimeout(timer);
      reject(new Error(`hoist exited (${String(code)}) before listening; see ${opts.logPath}`));
    });
  });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    log.end();
    await removeTempDir(storage);
  };

  let url: string;
  try {
    url = await listening;
  } catch (err) {
    await stop();
    throw err;
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('hoist has no pid');
  return {
    name: 'hoist',
    url,
    pid,
    isStored: (hex) => exists(join(storage, 'blobs', 'sha256', hex)),
    async upstreamBytesMetric() {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
      const text = await res.text();
      let total = 0;
      for (const m of text.matchAll(/^hoist_mirror_upstream_bytes_total(?:\{[^}]*\})? (\S+)$/gm)) {
        total += Number(m[1]);
      }
      return total;
    },
    stop,
  };
}

/** distribution 2.8 as a pull-through cache of `upstream`, with storage of its own. */
export async function startRegistryProxy(upstream: RegistryPeer): Promise<MirrorUnderTest> {
  const peer = await startRegistry({ proxyRemoteUrl: upstream.url });
  let pid: number;
  try {
    pid = await findPid(peer.configPath);
  } catch (err) {
    await peer.stop();
    throw err;
  }
  return {
    name: 'docker-registry',
    url: peer.url,
    pid,
    isStored: (hex) =>
      exists(
        join(peer.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'),
      ),
    upstreamBytesMetric: () => Promise.resolve(undefined),
    stop: () => peer.stop(),
  };
}

export function blobUrl(mirror: MirrorUnderTest, repo: string, digest: string): string {
  return `${mirror.url}/v2/${repo}/blobs/${digest}`;
}
