// BatchSink on its own: how writes become batches, when a partial batch goes (the delay, the end,
// a broken body), and what holds the body back. The delay runs on mocked timers, never the clock.
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { BatchSink } from './batch-sink.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A sink whose batches are recorded; each flush resolves when the test says so (`release`). */
function recording(batchBytes: number, delayMs = 10, held = false) {
  const batches: Buffer[] = [];
  const waiting: Array<() => void> = [];
  let flushing = 0;
  let maxConcurrent = 0;
  const sink = new BatchSink({
    batchBytes,
    delayMs,
    highWaterMark: 4 * batchBytes,
    flush: async (chunks, bytes) => {
      flushing++;
      maxConcurrent = Math.max(maxConcurrent, flushing);
      const batch = Buffer.concat(chunks);
      assert.equal(batch.byteLength, bytes);
      batches.push(batch);
      if (held) await new Promise<void>((resolve) => waiting.push(resolve));
      flushing--;
    },
  });
  return {
    sink,
    batches,
    maxConcurrent: () => maxConcurrent,
    /** Lets the oldest held flush finish. */
    release: () => (waiting.shift() as () => void)(),
    held: () => waiting.length,
  };
}

/** Writes `chunk` and resolves whether its callback was called within a few turns of the loop. */
async function writeAcked(sink: BatchSink, chunk: Buffer): Promise<{ acked: () => boolean }> {
  let acked = false;
  sink.write(chunk, () => (acked = true));
  for (let i = 0; i < 5; i++) await tick();
  return { acked: () => acked };
}

describe('BatchSink', () => {
  afterEach(() => {
    mock.timers.reset();
    mock.restoreAll();
  });

  it('hands 64 writes of 1 KiB on as 4 batches of 16 KiB, in order', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const r = recording(16 * 1024);
    const data = Buffer.alloc(64 * 1024);
    for (let i = 0; i < data.byteLength; i++) data[i] = i % 251;
    for (let off = 0; off < data.byteLength; off += 1024) {
      r.sink.write(data.subarray(off, off + 1024));
      await tick(); // each write reaches the sink on its own, as reads from a slow link do
    }
    assert.deepEqual(
      r.batches.map((b) => b.byteLength),
      [16 * 1024, 16 * 1024, 16 * 1024, 16 * 1024],
    );
    assert.deepEqual(Buffer.concat(r.batches), data);
    assert.equal(r.sink.gatheredBytes, 0);
  });

  it('hands a partial batch on after the delay, not before, and the rest at the end', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const r = recording(16 * 1024, 10);
    const finished = new Promise<void>((resolve) => r.sink.on('finish', resolve));
    await writeAcked(r.sink, Buffer.alloc(3000, 1));
    await writeAcked(r.sink, Buffer.alloc(1000, 2));
    mock.timers.tick(9);
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(r.batches.length, 0, 'nothing before the delay');
    assert.equal(r.sink.gatheredBytes, 4000);
    mock.timers.tick(1);
    for (let i = 0; i < 5; i++) await tick();
    assert.deepEqual(
      r.batches.map((b) => b.byteLength),
      [4000],
    );
    // The delay counts from the first byte gathered, and the end hands on what is left at once.
    await writeAcked(r.sink, Buffer.alloc(500, 3));
    r.sink.end();
    await finished;
    assert.deepEqual(
      r.batches.map((b) => b.byteLength),
      [4000, 500],
    );
  });

  it('holds the write that fills a batch until the batch is taken, one batch at a time', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const r = recording(4096, 10, true);
    const first = await writeAcked(r.sink, Buffer.alloc(2048));
    assert.equal(first.acked(), true, 'a write below the batch is taken at once');
    const filling = await writeAcked(r.sink, Buffer.alloc(2048));
    assert.equal(r.held(), 1, 'the full batch is being taken');
    assert.equal(filling.acked(), false, 'the write that filled it waits for it');
    // Writes meanwhile wait in the Writable's buffer (the body is held back beyond its
    // highWaterMark); none is handed on while a batch is being taken.
    const later = await writeAcked(r.sink, Buffer.alloc(8192));
    assert.equal(later.acked(), false);
    assert.equal(r.batches.length, 1);
    r.release();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(filling.acked(), true);
    assert.equal(r.batches.length, 2, 'the next batch goes once the first was taken');
    assert.equal(r.maxConcurrent(), 1);
    r.release();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(later.acked(), true);
  });

  it('flushReceived waits for a batch still being taken, and hands on what was gathered', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const r = recording(4096, 10, true);
    r.sink.on('error', () => {});
    await writeAcked(r.sink, Buffer.alloc(4096, 1)); // a full batch, being taken
    r.sink.destroy(new Error('connection reset')); // the body broke meanwhile
    let flushed = false;
    const flushing = r.sink.flushReceived().then(() => (flushed = true));
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(flushed, false, 'a resume must not start before the batch is written');
    r.release();
    await flushing;
    assert.equal(r.batches.length, 1, 'nothing more was gathered');

    const r2 = recording(4096);
    r2.sink.on('error', () => {});
    await writeAcked(r2.sink, Buffer.alloc(1000, 2));
    r2.sink.destroy(new Error('connection reset'));
    await r2.sink.flushReceived();
    assert.deepEqual(
      r2.batches.map((b) => b.byteLength),
      [1000],
      'a destroyed sink still hands on what it gathered',
    );
  });

  it('a failed flush destroys the sink, and every later flush fails with the same error', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const failure = Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    const sink = new BatchSink({
      batchBytes: 4096,
      delayMs: 10,
      highWaterMark: 4096,
      flush: () => Promise.reject(failure),
    });
    const errored = new Promise<Error>((resolve) => sink.on('error', resolve));
    sink.write(Buffer.alloc(100));
    mock.timers.tick(10); // the delayed flush fails: nobody awaits it but the sink
    assert.equal(await errored, failure);
    await assert.rejects(sink.flushReceived(), failure);
  });
});
