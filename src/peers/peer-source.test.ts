import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import type { BlobResponse } from '../registry-client/index.js';
import { PeerError } from './errors.js';
import { Membership } from './membership.js';
import type { PeerAnswer, PeerBlobRequest } from './peer-client.js';
import { PeerHealth } from './peer-health.js';
import { PeerSource, type BlobSourceLike } from './peer-source.js';
import { rankPeers } from './rendezvous.js';

const SELF = 'http://10.0.0.1:5000';
const PEER = 'http://10.0.0.2:5000';

/** A digest whose fetcher, between SELF and PEER, is PEER: this node asks it first. */
function digestFetchedByPeer(): string {
  for (let i = 0; ; i++) {
    const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
    if (rankPeers(digest, [SELF, PEER])[0] === PEER) return digest;
  }
}

/**
 * A PeerSource for SELF with one peer, whose transport answers each request with the next of
 * `answers` (an error is thrown), and an upstream that records being asked. Clock injected.
 */
function setup(answers: Array<PeerAnswer | PeerError>) {
  let nowMs = 1_000_000;
  const health = new PeerHealth({
    downMs: 5_000,
    quarantineMs: 60_000,
    slowMs: 30_000,
    aliveMs: 10_000,
    now: () => nowMs,
  });
  const membership = new Membership(SELF, pino({ level: 'silent' }));
  membership.set('static', [SELF, PEER]);
  const requests: PeerBlobRequest[] = [];
  const upstreamReads: string[] = [];
  const upstream: BlobSourceLike = {
    name: 'reg',
    headBlob: () => Promise.resolve({ size: 3 }),
    getBlob: (_repo, digest) => {
      upstreamReads.push(digest);
      return Promise.resolve(bodyOf('up'));
    },
  };
  const source = new PeerSource('reg', upstream, {
    membership,
    health,
    transport: {
      getBlob: (req) => {
        requests.push(req);
        const next = answers.shift();
        if (next === undefined) throw new Error('no more answers');
        return next instanceof PeerError ? Promise.reject(next) : Promise.resolve(next);
      },
    },
    events: { bytes: () => {}, peerError: () => {}, relayDepth: () => {}, switched: () => {} },
    logger: pino({ level: 'silent' }),
    stallMs: 2_000,
    maxPeersPerRead: 3,
    maxRelaysPerRead: 3,
    // Counts bytes as the real guard does (stall-guard.ts), without its timers.
    guard: (body, _peer, hooks) => {
      body.on('data', (chunk: Buffer) => hooks.onBytes(chunk.length));
      return body;
    },
  });
  return { source, health, requests, upstreamReads, advance: (ms: number) => (nowMs += ms) };
}

function bodyOf(text: string): BlobResponse {
  return {
    status: 200,
    contentLength: text.length,
    offset: 0,
    totalSize: text.length,
    body: Readable.from([Buffer.from(text)]),
  };
}

function peerBody(text: string): PeerAnswer {
  return {
    kind: 'body',
    peer: PEER,
    status: 200,
    offset: 0,
    totalSize: text.length,
    contentLength: text.length,
    complete: false,
    body: Readable.from([Buffer.from(text)]),
  };
}

const connectTimeout = () => new PeerError('PEER_TIMEOUT', PEER, 'no connect in 500 ms', { transient: true });
const reset = () => new PeerError('PEER_UNREACHABLE', PEER, 'ECONNRESET', { transient: true });
const refused = () => new PeerError('PEER_UNREACHABLE', PEER, 'ECONNREFUSED');

for (const [name, failure] of [
  ['a connect timeout', connectTimeout],
  ['a reset before any answer', reset],
] as const) {
  test(`${name} from a peer heard from moments ago: asked again on a new connection, not marked down, nothing from the upstream`, async () => {
    const s = setup([failure(), peerBody('abc')]);
    s.health.markUp(PEER);
    s.advance(3_000);
    const res = await s.source.getBlob('team/app', digestFetchedByPeer());
    assert.equal(res.peer, PEER, 'the bytes came from the peer');
    assert.deepEqual(s.upstreamReads, [], 'the upstream was not asked');
    assert.deepEqual(
      s.requests.map((r) => r.patient === true),
      [false, true],
      'the second request was the patient one',
    );
    assert.equal(s.health.usable(PEER), true);
  });
}

test('a transient failure asked again fails again: the peer is marked down and the upstream serves', async () => {
  const s = setup([connectTimeout(), connectTimeout()]);
  s.health.markUp(PEER);
  const res = await s.source.getBlob('team/app', digestFetchedByPeer());
  assert.equal(res.peer, undefined);
  assert.equal(s.requests.length, 2, 'asked once more, not again and again');
  assert.equal(s.health.usable(PEER), false);
});

test('a peer not heard from lately, or a refused connection: marked down at once (a miss costs milliseconds)', async () => {
  const quiet = setup([connectTimeout()]);
  quiet.health.markUp(PEER);
  quiet.advance(10_001);
  const digest = digestFetchedByPeer();
  assert.equal((await quiet.source.getBlob('team/app', digest)).peer, undefined);
  assert.equal(quiet.requests.length, 1);
  assert.equal(quiet.health.usable(PEER), false);
  assert.deepEqual(quiet.upstreamReads, [digest]);

  const gone = setup([refused()]);
  gone.health.markUp(PEER);
  assert.equal((await gone.source.getBlob('team/app', digest)).peer, undefined);
  assert.equal(gone.requests.length, 1, 'a refusal is not asked again');
  assert.equal(gone.health.usable(PEER), false);
});

test('bytes received from a peer keep it alive, not only its answers', async () => {
  const s = setup([peerBody('abc'), connectTimeout(), peerBody('def')]);
  const digest = digestFetchedByPeer();
  const first = await s.source.getBlob('team/app', digest);
  // The body is read 8 s after the answer, and the next request fails 8 s after that: 16 s
  // since the answer, 8 s since the last byte.
  s.advance(8_000);
  for await (const chunk of first.body) assert.ok(chunk);
  s.advance(8_000);
  const res = await s.source.getBlob('team/app', digest);
  assert.equal(res.peer, PEER, 'asked again, and it served');
  assert.deepEqual(s.upstreamReads, []);
});
