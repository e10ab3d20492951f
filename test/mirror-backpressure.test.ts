// Slow readers cannot pin memory (issue 3, "Hostile input"): one client reads a large cold blob and
// then stops reading (its socket paused, as a stuck or hostile client would) while another reads the
// same in-flight blob at full speed. The fast one gets every byte, verified, while the slow one is
// still stuck; the mirror's memory does not grow with what the slow one has not read; and the slow
// one, once it reads again, gets the whole blob too.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { get, type IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startMirror } from './helpers/mirror.js';
import { requirePeers } from './helpers/peers.js';
import { pushBlob, startRegistry } from './helpers/registry.js';

const MiB = 1024 * 1024;
/** Larger than any buffering on the way (socket buffers, the two 512 KiB send buffers per reader). */
const BLOB_BYTES = 128 * MiB;
/** What the slow client reads before it stops. */
const SLOW_READS_BYTES = 1 * MiB;
/**
 * Growth allowed while one reader is stuck, far below what it has not read (~127 MiB): of what the
 * process holds after a full collection (JS heap and Buffers), and of peak RSS, which also counts
 * garbage not yet collected (the fast reader's chunks go through this same process).
 */
const HELD_GROWTH_BOUND_BYTES = 48 * MiB;
const RSS_GROWTH_BOUND_BYTES = 96 * MiB;

// A real measurement of retained memory needs a full collection first; tests run without --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Usage {
  rss: number;
  /** JS heap plus Buffer memory: what the mirror's own code holds. */
  held: number;
}

function usage(): Usage {
  const u = process.memoryUsage();
  return { rss: u.rss, held: u.heapUsed + u.arrayBuffers };
}

/** Memory after full collections, once pending I/O callbacks have let go of their buffers. */
async function settledUsage(): Promise<Usage> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  return usage();
}

/** Peak memory sampled every few milliseconds until stop(). */
function sampleMemory(): { stop(): Usage } {
  const peak = usage();
  const timer = setInterval(() => {
    const u = usage();
    peak.rss = Math.max(peak.rss, u.rss);
    peak.held = Math.max(peak.held, u.held);
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

function request(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, resolve).on('error', reject);
  });
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('backpressure', () => {
  it(
    'a stuck reader neither holds up a fast reader of the same cold blob nor pins memory',
    { timeout: 180_000 },
    async (t) => {
      if (!requirePeers(t, 'docker-registry')) return;
      const registry = await startRegistry();
      t.after(() => registry.stop());
      let data: Buffer | undefined = randomBytes(BLOB_BYTES);
      const digest = sha256(data);
      await pushBlob(registry, 'bp/blob', data);
      data = undefined; // the blob lives upstream now, not in this process's memory
      const mirror = await startMirror({ 'up.test': registry.url });
      t.after(() => mirror.close());
      const url = `${mirror.url}/v2/bp/blob/blobs/${digest}?ns=up.test`;

      const before = await settledUsage();
      const peak = sampleMemory();

      // The slow client starts the cold download, reads a little, then stops reading.
      const slow = await request(url);
      assert.equal(slow.statusCode, 200);
      const slowHash = createHash('sha256');
      let slowBytes = 0;
      let stopped = false;
      slow.on('data', (chunk: Buffer) => {
        slowHash.update(chunk);
        slowBytes += chunk.byteLength;
        if (!stopped && slowBytes >= SLOW_READS_BYTES) {
          stopped = true;
          slow.pause();
        }
      });
      while (slowBytes < SLOW_READS_BYTES) await once(slow, 'data');

      // The fast client reads the same in-flight blob to the end and verifies it.
      const fast = await request(url);
      assert.equal(fast.statusCode, 200);
      const fastHash = createHash('sha256');
      let fastBytes = 0;
      fast.on('data', (chunk: Buffer) => {
        fastHash.update(chunk);
        fastBytes += chunk.byteLength;
      });
      await once(fast, 'end');
      assert.equal(fastBytes, BLOB_BYTES);
      assert.equal(`sha256:${fastHash.digest('hex')}`, digest);

      // The fast one finished while the slow one was stuck far behind, and the download was stored.
      const stuckAt = slowBytes;
      assert.ok(stuckAt < BLOB_BYTES / 2, `the slow client read ${stuckAt} bytes while paused`);
      assert.equal(
        await mirror.mirror.blobs.size({ algorithm: 'sha256', hex: digest.slice(7), value: digest }),
        BLOB_BYTES,
      );

      // Memory: nothing proportional to what the stuck client has not read is held for it.
      const retained = await settledUsage();
      const peakUsage = peak.stop();
      const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
      t.diagnostic(
        `held: ${mib(before.held)} -> peak ${mib(peakUsage.held)}, after gc ${mib(retained.held)}; ` +
          `rss: ${mib(before.rss)} -> peak ${mib(peakUsage.rss)}, after gc ${mib(retained.rss)}; slow client at ${mib(stuckAt)}`,
      );
      assert.ok(
        retained.held - before.held < HELD_GROWTH_BOUND_BYTES,
        `retained ${mib(retained.held - before.held)}`,
      );
      assert.ok(
        peakUsage.rss - before.rss < RSS_GROWTH_BOUND_BYTES,
        `RSS grew ${mib(peakUsage.rss - before.rss)}`,
      );

      // The stuck client reads again and gets the whole blob, intact.
      slow.resume();
      await once(slow, 'end');
      assert.equal(slowBytes, BLOB_BYTES);
      assert.equal(`sha256:${slowHash.digest('hex')}`, digest);
    },
  );
});
