// Hostile input (issue 3): thousands of malformed requests, on raw TCP, against the mirror in front of
// a real docker-registry holding one small image. Every answer is a 4xx with an OCI error body; the
// mirror never answers 5xx or hangs, keeps serving a real pull afterwards, writes nothing outside its
// storage directory, and never passes anything malformed on to the upstream.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { isDigest, isValidRepository, isValidTag } from '../src/oci/index.js';
import { fuzzCases, type HostileCase, type Target } from './helpers/hostile-requests.js';
import { tableCases } from './helpers/hostile-table.js';
import { sendRaw, type RawAnswer } from './helpers/raw-http.js';
import { buildImage, fileDigest, pushImage, skopeoCopyToDir } from './helpers/images.js';
import { startMirror } from './helpers/mirror.js';
import { requirePeers, testTempDir } from './helpers/peers.js';
import type { AccessLogEntry } from './helpers/registry.js';
import { startRegistry } from './helpers/registry.js';

/** Replay a failure with HOIST_FUZZ_SEED=<seed>. */
const SEED = Number(process.env.HOIST_FUZZ_SEED ?? 20_260_301);
const FUZZ_COUNT = 3000;
const CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 5_000;

/** What is wrong with one answer, or undefined when it is a proper refusal. */
function judge(c: HostileCase, a: RawAnswer): string | undefined {
  if (a.hung) return `no answer within ${REQUEST_TIMEOUT_MS} ms (got ${a.responses.length})`;
  if (a.responses.length === 0) return `connection closed without an answer (${JSON.stringify(a.garbage)})`;
  for (const [i, r] of a.responses.entries()) {
    if (r.status < 400 || r.status > 499)
      return `answer ${i + 1} is ${r.status}: ${r.body.toString().slice(0, 200)}`;
    if (c.bareNodeAnswer === true || (i === 0 && c.head === true)) continue;
    if (!/^application\/json/.test(r.headers['content-type'] ?? '')) {
      return `answer ${i + 1} (${r.status}) has content-type ${r.headers['content-type']}, not an OCI error body`;
    }
    try {
      const body = JSON.parse(r.body.toString('utf8')) as {
        errors?: Array<{ code?: unknown; message?: unknown }>;
      };
      const e = body.errors?.[0];
      if (typeof e?.code !== 'string' || typeof e.message !== 'string')
        throw new Error('no code and message');
    } catch (err) {
      return `answer ${i + 1} (${r.status}) is not an OCI error body (${String(err)}): ${r.body.toString().slice(0, 200)}`;
    }
  }
  return undefined;
}

async function runAll(port: number, cases: HostileCase[]): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++] as HostileCase;
      const answer = await sendRaw(port, c.raw, {
        expected: c.responses ?? 1,
        head: c.head === true,
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
      const wrong = judge(c, answer);
      if (wrong !== undefined) failures.push(`${c.name}: ${wrong}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return failures;
}

/** Every file and directory under `dir` (relative paths, with sizes), skipping `skip`. */
async function tree(dir: string, skip?: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const full = join(entry.parentPath, entry.name);
    if (skip !== undefined && (full === skip || full.startsWith(`${skip}/`))) continue;
    const size = entry.isFile() ? (await stat(full)).size : -1;
    out.push(`${relative(dir, full)} ${entry.isDirectory() ? 'dir' : size}`);
  }
  return out.sort();
}

/**
 * The storage layout (blob-store.ts, manifest-store.ts, access.ts): anything else is a file that
 * should not be there.
 */
function unexpectedInStorage(paths: string[]): string[] {
  const hex = (n: number) => `[a-f0-9]{${n}}`;
  const allowed = [
    /^(blobs|manifests|tags|tmp|access|mirror\.pid)$/,
    /^(blobs|manifests)\/(sha256|sha512)$/,
    new RegExp(`^(blobs|manifests)/sha256/${hex(64)}$`),
    new RegExp(`^(blobs|manifests)/sha512/${hex(128)}$`),
  ];
  return paths.filter((p) => {
    if (allowed.some((re) => re.test(p))) return false;
    // access/<upstream, URI-encoded>/<repository>/_members/<algorithm>/<hex>: the same shape as tags/.
    const a = /^access\/([^/]+)(?:\/(.+?))?(?:\/_members(?:\/(sha256|sha512)(?:\/([a-f0-9]+))?)?)?$/.exec(p);
    if (a) {
      const [, upstream = '', repo, , digestHex] = a;
      if (!/^[A-Za-z0-9.%-]+$/.test(upstream)) return true;
      if (
        repo !== undefined &&
        !repo.split('/').every((_, i, parts) => isValidRepository(parts.slice(0, i + 1).join('/')))
      )
        return true;
      return digestHex !== undefined && !/^[a-f0-9]{64}$|^[a-f0-9]{128}$/.test(digestHex);
    }
    // tags/<upstream, URI-encoded>/<repository>[/_tags[/<tag>]]
    const m = /^tags\/([^/]+)(?:\/(.+?))?(?:\/_tags(?:\/([^/]+))?)?$/.exec(p);
    if (!m) return true;
    const [, upstream = '', repo, tag] = m;
    if (!/^[A-Za-z0-9.%-]+$/.test(upstream)) return true;
    if (
      repo !== undefined &&
      !repo.split('/').every((_, i, parts) => isValidRepository(parts.slice(0, i + 1).join('/')))
    )
      return true;
    return tag !== undefined && !isValidTag(tag);
  });
}

/** An upstream request the mirror may make: a well-formed distribution-spec pull path. */
function malformedUpstreamRequest(e: AccessLogEntry): boolean {
  if (e.method !== 'GET' && e.method !== 'HEAD') return true;
  if (e.path === '/v2/') return e.query !== '';
  const m = /^\/v2\/(.+)\/(manifests\/([^/]+)|blobs\/([^/]+)|tags\/list)$/.exec(e.path);
  if (!m) return true;
  const [, name = '', , ref, digest] = m;
  if (!isValidRepository(name)) return true;
  if (ref !== undefined && !isValidTag(ref) && !isDigest(ref)) return true;
  if (digest !== undefined && !isDigest(digest)) return true;
  if (e.query === '') return false;
  const q = new URLSearchParams(e.query);
  for (const [k, v] of q) {
    if (k === 'n' ? !/^\d{1,6}$/.test(v) : k === 'last' ? !isValidTag(v) : true) return true;
  }
  return false;
}

describe('hostile input', () => {
  it(
    'answers thousands of malformed requests with a 4xx and an OCI error body, and keeps serving',
    { timeout: 600_000 },
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
      // `work` holds only the storage directory and a sibling: after the barrage it must hold exactly
      // what it held before. The image and the pulled copies live elsewhere.
      const work = await testTempDir(t, 'hoist-hostile-');
      const scratch = await testTempDir(t, 'hoist-hostile-scratch-');
      const storage = join(work, 'storage');
      const sibling = join(work, 'sibling');
      await mkdir(join(sibling, 'nested'), { recursive: true });
      await writeFile(join(sibling, 'keep.txt'), 'keep\n');
      await writeFile(join(sibling, 'nested', 'keep.bin'), randomBytes(100));

      const registry = await startRegistry();
      t.after(() => registry.stop());
      const image = await buildImage(join(scratch, 'image'), {
        tag: 'v1',
        layers: [{ files: [{ path: 'etc/hello.txt', content: 'hello\n' }] }],
      });
      await pushImage(image.dir, 'v1', `${registry.host}/test/app:v1`);
      // The upstream log from here on is the mirror's doing alone.
      await registry.waitForAccess((e) => e.method === 'PUT' && e.path === '/v2/test/app/manifests/v1');
      const pushLines = registry.accessLog().length;
      const layer = image.manifests[0]?.layers[0];
      assert.ok(layer);

      const mirror = await startMirror(
        { [registry.host]: registry.url },
        { defaultUpstream: registry.host, storage },
      );
      t.after(() => mirror.close());
      const port = Number(mirror.host.split(':')[1]);
      const target: Target = {
        host: mirror.host,
        repo: 'test/app',
        tag: 'v1',
        manifestDigest: image.digest,
        digest: layer.digest,
        ns: registry.host,
        marker: `hoist-escape-${SEED}`,
      };

      // A first real pull, so that the store holds blobs, manifests and a tag entry during the barrage.
      await skopeoCopyToDir(`docker://${mirror.host}/test/app:v1`, join(scratch, 'pull-1'));
      const workBefore = await tree(work, storage);
      const siblingBefore = await tree(sibling);

      const cases = [...tableCases(target), ...fuzzCases(target, SEED, FUZZ_COUNT)];
      assert.ok(cases.length > 3000);
      const failures = await runAll(port, cases);
      assert.deepEqual(
        failures.slice(0, 30),
        [],
        `${failures.length} of ${cases.length} cases failed (seed ${SEED})`,
      );

      // Still serving: a real pull through the mirror, byte for byte.
      const out = join(scratch, 'pull-2');
      await skopeoCopyToDir(`docker://${mirror.host}/test/app:v1`, out);
      assert.equal(await fileDigest(join(out, 'manifest.json')), image.digest);
      assert.equal(await fileDigest(join(out, layer.digest.slice(7))), layer.digest);
      const health = await fetch(`${mirror.url}/readyz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      // Requests refused before they parsed are counted and logged like the others.
      assert.ok((await mirror.metric('hoist_mirror_requests_total', { route: 'malformed' })) > 0);
      assert.ok(mirror.logs().some((l) => l.msg === 'request' && l.route === 'malformed'));

      // Nothing written outside the storage directory, and nothing but the store's layout inside it.
      assert.deepEqual(await tree(work, storage), workBefore);
      assert.deepEqual(await tree(sibling), siblingBefore);
      assert.deepEqual(
        (await readdir(tmpdir())).filter((n) => n.includes(target.marker)),
        [],
      );
      const stored = (await tree(storage)).map((l) => l.slice(0, l.lastIndexOf(' ')));
      assert.deepEqual(unexpectedInStorage(stored), []);
      assert.deepEqual(
        stored.filter((p) => p.startsWith('tmp/')),
        [],
        'no temp file left behind',
      );
      assert.ok(!stored.some((p) => p.includes(target.marker)));

      // The upstream was only ever asked well-formed questions.
      const log = registry.accessLog().slice(pushLines);
      assert.ok(log.length > 0);
      assert.deepEqual(
        log.filter(malformedUpstreamRequest).map((e) => `${e.method} ${e.path}?${e.query}`),
        [],
      );

      // No 5xx was logged as an error by the mirror.
      assert.deepEqual(
        mirror
          .logs()
          .filter((l) => Number(l.level) >= 50)
          .slice(0, 5),
        [],
      );
    },
  );

  // distribution answers 500 UNKNOWN to a manifest GET that names a layer's digest. Such a request is
  // well-formed, so no guard refuses it; it must not open the registry client's per-upstream breaker,
  // or one hostile client could make the mirror turn every other client away.
  it(
    'a manifest request naming a layer digest does not turn other clients away',
    { timeout: 120_000 },
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
      const scratch = await testTempDir(t, 'hoist-hostile-500-');
      const registry = await startRegistry();
      t.after(() => registry.stop());
      const image = await buildImage(join(scratch, 'image'), {
        tag: 'v1',
        layers: [{ files: [{ path: 'etc/hello.txt', content: 'hello\n' }] }],
      });
      await pushImage(image.dir, 'v1', `${registry.host}/test/app:v1`);
      const layer = image.manifests[0]?.layers[0];
      assert.ok(layer);
      // A long breaker window, so that the outcome does not depend on how fast the next request comes.
      const mirror = await startMirror(
        { [registry.host]: registry.url },
        { defaultUpstream: registry.host, file: { retryBaseDelayMs: 10_000, retryMaxDelayMs: 10_000 } },
      );
      t.after(() => mirror.close());
      const hostile = await fetch(`${mirror.url}/v2/test/app/manifests/${layer.digest}`);
      await hostile.body?.cancel();
      assert.notEqual(hostile.status, 200);
      const next = await fetch(`${mirror.url}/v2/test/app/manifests/v1`, {
        headers: { accept: image.mediaType },
      });
      assert.equal(next.status, 200, await next.text());
    },
  );
});
