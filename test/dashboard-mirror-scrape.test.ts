// The dashboard's per-node cache figures read from real mirrors: a `hoist mirror` in front of a
// real docker-registry serves one blob twice (a miss, then a hit), and the scraper reports its
// store, hit ratio and bytes; a target that refuses and one that never answers report an error
// within the timeout and do not hold up the others.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, it } from 'node:test';
import { MirrorScraper } from '../src/dashboard/mirror-scraper.js';
import { startMirror } from './helpers/mirror.js';
import { freePort, requirePeers } from './helpers/peers.js';
import { pushBlob, startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 120_000 };

describe('mirror scraper', () => {
  it(
    'reads cache use, hit ratio and bytes from real mirrors; a dead or hung one reports an error',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry')) return;
      const registry = await startRegistry();
      t.after(() => registry.stop());
      const mirror = await startMirror({ [registry.host]: registry.url }, { defaultUpstream: registry.host });
      t.after(() => mirror.close());
      const blob = Buffer.alloc(100_000, 7);
      const digest = await pushBlob(registry, 'test/blob', blob);
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${mirror.url}/v2/test/blob/blobs/${digest}`);
        assert.equal(res.status, 200);
        assert.equal((await res.arrayBuffer()).byteLength, blob.length);
      }
      // Accepts connections, never answers: the timeout must end the read.
      const sockets = new Set<Socket>();
      const hung: Server = createServer(() => {});
      hung.on('connection', (s) => sockets.add(s));
      await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
      t.after(() => {
        for (const s of sockets) s.destroy();
        hung.close();
      });
      const deadPort = await freePort();

      const scraper = new MirrorScraper({
        targets: () => [
          { node: 'n1', url: mirror.url },
          { node: 'n2', url: `http://127.0.0.1:${deadPort}` },
          { node: 'n3', url: `http://127.0.0.1:${(hung.address() as AddressInfo).port}` },
        ],
        timeoutMs: 1_000,
        concurrency: 2,
      });
      let changes = 0;
      scraper.onChange(() => changes++);
      await scraper.scrapeOnce();
      assert.equal(changes, 1);
      const byNode = Object.fromEntries(scraper.nodes().map((n) => [n.node, n]));
      assert.equal(byNode.n1?.error, undefined);
      assert.equal(byNode.n1?.blobLookups, 2);
      assert.equal(byNode.n1?.blobHits, 1);
      assert.equal(byNode.n1?.storeBytes, blob.length);
      assert.equal(byNode.n1?.upstreamBytes, blob.length);
      assert.equal(byNode.n1?.servedBytes, 2 * blob.length);
      assert.match(byNode.n2?.error ?? '', /fetch failed|ECONNREFUSED/);
      assert.equal(byNode.n3?.error, 'timed out');
    },
  );
});
