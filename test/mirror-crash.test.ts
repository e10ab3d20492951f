// Crash safety of the real `hoist mirror` binary: kill -9 while clients stream blobs that are still
// downloading (held mid-body by test/helpers/fault-proxy.ts in front of Debian's docker-registry),
// then restart on the same storage. Clients of the killed mirror see aborted connections, never a
// clean short body; the restarted mirror starts with no temp files, has none of the partial blobs
// under their digests (it fetches them again, whole and right), and serves what was complete from
// its cache without asking upstream. `hoist mirror verify` then finds the store clean, and finds and
// removes exactly the one blob whose stored bytes were flipped, which the mirror fetches again.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, type TestContext } from 'node:test';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { MEDIA_TYPES } from './helpers/images.js';
import { requirePeers, testTempDir } from './helpers/peers.js';
import { pushBlob, startRegistry, type RegistryPeer } from './helpers/registry.js';

const BIN = fileURLToPath(new URL('../bin/hoist.js', import.meta.url));
const TIMEOUT = { timeout: 180_000 };
const KiB = 1024;
const MiB = 1024 * KiB;
/** Whole-blob bodies stop here until released; the complete blobs are smaller, so never held. */
const HOLD_AT = 1 * MiB;
const REPO = 'crash/app';
const CLIENTS_PER_BLOB = 2;

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hexOf = (digest: string) => digest.slice('sha256:'.length);

interface RunningMirror {
  child: ChildProcess;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/** Starts `hoist mirror` (the built binary) and resolves once it printed its listening line. */
async function startHoistMirror(t: TestContext, args: string[]): Promise<RunningMirror> {
  const child = spawn(process.execPath, [BIN, 'mirror', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => r({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /^listening on (http:\/\/\S+)$/m.exec(stdout);
      if (m?.[1]) resolve(m[1]);
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`hoist mirror exited ${code ?? signal}: ${stderr}`)),
    );
  });
  return { child, url, exited, stderr: () => stderr };
}

interface Verified {
  code: number | null;
  stderr: string;
  report: {
    ok: boolean;
    dryRun: boolean;
    blobs: { checked: number; bad: number; bytes: number };
    manifests: { checked: number; bad: number };
    bad: Array<{ kind: string; path: string; expected: string; actual?: string; removed: boolean }>;
    tempFiles: Array<{ path: string; bytes: number; removed: boolean }>;
  };
}

/** `hoist mirror verify --storage DIR --output json [...]`: exit code and its one JSON document. */
async function verify(storage: string, ...extra: string[]): Promise<Verified> {
  const child = spawn(
    process.execPath,
    [BIN, 'mirror', 'verify', '--storage', storage, '--output', 'json', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.equal(stdout.trim().split('\n').length, 1, `one JSON document; stderr: ${stderr}`);
  return { code, stderr, report: JSON.parse(stdout) as Verified['report'] };
}

interface Download {
  /** Resolves once the first body bytes arrived. */
  started: Promise<void>;
  /** Settles when the response is over, cleanly or not. */
  done: Promise<{ status: number; bytes: number; complete: boolean; digest: string; body: Buffer }>;
}

/**
 * A GET on its own connection. `complete` is Node's verdict on the message: false when the
 * connection ended before the declared length (or the chunked terminator) arrived.
 */
function download(url: string): Download {
  let markStarted: () => void = () => {};
  const started = new Promise<void>((r) => (markStarted = r));
  const done = new Promise<Awaited<Download['done']>>((resolve) => {
    const chunks: Buffer[] = [];
    const req = get(url, { agent: false }, (res) => {
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        markStarted();
      });
      res.on('error', () => {}); // an aborted body; 'close' reports it through `complete`
      res.on('close', () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          bytes: body.byteLength,
          complete: res.complete,
          digest: sha256(body),
          body,
        });
      });
    });
    req.on('error', () => {
      const body = Buffer.concat(chunks);
      resolve({ status: 0, bytes: body.byteLength, complete: false, digest: sha256(body), body });
    });
  });
  return { started, done };
}

/** Pushes an OCI image manifest whose config and layers are already in the repository. */
async function pushManifest(
  registry: RegistryPeer,
  config: { digest: string; size: number },
  layers: Array<{ digest: string; size: number }>,
) {
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
  });
  const res = await fetch(`${registry.url}/v2/${REPO}/manifests/v1`, {
    method: 'PUT',
    headers: { 'content-type': MEDIA_TYPES.ociManifest },
    body,
  });
  assert.equal(res.status, 201, await res.text());
  return { digest: sha256(body), body };
}

describe('hoist mirror after kill -9', () => {
  it('never serves a partial blob, cleans temp files and keeps what was complete', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry')) return;
    assert.ok(existsSync(join(BIN, '..', '..', 'dist', 'cli', 'main.js')), 'dist/ is built (npm run build)');
    const work = await testTempDir(t, 'hoist-crash-');
    const storage = join(work, 'data');
    const registry = await startRegistry();
    t.after(() => registry.stop());

    // Complete before the crash: an image (config + two small layers). Mid-download at the crash:
    // three larger blobs.
    const configJson = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    );
    const complete = [configJson, randomBytes(256 * KiB), randomBytes(300 * KiB)];
    const partial = [randomBytes(6 * MiB), randomBytes(5 * MiB), randomBytes(4 * MiB + 7)];
    const completeDigests = await Promise.all(complete.map((b) => pushBlob(registry, REPO, b)));
    const partialDigests = await Promise.all(partial.map((b) => pushBlob(registry, REPO, b)));
    const [configDigest = '', ...layerDigests] = completeDigests;
    const manifest = await pushManifest(
      registry,
      { digest: configDigest, size: configJson.byteLength },
      layerDigests.map((digest, i) => ({ digest, size: complete[i + 1]?.byteLength ?? 0 })),
    );

    const proxy = await startFaultProxy(registry.url, { holdBlobAfterBytes: HOLD_AT });
    t.after(() => proxy.close());
    // A stall timeout far beyond the test: a held body must stay held, not be resumed by Range.
    const config = join(work, 'hoist.yaml');
    await writeFile(config, 'upstreamStallTimeoutSeconds: 600\n');
    const args = ['--storage', storage, '--config', config, '--upstream', `up.test=${proxy.url}`];
    const blobUrl = (base: string, digest: string) => `${base}/v2/${REPO}/blobs/${digest}?ns=up.test`;
    const blobGetsOf = (digest: string, since = 0) =>
      proxy.blobGets.slice(since).filter((g) => g.path.includes(digest));

    // 1. The first mirror caches the image, then streams the large blobs to several clients each.
    const first = await startHoistMirror(t, args);
    const m1 = await fetch(`${first.url}/v2/${REPO}/manifests/v1?ns=up.test`, {
      headers: { accept: MEDIA_TYPES.ociManifest },
    });
    assert.equal(m1.status, 200);
    assert.equal(m1.headers.get('docker-content-digest'), manifest.digest);
    assert.equal(await m1.text(), manifest.body);
    for (const [i, digest] of completeDigests.entries()) {
      const d = await download(blobUrl(first.url, digest)).done;
      assert.equal(d.complete, true);
      assert.equal(d.digest, digest, `complete blob ${i}`);
    }
    const stored = await readdir(join(storage, 'blobs', 'sha256'));
    assert.deepEqual(stored.sort(), completeDigests.map(hexOf).sort(), 'the complete blobs are stored');

    const inflight = partialDigests.flatMap((digest) =>
      Array.from({ length: CLIENTS_PER_BLOB }, () => ({ digest, d: download(blobUrl(first.url, digest)) })),
    );
    await Promise.all(inflight.map((c) => c.d.started));
    await proxy.held();
    // Every large blob is mid-download: one upstream GET each, its body held at HOLD_AT bytes.
    for (const digest of partialDigests) assert.equal(blobGetsOf(digest).length, 1);
    assert.ok((await readdir(join(storage, 'tmp'))).length >= partial.length, 'downloads write temp files');

    // 2. kill -9 while every client is streaming.
    first.child.kill('SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');
    for (const c of inflight) {
      const r = await c.d.done;
      assert.equal(r.status, 200, 'the client was streaming when the mirror died');
      assert.equal(r.complete, false, 'an aborted connection, never a clean short body');
      assert.ok(r.bytes > 0 && r.bytes <= HOLD_AT, `got ${r.bytes} bytes before the kill`);
    }

    // 3. The crashed storage: no partial blob under its digest, only temp files, which a dry-run
    //    verify reports and leaves for the restart to clean.
    assert.deepEqual(
      (await readdir(join(storage, 'blobs', 'sha256'))).sort(),
      completeDigests.map(hexOf).sort(),
    );
    const crashed = await verify(storage, '--dry-run');
    assert.equal(crashed.code, 0, crashed.stderr);
    assert.equal(crashed.report.ok, true);
    assert.deepEqual(crashed.report.bad, []);
    assert.deepEqual(crashed.report.blobs, {
      checked: complete.length,
      bad: 0,
      bytes: complete.reduce((n, b) => n + b.byteLength, 0),
    });
    assert.deepEqual(crashed.report.manifests, { checked: 1, bad: 0 });
    assert.ok(crashed.report.tempFiles.length >= partial.length, 'the partial downloads are temp files');
    assert.ok(crashed.report.tempFiles.every((f) => !f.removed && f.bytes <= HOLD_AT));

    // 4. Restart on the same storage: temp files are gone before the first request.
    proxy.release(); // bodies held for the dead mirror drain into closed sockets; new ones flow
    const second = await startHoistMirror(t, args);
    assert.deepEqual(await readdir(join(storage, 'tmp')), [], 'no temp file is left after start');
    const mark = proxy.blobGets.length;
    const requestsMark = proxy.requests.length;

    // What was complete is served from the cache: no upstream GET.
    const m2 = await fetch(`${second.url}/v2/${REPO}/manifests/${manifest.digest}?ns=up.test`, {
      headers: { accept: MEDIA_TYPES.ociManifest },
    });
    assert.equal(m2.status, 200);
    assert.equal(sha256(Buffer.from(await m2.arrayBuffer())), manifest.digest);
    for (const digest of completeDigests) {
      const d = await download(blobUrl(second.url, digest)).done;
      assert.equal(d.complete, true);
      assert.equal(d.digest, digest);
    }
    assert.deepEqual(proxy.blobGets.slice(mark), [], 'complete blobs come from the cache');
    assert.deepEqual(
      proxy.requests.slice(requestsMark).filter((q) => q.method === 'GET'),
      [],
      'nor does the manifest by digest need the upstream',
    );

    // The partial ones are fetched again, whole, and every client gets the right bytes.
    const again = await Promise.all(
      partialDigests.flatMap((digest) =>
        Array.from({ length: CLIENTS_PER_BLOB }, () => download(blobUrl(second.url, digest)).done),
      ),
    );
    for (const [i, r] of again.entries()) {
      assert.equal(r.complete, true);
      assert.equal(r.digest, partialDigests[Math.floor(i / CLIENTS_PER_BLOB)]);
    }
    for (const digest of partialDigests) {
      assert.deepEqual(
        blobGetsOf(digest, mark).map((g) => g.range),
        [''],
        'one whole-blob fetch from upstream after the restart (nothing partial was kept)',
      );
    }
    second.child.kill('SIGTERM');
    assert.equal((await second.exited).code, 0, second.stderr());

    // 5. verify on the stopped mirror's storage: everything is good.
    const clean = await verify(storage);
    assert.equal(clean.code, 0, clean.stderr);
    assert.deepEqual(clean.report.bad, []);
    assert.deepEqual(clean.report.tempFiles, []);
    assert.equal(clean.report.blobs.checked, complete.length + partial.length);
    assert.equal(clean.report.manifests.checked, 1);

    // 6. One flipped byte in one stored blob: verify finds and removes exactly that one (exit 1).
    const victim = partialDigests[1] ?? '';
    const victimPath = join(storage, 'blobs', 'sha256', hexOf(victim));
    const bytes = await readFile(victimPath);
    bytes[12345] = (bytes[12345] ?? 0) ^ 0x40;
    await writeFile(victimPath, bytes);
    const found = await verify(storage);
    assert.equal(found.code, 1, found.stderr);
    assert.deepEqual(
      found.report.bad.map((b) => ({
        path: b.path,
        expected: b.expected,
        actual: b.actual,
        removed: b.removed,
      })),
      [{ path: victimPath, expected: victim, actual: sha256(bytes), removed: true }],
    );
    assert.equal(existsSync(victimPath), false);
    assert.equal(
      (await readdir(join(storage, 'blobs', 'sha256'))).length,
      complete.length + partial.length - 1,
    );

    // ...and the mirror fetches it again, once, with the right bytes.
    const third = await startHoistMirror(t, args);
    const mark3 = proxy.blobGets.length;
    const refetched = await download(blobUrl(third.url, victim)).done;
    assert.equal(refetched.complete, true);
    assert.equal(refetched.digest, victim);
    assert.equal(blobGetsOf(victim, mark3).length, 1);
    const cached = await download(blobUrl(third.url, partialDigests[0] ?? '')).done;
    assert.equal(cached.digest, partialDigests[0]);
    assert.equal(blobGetsOf(partialDigests[0] ?? '', mark3).length, 0, 'the others stay cached');
    third.child.kill('SIGTERM');
    assert.equal((await third.exited).code, 0, third.stderr());
  });
});
