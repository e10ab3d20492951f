import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { BlobVerifyError } from '../mirror/download-faults.js';
import { Membership } from './membership.js';
import { PeerHealth } from './peer-health.js';
import { PeerSource } from './peer-source.js';
import { rankPeers } from './rendezvous.js';
import { parseVerdict, Verdicts, type Verdict } from './verdicts.js';

const SELF = 'http://10.0.0.1:5000';
const RELAY = 'http://10.0.0.2:5000';
const LIAR = 'http://10.0.0.3:5000';
const OTHER = 'http://10.0.0.4:5000';
const MEMBERS = [SELF, RELAY, LIAR, OTHER];
/** A digest this node ranks last for: it asks its peers, never fetches it itself. */
const DIGEST = (() => {
  for (let i = 0; ; i++) {
    const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
    if (rankPeers(digest, MEMBERS)[3] === SELF) return digest;
  }
})();

/**
 * A PeerSource for SELF whose download of DIGEST got bytes from `senders` (each served one body),
 * and whose transport answers verdict queries from `verdicts` (undefined: the peer cannot answer).
 */
async function failedDownload(senders: string[], verdicts: Record<string, Verdict | undefined>) {
  const health = new PeerHealth({ downMs: 5_000, quarantineMs: 60_000, slowMs: 30_000 });
  const membership = new Membership(SELF, pino({ level: 'silent' }));
  membership.set('static', MEMBERS);
  const mine = new Verdicts({ keepMs: 60_000 });
  const asked: string[] = [];
  let served = 0;
  const source = new PeerSource(
    'reg',
    {
      name: 'reg',
      headBlob: () => Promise.resolve({ size: 3 }),
      getBlob: () => Promise.reject(new Error('the upstream is not asked here')),
    },
    {
      membership,
      health,
      transport: {
        getBlob: (req) => {
          const peer = senders[served++] ?? req.peer;
          return Promise.resolve({
            kind: 'body' as const,
            peer,
            status: 200,
            offset: 0,
            totalSize: 3,
            contentLength: 3,
            complete: false,
            body: Readable.from([Buffer.from('abc')]),
          });
        },
        verdict: (peer) => {
          asked.push(peer);
          const v = verdicts[peer];
          return v ? Promise.resolve(v) : Promise.reject(new Error(`${peer} is gone`));
        },
      },
      verdicts: mine,
      events: { bytes: () => {}, peerError: () => {}, relayDepth: () => {}, switched: () => {} },
      logger: pino({ level: 'silent' }),
      stallMs: 2_000,
      maxPeersPerRead: 3,
      maxRelaysPerRead: 3,
      guard: (body) => body,
    },
  );
  // The first body, then one resume per further sender (a background read strikes the last off).
  await source.getBlob('team/app', DIGEST);
  for (let i = 1; i < senders.length; i++)
    await source.getBlob('team/app', DIGEST, { range: { start: 1 }, background: true });
  source.settled(DIGEST, new BlobVerifyError('DIGEST_MISMATCH', 'content digest differs'));
  await mine.attributed(DIGEST);
  return { health, asked, mine };
}

test('a relay that rejected the blob itself is cleared; the sources it blamed are quarantined, never this node', async () => {
  const { health, asked, mine } = await failedDownload([RELAY, LIAR], {
    [RELAY]: { rejected: true, blamed: [LIAR, SELF] },
    [LIAR]: { rejected: false, blamed: [] },
  });
  assert.deepEqual(asked.sort(), [LIAR, RELAY].sort(), 'every sender was asked');
  assert.equal(health.usable(RELAY), true, 'the honest relay is not avoided');
  assert.equal(health.usable(LIAR), false);
  assert.equal(health.problem(LIAR)?.problem, 'quarantined');
  // What this node tells the nodes below it: rejected, and whom it blamed.
  assert.deepEqual(await mine.verdict(DIGEST), { rejected: true, blamed: [LIAR] });
});

test('the sender resumed from after a rejecting relay is not blamed: the bad prefix explains the failure', async () => {
  const { health } = await failedDownload([RELAY, OTHER], {
    [RELAY]: { rejected: true, blamed: [LIAR] },
    [OTHER]: { rejected: false, blamed: [] },
  });
  assert.equal(health.usable(OTHER), true);
  assert.equal(health.usable(RELAY), true);
  assert.equal(health.problem(LIAR)?.problem, 'quarantined');
});

test('a sender that did not reject the blob, or cannot say, is blamed (the digest cannot clear it)', async () => {
  const { health } = await failedDownload([RELAY, LIAR], {
    [RELAY]: { rejected: false, blamed: [] },
  });
  assert.equal(health.problem(RELAY)?.problem, 'quarantined');
  assert.equal(health.problem(LIAR)?.problem, 'quarantined', 'no verdict from it: blamed');
});

test('a relay whose own bytes came from its upstream: blamed on no peer at all', async () => {
  const { health, mine } = await failedDownload([RELAY], { [RELAY]: { rejected: true, blamed: [] } });
  assert.equal(health.usable(RELAY), true);
  assert.deepEqual(await mine.verdict(DIGEST), { rejected: true, blamed: [] });
});

test('verdicts are kept as long as a quarantine, then forgotten; a new download waits for an attribution', async () => {
  let now = 0;
  const v = new Verdicts({ keepMs: 1_000, now: () => now });
  assert.deepEqual(await v.verdict(DIGEST), { rejected: false, blamed: [] });
  let attribute: (peers: string[]) => void = () => {};
  v.record(DIGEST, new Promise((resolve) => (attribute = resolve)));
  let waited = false;
  const waiting = v.attributed(DIGEST).then(() => (waited = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(waited, false, 'still attributing');
  attribute([LIAR]);
  await waiting;
  assert.deepEqual(await v.verdict(DIGEST), { rejected: true, blamed: [LIAR] });
  now = 1_001;
  assert.deepEqual(await v.verdict(DIGEST), { rejected: false, blamed: [] });
  assert.equal(parseVerdict({ rejected: true, blamed: [1] }), undefined);
  assert.deepEqual(parseVerdict({ rejected: true, blamed: [LIAR] }), { rejected: true, blamed: [LIAR] });
});
