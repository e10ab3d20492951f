// `hoist agent` against a real containerd and Hoist's mirror in front of a real docker-registry:
// it writes hosts.toml at start, pulls assigned images over CRI, reports each image's state on
// its loopback API, exports pull metrics, and refuses pulls over the disk high-water mark.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ImageStatus } from '../src/agent/index.js';
import { startHoist } from './helpers/cri.js';
import { buildImage, pushImage } from './helpers/images.js';
import { startMirroredCriNode } from './helpers/mirrored-node.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { waitUntil } from './helpers/process.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };

interface ImagesDoc {
  images: ImageStatus[];
  counts: Record<string, number>;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `${url}: ${res.status}`);
  return (await res.json()) as T;
}

function metricValue(text: string, name: string, labels: string): number {
  const line = text
    .split('\n')
    .find((l) => (labels ? l.startsWith(`${name}{`) && l.includes(labels) : l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('hoist agent', () => {
  it(
    'configures containerd, pulls assignments with states and metrics, refuses over the mark',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd')) return;
      if (!requireRoot(t, 'containerd mounts snapshots')) return;
      const work = await testTempDir(t, 'hoist-agent-');
      const registry = await startRegistry();
      t.after(() => registry.stop());
      const refs: Record<string, string> = {};
      for (const [name, size] of [
        ['first', 600_000],
        ['second', 500_000],
        ['third', 400_000],
      ] as const) {
        const img = await buildImage(join(work, name), {
          tag: 'v1',
          layers: [{ files: [{ path: `${name}.bin`, size, seed: `agent-${name}` }] }],
        });
        await pushImage(img.dir, 'v1', `${registry.host}/team/${name}:v1`);
        refs[name] = `${registry.host}/team/${name}:v1`;
      }
      const { mirror, ctd, cri, mirrorFlags } = await startMirroredCriNode(t, registry, {
        criStatsCollectPeriodSeconds: 1,
      });

      const common = [
        '--runtime-endpoint',
        `unix://${ctd.socket}`,
        '--listen',
        '127.0.0.1:0',
        '--log-level',
        'warn',
      ];
      const agent = startHoist([
        'agent',
        ...common,
        ...mirrorFlags,
        '--disk-high-water',
        'none',
        '--concurrency',
        '2',
        '--image',
        refs.first!,
      ]);
      t.after(() => agent.stop());
      const url = await agent.url;
      assert.ok(existsSync(join(ctd.hostsDir, registry.host, 'hosts.toml')), 'hosts.toml applied at start');
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      assert.equal((await fetch(`${url}/readyz`)).status, 200);

      // The image from --image, pulled through the mirror.
      let doc = await getJson<ImagesDoc>(`${url}/v1/images?wait=idle`);
      assert.equal(doc.images.length, 1);
      assert.equal(doc.images[0]?.state, 'present', JSON.stringify(doc.images[0]));
      assert.equal(doc.images[0]?.alreadyPresent, false);
      assert.equal(doc.images[0]?.source, 'flag');
      assert.ok(
        (await mirror.metric('hoist_mirror_served_bytes_total')) > 600_000 / 2,
        'the mirror served it',
      );

      // Assignments over HTTP: a new image, one the registry lacks, and one already present.
      const missing = `${registry.host}/team/missing:v1`;
      const posted = await fetch(`${url}/v1/pulls`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ images: [refs.second, missing, refs.first] }),
      });
      assert.equal(posted.status, 202);
      doc = await getJson<ImagesDoc>(`${url}/v1/images?wait=idle`);
      const byImage = new Map(doc.images.map((s) => [s.image, s]));
      assert.equal(byImage.get(refs.second!)?.state, 'present');
      assert.equal(byImage.get(refs.second!)?.alreadyPresent, false);
      assert.equal(byImage.get(refs.first!)?.state, 'present');
      assert.equal(byImage.get(refs.first!)?.alreadyPresent, true, 'present images are skipped');
      assert.equal(byImage.get(missing)?.state, 'failed');
      assert.equal(byImage.get(missing)?.code, 'PULL_FAILED');
      assert.match(byImage.get(missing)?.reason ?? '', /not found/);
      assert.deepEqual(doc.counts, { pending: 0, pulling: 0, present: 2, failed: 1 });
      const listed = (await cri.listImages()).flatMap((i) => i.repoTags);
      assert.ok(listed.includes(refs.first!) && listed.includes(refs.second!), listed.join(' '));

      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.equal(metricValue(metrics, 'hoist_agent_pulls_total', 'outcome="pulled"'), 2);
      assert.equal(metricValue(metrics, 'hoist_agent_pulls_total', 'outcome="already_present"'), 1);
      assert.equal(metricValue(metrics, 'hoist_agent_pulls_total', 'outcome="failed"'), 1);
      // kubelet_image_pull_duration_seconds buckets (1 ... 3600) and size label.
      assert.equal(
        metricValue(
          metrics,
          'hoist_agent_image_pull_duration_seconds_bucket',
          'le="3600",image_size_in_bytes="0-10MB"',
        ),
        2,
      );
      assert.match(
        metrics,
        /hoist_agent_image_pull_duration_seconds_bucket\{le="2700",image_size_in_bytes="0-10MB"\}/,
      );
      // Bytes of the images pulled (ImageStatus size): at least their layers.
      assert.ok(metricValue(metrics, 'hoist_agent_pull_bytes_total', '') > 1_100_000 / 2);

      const bad = await fetch(`${url}/v1/pulls`, { method: 'POST', body: '{"images": ["UPPER/x"]}' });
      assert.equal(bad.status, 400);
      assert.match(
        ((await bad.json()) as { error: { message: string } }).error.message,
        /invalid repository/,
      );

      assert.equal(await agent.stop(), 0, agent.stderr());

      // A second agent with a 1-byte mark, once ImageFsInfo counts the pulled images: refused.
      await waitUntil(
        'ImageFsInfo to count the pulled images',
        async () => ((await cri.imageFsInfo())[0]?.usedBytes ?? 0) > 0,
      );
      const strict = startHoist([
        'agent',
        ...common,
        '--disk-high-water',
        '1',
        '--image',
        refs.third!,
        '--image',
        refs.first!,
      ]);
      t.after(() => strict.stop());
      const strictUrl = await strict.url;
      doc = await getJson<ImagesDoc>(`${strictUrl}/v1/images?wait=idle`);
      const third = doc.images.find((s) => s.image === refs.third);
      assert.equal(third?.state, 'failed');
      assert.equal(third?.code, 'DISK_HIGH_WATER');
      assert.match(third?.reason ?? '', /at or over the high-water mark of 1 bytes/);
      assert.equal(
        doc.images.find((s) => s.image === refs.first)?.state,
        'present',
        'present images need no disk',
      );
      assert.equal(await cri.imageStatus(refs.third!), undefined);
      const strictMetrics = await (await fetch(`${strictUrl}/metrics`)).text();
      assert.equal(metricValue(strictMetrics, 'hoist_agent_pulls_total', 'outcome="refused"'), 1);
      assert.ok(metricValue(strictMetrics, 'hoist_agent_image_fs_used_bytes', '') > 0);
      assert.equal(await strict.stop(), 0, strict.stderr());
    },
  );
});
