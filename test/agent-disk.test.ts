// The disk high-water mark with size estimates, against a real containerd and Hoist's mirror in
// front of a real docker-registry: with the mark set between the image filesystem's current
// usage and usage + an image's estimated size, `hoist agent` refuses that image (reason with the
// numbers) and pulls a smaller one; an image whose size cannot be estimated falls back to the
// current-usage check and says so; `hoist node pull` applies the same check.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ImageStatus } from '../src/agent/index.js';
import type { CriClient } from '../src/cri/index.js';
import { UNPACK_FACTOR, type PullReport } from '../src/node/index.js';
import { runHoist, runHoistJson, startHoist } from './helpers/cri.js';
import { buildImage, pushImage } from './helpers/images.js';
import { startMirroredCriNode } from './helpers/mirrored-node.js';
import { freePort, requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { waitUntil } from './helpers/process.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };

/**
 * ImageFsInfo once it counts every snapshot: containerd re-measures every stats_collect_period,
 * so wait for two readings with different timestamps that agree.
 */
async function settledUsage(cri: CriClient): Promise<number> {
  let last: { ts: number; used: number } | undefined;
  let settled = 0;
  await waitUntil(
    'ImageFsInfo to settle',
    async () => {
      const fs = (await cri.imageFsInfo())[0];
      if (!fs || fs.usedBytes === 0) return false;
      const prev = last;
      last = { ts: fs.timestampNs, used: fs.usedBytes };
      if (prev && prev.ts !== fs.timestampNs && prev.used === fs.usedBytes) {
        settled = fs.usedBytes;
        return true;
      }
      return false;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  return settled;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('disk high-water mark with size estimates', () => {
  it('refuses an image whose estimate crosses the mark and pulls a smaller one', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd')) return;
    if (!requireRoot(t, 'containerd mounts snapshots')) return;
    const work = await testTempDir(t, 'hoist-agent-disk-');
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const built: Record<string, Awaited<ReturnType<typeof buildImage>>> = {};
    for (const [name, size] of [
      ['base', 600_000],
      ['small', 100_000],
      ['large', 3_000_000],
    ] as const) {
      built[name] = await buildImage(join(work, name), {
        tag: 'v1',
        layers: [{ files: [{ path: `${name}.bin`, size, seed: `disk-${name}` }] }],
      });
      await pushImage(built[name].dir, 'v1', `${registry.host}/team/${name}:v1`);
    }
    const ref = (name: string) => `${registry.host}/team/${name}:v1`;
    const layer = (name: string) => built[name]!.manifests[0]!.layers[0]!;
    const estimate = (name: string) => layer(name).size * UNPACK_FACTOR;

    const { mirror, ctd, cri, endpoint, mirrorFlags, nodeFlags } = await startMirroredCriNode(t, registry, {
      criStatsCollectPeriodSeconds: 1,
    });
    const configured = await runHoist(['node', 'configure', ...mirrorFlags]);
    assert.equal(configured.code, 0, configured.stderr);

    // Some images on the node first, so the mark sits above a real, non-zero usage.
    await cri.pullImage(ref('base'));
    const used = await settledUsage(cri);
    const mark = used + estimate('small') + Math.floor((estimate('large') - estimate('small')) / 2);
    assert.ok(used < mark && used + estimate('large') > mark && used + estimate('small') <= mark);

    const unreachable = `127.0.0.1:${await freePort()}/team/gone:v1`;
    const agent = startHoist([
      'agent',
      '--runtime-endpoint',
      endpoint,
      '--listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
      '--certs-dir',
      ctd.hostsDir,
      '--disk-high-water',
      String(mark),
      '--concurrency',
      '2',
      '--image',
      ref('large'),
      '--image',
      ref('small'),
      '--image',
      unreachable,
    ]);
    t.after(() => agent.stop());
    const url = await agent.url;
    const res = await fetch(`${url}/v1/images?wait=idle`);
    const doc = (await res.json()) as { images: ImageStatus[] };
    const byImage = new Map(doc.images.map((s) => [s.image, s]));

    const large = byImage.get(ref('large'));
    assert.equal(large?.state, 'failed', JSON.stringify(large));
    assert.equal(large.code, 'DISK_HIGH_WATER');
    assert.match(
      large.reason ?? '',
      new RegExp(
        `^pulling it would take image filesystem .* past the high-water mark: ${used} bytes of images( \\+ \\d+ bytes reserved by other pulls)? \\+ ${estimate('large')} bytes estimated for this image \\(1 layer compressed x ${UNPACK_FACTOR}\\) = \\d+ bytes, over the mark of ${mark} bytes; `,
      ),
    );
    assert.equal(large.disk?.estimate?.unpackedBytes, estimate('large'));
    assert.equal(
      large.disk?.estimate?.downloadBytes,
      layer('large').size + built.large!.manifests[0]!.config.size,
    );
    assert.equal(large.disk?.estimate?.source, mirror.url, 'estimated through the mirror hosts.toml names');
    assert.equal(large.disk?.estimate?.manifestDigest, built.large!.digest);
    assert.equal(await cri.imageStatus(ref('large')), undefined, 'not pulled');
    assert.ok(
      !mirror.logs().some((l) => l.msg === 'request' && String(l.path).includes(layer('large').digest)),
      'no layer of the refused image was fetched',
    );

    const small = byImage.get(ref('small'));
    assert.equal(small?.state, 'present', JSON.stringify(small));
    assert.equal(small.alreadyPresent, false);
    assert.equal(small.disk?.estimate?.unpackedBytes, estimate('small'));
    assert.equal(small.disk?.imageFsUsedBytes, used);
    assert.ok(await cri.imageStatus(ref('small')), 'pulled');

    // No estimate possible (nothing listens there): current usage only, and the status says so.
    const gone = byImage.get(unreachable);
    assert.equal(gone?.state, 'failed', JSON.stringify(gone));
    assert.equal(gone.code, 'PULL_FAILED', 'under the mark by current usage, so the pull was tried');
    assert.match(
      gone.disk?.estimateError ?? '',
      new RegExp(
        `^size not estimated, checked current usage only: cannot read the manifest of ${escape(unreachable)} \\(http://${escape(unreachable.split('/')[0]!)}: cannot reach .*ECONNREFUSED`,
      ),
    );
    assert.equal(gone.disk?.estimate, undefined);

    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /^hoist_agent_pulls_total\{outcome="refused"\} 1$/m);
    assert.match(metrics, /^hoist_agent_pulls_total\{outcome="pulled"\} 1$/m);
    assert.equal(await agent.stop(), 0, agent.stderr());

    // `hoist node pull` takes the same decision, with a mark just under usage + the estimate.
    const usedNow = await settledUsage(cri);
    const tight = usedNow + estimate('large') - 1;
    const refused = await runHoistJson<{ images: PullReport[] }>([
      'node',
      'pull',
      ...nodeFlags,
      '--disk-high-water',
      String(tight),
      ref('large'),
    ]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.equal(refused.json.images[0]?.error?.code, 'DISK_HIGH_WATER');
    assert.match(
      refused.stderr,
      new RegExp(
        `^hoist: ${escape(ref('large'))}: pulling it would take .*: ${usedNow} bytes of images \\+ ${estimate('large')} bytes estimated .* = ${tight + 1} bytes, over the mark of ${tight} bytes;`,
        'm',
      ),
    );
    const pulled = await runHoistJson<{ images: PullReport[] }>([
      'node',
      'pull',
      ...nodeFlags,
      '--disk-high-water',
      String(tight + 1),
      ref('large'),
    ]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.equal(pulled.json.images[0]?.ok, true);
    assert.deepEqual(
      (pulled.json.images[0]?.disk as { estimate?: { unpackedBytes: number } } | undefined)?.estimate
        ?.unpackedBytes,
      estimate('large'),
    );
  });
});
