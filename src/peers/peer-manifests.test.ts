import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { digestOf } from '../oci/index.js';
import { Membership } from './membership.js';
import { PeerMetrics } from './metrics.js';
import { PeerClient } from './peer-client.js';
import { PeerHealth } from './peer-health.js';
import { manifestFromPeers } from './peer-manifests.js';
import { rankPeers } from './rendezvous.js';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test(
  'a peer that accepts and never answers costs the manifest timeout, not the header timeout',
  { timeout: 20_000 },
  async (t) => {
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json' }),
    );
    const digest = digestOf(manifest);
    // Which of the two servers hangs is decided once their URLs (and so the ranking) are known: the
    // first-ranked one, so the good one is asked only after it.
    let hung = '';
    const held: Array<() => void> = [];
    const make = (url: () => string) =>
      createServer((req, res) => {
        if (url() === hung) {
          held.push(() => res.destroy());
          return;
        }
        assert.match(req.url ?? '', new RegExp(`/peer/v1/manifests/${digest.value}`));
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        res.end(manifest);
      });
    let aUrl = '';
    let bUrl = '';
    const a = make(() => aUrl);
    const b = make(() => bUrl);
    aUrl = await listen(a);
    bUrl = await listen(b);
    t.after(() => {
      for (const release of held) release();
      a.close();
      b.close();
    });
    const ranked = rankPeers(digest.value, [aUrl, bUrl]);
    hung = ranked[0]!;
    const membership = new Membership('http://127.0.0.1:1');
    membership.set('test', [aUrl, bUrl]);
    const health = new PeerHealth({ downMs: 5_000, quarantineMs: 60_000, slowMs: 30_000 });
    const client = new PeerClient({
      self: 'http://127.0.0.1:1',
      token: 'peer-token-for-tests-0123456789',
      connectTimeoutMs: 5_000,
      patientConnectTimeoutMs: 5_000,
      // Far past the test's own timeout: only the manifest timeout can move on to the next peer.
      headersTimeoutMs: 600_000,
    });
    t.after(() => client.close());
    const metrics = new PeerMetrics(new Registry());
    const got = await manifestFromPeers(
      { membership, health, client, metrics, logger: pino({ level: 'silent' }) },
      'reg',
      'team/app',
      digest,
      undefined,
      200,
    );
    assert.ok(got, 'the second peer served the manifest');
    assert.equal(got.peer, ranked[1]);
    assert.deepEqual(got.body, manifest);
    assert.equal(health.usable(hung), false, 'the hung peer is down for a while');
  },
);
