// InflightBlob at its edges: reads past the end of a range, waitReadable at a range's last byte
// and without Content-Length, what is final (never resumed) and when onRetry is told, the delay
// before a resume (on mocked timers, not the clock), an abort mid-body, readers that leave, and
// a full disk reached in the middle of a batch or between batches, with two readers at
// different speeds. The disk's refusal is injected at FileHandle.writev.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, it, mock } from 'node:test';
import { digestOf } from '../oci/index.js';
import { bodyOf, collect, tick, until, useTempStore } from '../../test/helpers/inflight.js';
import { InflightBlob } from './inflight-blob.js';

/** Reads with `r` from `pos` to the end of the blob. */
async function readAll(r: NonNullable<ReturnType<InflightBlob['acquire']>>, pos = 0): Promise<Buffer> {
  const buf = Buffer.alloc(64 * 1024);
  const chunks: Buffer[] = [];
  for (;;) {
    const n = await r.read(buf, pos, buf.byteLength, undefined);
    if (n === 0) return Buffer.concat(chunks);
    chunks.push(Buffer.from(buf.subarray(0, n)));
    pos += n;
  }
}

describe('InflightBlob: edges', () => {
  const tmp = useTempStore('hoist-inflight-edges-');
  afterEach(() => {
    // restoreAll leaves mocked timers on, and the batch timer of the next download needs real ones.
    mock.timers.reset();
    mock.restoreAll();
  });

  it('a read past the end of a range through the last byte waits for the verdict', async () => {
    const data = randomBytes(1000);
    const blob = await InflightBlob.create(tmp.store, digestOf(Buffer.from('other')), data.byteLength);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const r = blob.acquire()!;
    const buf = Buffer.alloc(100);
    const pastRange = r.read(buf, 1000, 100, 999);
    const pastBlob = r.read(buf, 1000, 100, undefined);
    // A range that ends before the last byte answers at once.
    assert.equal(await r.read(buf, 500, 100, 499), 0);
    body.end(data);
    await assert.rejects(done, { code: 'DIGEST_MISMATCH' });
    await assert.rejects(pastRange, { code: 'DIGEST_MISMATCH' });
    await assert.rejects(pastBlob, { code: 'DIGEST_MISMATCH' });
    assert.equal(blob.error?.message, `blob ${blob.digest.value}: content digest is ${digestOf(data).value}`);
    r.release();
  });

  it("waitReadable at a range's last byte waits for that byte, and works without Content-Length", async () => {
    const data = randomBytes(1000);
    for (const size of [data.byteLength, undefined]) {
      const blob = await InflightBlob.create(tmp.store, digestOf(data), size);
      const body = new PassThrough();
      const done = blob.download(body, tmp.store);
      const r = blob.acquire()!;
      let ready = false;
      const w = r.waitReadable!(99, 99).then(() => (ready = true));
      body.write(data.subarray(0, 99));
      await until(blob, 99);
      for (let i = 0; i < 20; i++) await tick();
      assert.equal(ready, false, 'byte 99 has not arrived');
      body.write(data.subarray(99, 200));
      await w;
      assert.equal(blob.state, 'downloading');
      body.end(data.subarray(200));
      await done;
      r.release();
    }
  });

  it('never resumes a body longer than its Content-Length, and tells onRetry only of retries', async () => {
    const data = randomBytes(2000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), 1000);
    let resumed = 0;
    const retried: number[] = [];
    await assert.rejects(
      blob.download(bodyOf(data), tmp.store, {
        retries: 3,
        onRetry: (attempt) => retried.push(attempt),
        resume: async () => {
          resumed++;
          return bodyOf(Buffer.alloc(0));
        },
      }),
      { code: 'SIZE_MISMATCH', message: `blob ${blob.digest.value}: upstream sent more than 1000 bytes` },
    );
    assert.equal(resumed, 0);
    assert.deepEqual(retried, []);

    // Without resume, a broken body is not retried either.
    const other = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const broken = new PassThrough();
    const retriedToo: number[] = [];
    const d = other.download(broken, tmp.store, {
      retries: 3,
      onRetry: (attempt) => retriedToo.push(attempt),
    });
    broken.write(data.subarray(0, 10));
    await until(other, 10);
    broken.destroy(new Error('connection reset'));
    await assert.rejects(d, /connection reset/);
    assert.deepEqual(retriedToo, []);
  });

  it('tells onRetry of each retry up to the limit, and no more', async () => {
    const data = randomBytes(30_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const retried: number[] = [];
    const breaking = (offset: number) => {
      const b = new PassThrough();
      b.write(data.subarray(offset, offset + 1000));
      void until(blob, offset + 1000).then(() => b.destroy(new Error('connection reset')));
      return b;
    };
    await assert.rejects(
      blob.download(breaking(0), tmp.store, {
        retries: 2,
        onRetry: (attempt) => retried.push(attempt),
        resume: async (offset) => breaking(offset),
      }),
      /connection reset/,
    );
    assert.deepEqual(retried, [1, 2]);
  });

  it('waits the delay asked for before resuming (mocked timers)', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const data = randomBytes(10_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    blob.batchBytes = 0; // every read written at once: the batch timer is mocked too
    let opens = 0;
    let retried!: () => void;
    const retry = new Promise<void>((resolve) => (retried = resolve));
    const first = new PassThrough();
    const done = blob.download(first, tmp.store, {
      retries: 1,
      delayMs: () => 5000,
      onRetry: () => retried(),
      resume: async (offset) => {
        opens++;
        return bodyOf(data.subarray(offset));
      },
    });
    first.write(data.subarray(0, 100));
    await until(blob, 100);
    first.destroy(new Error('connection reset'));
    await retry;
    for (let i = 0; i < 10; i++) await tick();
    mock.timers.tick(4999);
    for (let i = 0; i < 10; i++) await tick();
    assert.equal(opens, 0, 'not before the delay');
    mock.timers.tick(1);
    await done;
    assert.equal(opens, 1);
  });

  it('stops at an abort in the middle of the body', async () => {
    const data = randomBytes(10_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const ac = new AbortController();
    const body = new PassThrough();
    const done = blob.download(body, tmp.store, { signal: ac.signal });
    const reader = collect(blob.createReader(0));
    body.write(data.subarray(0, 100));
    await until(blob, 100);
    ac.abort();
    await assert.rejects(done, { name: 'AbortError' });
    await assert.rejects(reader, { name: 'AbortError' });
  });

  it('keeps downloading and stores the blob when its readers leave midway', async () => {
    const data = randomBytes(50_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const r = blob.acquire()!;
    body.write(data.subarray(0, 10_000));
    await until(blob, 10_000);
    r.release();
    body.end(data.subarray(10_000));
    await done;
    assert.equal(blob.unstored, false);
    assert.equal(await tmp.store.size(digestOf(data)), data.byteLength);
    // Once settled, an abort changes nothing.
    blob.abort(new Error('late'));
    assert.equal(blob.state, 'complete');
    assert.equal(blob.error, undefined);
  });

  it('forgets a reader that left while its read waited', async () => {
    const data = randomBytes(1000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const r = blob.acquire()!;
    const pending = r.read(Buffer.alloc(100), 0, 100, undefined);
    r.release();
    assert.equal(blob.readerCount, 0);
    body.end(data);
    assert.equal(await pending, 100);
    assert.equal(blob.readerCount, 0);
    await done;
    assert.equal(blob.acquire(), undefined, 'nothing holds the file open');
  });
});

describe('InflightBlob: a full disk, in detail', () => {
  const tmp = useTempStore('hoist-inflight-full-edges-');
  afterEach(() => mock.restoreAll());

  /** Makes writes past `capacity` bytes of a file fail with `code` (writing up to it first). */
  async function diskOf(capacity: number, code = 'ENOSPC'): Promise<void> {
    const probe = await open(join(tmp.root, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { writev: (b: Buffer[], p: number) => Promise<unknown> };
    await probe.close();
    const writev = proto.writev;
    mock.method(proto, 'writev', async function (this: unknown, buffers: Buffer[], position: number) {
      const room = capacity - position;
      if (room <= 0) throw Object.assign(new Error(`${code}: write refused`), { code });
      const out: Buffer[] = [];
      let left = room;
      for (const b of buffers) {
        if (left <= 0) break;
        out.push(b.subarray(0, left));
        left -= Math.min(left, b.byteLength);
      }
      return writev.call(this, out, position);
    });
  }

  it('fails the download on any other write error', async () => {
    await diskOf(100, 'EIO');
    const data = randomBytes(1000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    await assert.rejects(blob.download(bodyOf(data), tmp.store), { code: 'EIO' });
    assert.equal(blob.unstored, false);
  });

  it('treats a quota (EDQUOT) like a full disk', async () => {
    await diskOf(100, 'EDQUOT');
    const data = randomBytes(1000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const reader = collect(blob.createReader(0));
    await blob.download(bodyOf(data), tmp.store);
    assert.equal(blob.unstored, true);
    assert.deepEqual(await reader, data);
  });

  it('with no reader at all, completes unstored, however much memory that takes', async () => {
    await diskOf(1000);
    const data = randomBytes(100_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    blob.memoryLimitBytes = 1000;
    await blob.download(bodyOf(data), tmp.store);
    assert.equal(blob.state, 'complete');
    assert.equal(blob.unstored, true);
    // Nothing stored to read from afterwards.
    await assert.rejects(collect(blob.createReader(0)), { code: 'BLOB_NOT_STORED' });
  });

  it('holds exactly the limit without waiting for a reader', async () => {
    await diskOf(10_000);
    const data = randomBytes(60_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    blob.memoryLimitBytes = 50_000;
    const r = blob.acquire(0)!;
    await blob.download(bodyOf(data), tmp.store);
    assert.deepEqual(await readAll(r), data);
    r.release();
  });

  it('keeps streaming the right bytes when the disk fills within a batch and more batches follow', async () => {
    await diskOf(15_000);
    const data = randomBytes(200_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const reader = collect(blob.createReader(0));
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    // 5,000-byte chunks written at once: the first batch is one chunk, the second all the rest,
    // and the disk fills two chunks into it.
    for (let off = 0; off < 100_000; off += 5000) body.write(data.subarray(off, off + 5000));
    await until(blob, 100_000);
    for (let off = 100_000; off < data.byteLength; off += 20_000) {
      body.write(data.subarray(off, off + 20_000));
      await until(blob, off + 20_000);
    }
    body.end();
    await done;
    assert.equal(blob.unstored, true);
    assert.deepEqual(await reader, data);
  });

  it('completes when one chunk past the disk is larger than the memory limit', async () => {
    // The chunk holds the last byte, which readers get only after verification: holding the
    // upstream back until they pass it would wait forever.
    await diskOf(10_000);
    const data = randomBytes(300_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    blob.memoryLimitBytes = 50_000;
    const reader = collect(blob.createReader(0));
    await blob.download(bodyOf(data), tmp.store);
    assert.deepEqual(await reader, data);
  });

  it('frees memory by the slowest reader, not the fastest', async () => {
    await diskOf(10_000);
    const data = randomBytes(300_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    blob.memoryLimitBytes = 50_000;
    // The rest after the first write arrives as one write (Writable gathers it while the first is
    // written), readable in full while the slow reader holds memory; with batches, the download
    // would wait for the slow reader before the fast one could have the last batches.
    blob.batchBytes = 0;
    const fast = blob.createReader(0);
    let fastBytes = 0;
    fast.on('data', (c: Buffer) => (fastBytes += c.byteLength));
    const fastAll = collect(fast);
    const slow = blob.acquire(0)!;
    // In 10,000-byte chunks, so that memory can be freed chunk by chunk.
    const body = new PassThrough();
    for (let off = 0; off < data.byteLength; off += 10_000) body.write(data.subarray(off, off + 10_000));
    body.end();
    const done = blob.download(body, tmp.store);
    const first = Buffer.alloc(1000);
    assert.equal(await slow.read(first, 0, 1000, undefined), 1000);
    // The fast reader gets everything but the last byte; the slow one has read 1000 bytes.
    while (fastBytes < data.byteLength - 1) await tick();
    const rest = await readAll(slow, 1000);
    await done;
    assert.deepEqual(Buffer.concat([first, rest]), data);
    assert.deepEqual(await fastAll, data);
    slow.release();
  });

  it("moves a reader's hold to where its last read ended", async () => {
    await diskOf(10_000);
    const data = randomBytes(100_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    blob.memoryLimitBytes = 50_000;
    const r = blob.acquire(0)!;
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    body.write(data.subarray(0, 60_000)); // 10,000 on disk, 50,000 in memory: at the limit
    await until(blob, 60_000);
    const buf = Buffer.alloc(64 * 1024);
    let pos = 0;
    while (pos < 60_000) pos += await r.read(buf, pos, 60_000 - pos, undefined);
    // The reader has all of it and reads no more: the next 40,000 fit in memory.
    body.write(data.subarray(60_000));
    await until(blob, 100_000);
    body.end();
    const rest = await readAll(r, 60_000);
    await done;
    assert.deepEqual(rest, data.subarray(60_000));
    r.release();
  });
});
