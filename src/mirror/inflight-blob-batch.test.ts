// InflightBlob receiving a body in small reads (a shaped or slow link): the reads are written,
// hashed and announced to readers in batches (batch-sink.ts), a reader waiting at the end of
// what arrived still gets a partial batch once the delay passes, and a resume starts after
// every byte received. Writes are counted at FileHandle.writev; the delay runs on mocked timers.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, it, mock } from 'node:test';
import { digestOf } from '../oci/index.js';
import { bodyOf, tick, useTempStore } from '../../test/helpers/inflight.js';
import { InflightBlob } from './inflight-blob.js';

describe('InflightBlob: small reads in batches', () => {
  const tmp = useTempStore('hoist-inflight-batch-');
  afterEach(() => {
    mock.timers.reset();
    mock.restoreAll();
  });

  /** Counts the file writes of every download from now on (positions and lengths). */
  async function countWrites(): Promise<Array<[number, number]>> {
    const probe = await open(join(tmp.root, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { writev: (b: Buffer[], p: number) => Promise<unknown> };
    await probe.close();
    const writev = proto.writev;
    const writes: Array<[number, number]> = [];
    mock.method(proto, 'writev', function (this: unknown, buffers: Buffer[], position: number) {
      writes.push([position, buffers.reduce((n, b) => n + b.byteLength, 0)]);
      return writev.call(this, buffers, position);
    });
    return writes;
  }

  it('writes 64 reads of 1 KiB as 4 batches, and a reader at the end wakes about once per batch', async () => {
    mock.timers.enable({ apis: ['setTimeout'] }); // the delay never passes: only full batches go
    const writes = await countWrites();
    const data = randomBytes(64 * 1024);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    blob.batchBytes = 16 * 1024;
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const r = blob.acquire(0)!;
    const reads: number[] = [];
    const reading = (async () => {
      const buf = Buffer.alloc(64 * 1024);
      for (let pos = 0; ;) {
        const n = await r.read(buf, pos, buf.byteLength, undefined);
        if (n === 0) return;
        reads.push(n);
        assert.deepEqual(buf.subarray(0, n), data.subarray(pos, pos + n));
        pos += n;
      }
    })();
    for (let off = 0; off < data.byteLength; off += 1024) {
      body.write(data.subarray(off, off + 1024));
      await tick(); // each read reaches the blob on its own, as from a slow link
    }
    body.end();
    await done;
    await reading;
    r.release();
    assert.deepEqual(writes, [
      [0, 16 * 1024],
      [16 * 1024, 16 * 1024],
      [32 * 1024, 16 * 1024],
      [48 * 1024, 16 * 1024],
    ]);
    // One read per batch at most, and the last byte alone once verified; a reader woken per read
    // of the body would have read up to 64 times.
    assert.ok(reads.length <= 5, `the reader read ${reads.length} times: ${reads.join(', ')}`);
    assert.equal(
      reads.reduce((a, b) => a + b, 0),
      data.byteLength,
    );
  });

  it('a reader waiting at the end gets a partial batch once the delay passes, not before', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const writes = await countWrites();
    const data = randomBytes(10_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    blob.batchBytes = 16 * 1024;
    blob.batchDelayMs = 10;
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const r = blob.acquire(0)!;
    const buf = Buffer.alloc(data.byteLength);
    let got: number | undefined;
    const read = r.read(buf, 0, buf.byteLength, undefined).then((n) => (got = n));
    body.write(data.subarray(0, 3000));
    for (let i = 0; i < 20; i++) await tick();
    mock.timers.tick(9);
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(got, undefined, 'not before the delay');
    assert.equal(blob.bytesWritten, 0);
    mock.timers.tick(1);
    await read;
    assert.equal(got, 3000);
    assert.deepEqual(buf.subarray(0, 3000), data.subarray(0, 3000));
    assert.deepEqual(writes, [[0, 3000]]);
    // The end of the body hands on the rest at once, without waiting for the delay.
    body.end(data.subarray(3000));
    await done;
    assert.deepEqual(writes, [
      [0, 3000],
      [3000, 7000],
    ]);
    r.release();
  });

  it('resumes after every byte received, including those not yet written when the body broke', async () => {
    // Real timers (the resume's delay is one), and a batch delay far longer than the test.
    const data = randomBytes(50_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    blob.batchBytes = 16 * 1024;
    blob.batchDelayMs = 600_000;
    const first = new PassThrough();
    const offsets: number[] = [];
    const done = blob.download(first, tmp.store, {
      retries: 1,
      resume: async (offset) => {
        offsets.push(offset);
        return bodyOf(data.subarray(offset));
      },
    });
    first.write(data.subarray(0, 3000)); // below a batch
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(blob.bytesWritten, 0, 'still gathered');
    first.destroy(new Error('connection reset'));
    await done;
    assert.deepEqual(offsets, [3000]);
    assert.equal(await tmp.store.size(digestOf(data)), data.byteLength);
  });
});
