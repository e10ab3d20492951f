// InflightBlob when things go wrong or are unusual: resuming (the open retried, the limits, what
// is never resumed, an abort during the delay), a stalled body, a body without Content-Length,
// readers after the download let go of its file, an abort from outside, and a full disk (the
// disk's refusal is injected at the FileHandle, the only place the blob meets the disk).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, it, mock } from 'node:test';
import { digestOf } from '../oci/index.js';
import { UpstreamError } from '../registry-client/index.js';
import { bodyOf, collect, until, useTempStore } from '../../test/helpers/inflight.js';
import { InflightBlob } from './inflight-blob.js';

/** A body that sends `data`, then breaks once the blob holds it. */
function breaking(blob: InflightBlob, data: Buffer, offset: number): PassThrough {
  const b = new PassThrough();
  b.write(data);
  void until(blob, offset + data.byteLength).then(() => b.destroy(new Error('connection reset')));
  return b;
}

describe('InflightBlob: resuming', () => {
  const tmp = useTempStore('hoist-inflight-faults-');

  it('retries a failed open of the rest as attempts allow, with the delay asked for each', async () => {
    const data = randomBytes(200_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const offsets: number[] = [];
    const delays: Array<[number, string]> = [];
    const retried: Array<[number, string]> = [];
    const bytes: number[] = [];
    const reader = collect(blob.createReader(0));
    await blob.download(breaking(blob, data.subarray(0, 50_000), 0), tmp.store, {
      retries: 3,
      delayMs: (attempt, err) => {
        delays.push([attempt, (err as Error).message]);
        return 0;
      },
      onRetry: (attempt, err) => retried.push([attempt, err.message]),
      onBytes: (n) => bytes.push(n),
      resume: async (offset) => {
        offsets.push(offset);
        if (offsets.length === 1) throw new UpstreamError('UPSTREAM_UNAVAILABLE', 'upstream is restarting');
        return bodyOf(data.subarray(offset));
      },
    });
    assert.deepEqual(offsets, [50_000, 50_000]);
    assert.deepEqual(delays, [
      [1, 'connection reset'],
      [2, 'upstream is restarting'],
    ]);
    assert.deepEqual(retried, [[1, 'connection reset']]);
    assert.equal(
      bytes.reduce((a, b) => a + b, 0),
      data.byteLength,
    );
    assert.deepEqual(await reader, data);
    assert.equal(await tmp.store.size(digestOf(data)), data.byteLength);
  });

  it('gives up after `retries` resumed bodies, with the last error, and stores nothing', async () => {
    const data = randomBytes(100_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const reader = collect(blob.createReader(0));
    const offsets: number[] = [];
    const done = blob.download(breaking(blob, data.subarray(0, 10_000), 0), tmp.store, {
      retries: 2,
      resume: async (offset) => {
        offsets.push(offset);
        return breaking(blob, data.subarray(offset, offset + 10_000), offset);
      },
    });
    await assert.rejects(done, /connection reset/);
    assert.deepEqual(offsets, [10_000, 20_000]);
    await assert.rejects(reader, /connection reset/);
    assert.equal(blob.state, 'failed');
    assert.match(blob.error?.message ?? '', /connection reset/);
    assert.equal(await tmp.store.size(digestOf(data)), undefined);
    assert.deepEqual(await readdir(tmp.store.tmpDir), []);
  });

  it('gives up when every open of the rest fails, with the last open error', async () => {
    const data = randomBytes(50_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    let opens = 0;
    const done = blob.download(breaking(blob, data.subarray(0, 1000), 0), tmp.store, {
      retries: 3,
      resume: async () => {
        opens++;
        throw new UpstreamError('UPSTREAM_TIMEOUT', `timeout ${opens}`);
      },
    });
    await assert.rejects(done, /timeout 3/);
    assert.equal(opens, 3);
  });

  it('never resumes a final answer, nor a body that did not match its digest', async () => {
    const data = randomBytes(50_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    let opens = 0;
    const notFound = new UpstreamError('BLOB_UNKNOWN', 'blob unknown to upstream', { status: 404 });
    const done = blob.download(breaking(blob, data.subarray(0, 1000), 0), tmp.store, {
      retries: 3,
      resume: async () => {
        opens++;
        throw notFound;
      },
    });
    await assert.rejects(done, (e) => e === notFound);
    assert.equal(opens, 1);

    const wrong = await InflightBlob.create(tmp.store, digestOf(Buffer.from('other')), data.byteLength);
    let resumed = false;
    await assert.rejects(
      wrong.download(bodyOf(data), tmp.store, {
        retries: 3,
        resume: async () => {
          resumed = true;
          return bodyOf(Buffer.alloc(0));
        },
      }),
      { code: 'DIGEST_MISMATCH' },
    );
    assert.equal(resumed, false);
  });

  it('stops at an abort during the delay before a resume', async () => {
    const data = randomBytes(50_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const ac = new AbortController();
    let opens = 0;
    const done = blob.download(breaking(blob, data.subarray(0, 1000), 0), tmp.store, {
      retries: 3,
      signal: ac.signal,
      // Long enough that only the abort can end it.
      delayMs: () => 3_600_000,
      onRetry: () => ac.abort(new Error('shutting down')),
      resume: async () => {
        opens++;
        return bodyOf(data.subarray(1000));
      },
    });
    await assert.rejects(done, /shutting down/);
    assert.equal(opens, 0);
    assert.equal(blob.state, 'failed');
  });

  it('treats a body that sends nothing for stallTimeoutMs as broken, and resumes it', async () => {
    const data = randomBytes(80_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const stalled = new PassThrough();
    stalled.write(data.subarray(0, 30_000)); // and then nothing, never ending
    const errors: string[] = [];
    const offsets: number[] = [];
    await blob.download(stalled, tmp.store, {
      stallTimeoutMs: 20,
      retries: 1,
      onRetry: (_, err) => errors.push(`${(err as { code?: string }).code}: ${err.message}`),
      resume: async (offset) => {
        offsets.push(offset);
        return bodyOf(data.subarray(offset));
      },
    });
    assert.deepEqual(errors, ['UPSTREAM_STALLED: upstream sent nothing for 20 ms']);
    assert.deepEqual(offsets, [30_000]);
    assert.equal(await tmp.store.size(digestOf(data)), data.byteLength);
  });

  it('fails a stalled body it may not resume', async () => {
    const data = randomBytes(10_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const stalled = new PassThrough();
    stalled.write(data.subarray(0, 100));
    await assert.rejects(blob.download(stalled, tmp.store, { stallTimeoutMs: 20 }), {
      code: 'UPSTREAM_STALLED',
    });
  });
});

describe('InflightBlob: readers', () => {
  const tmp = useTempStore('hoist-inflight-readers-');

  it('without a Content-Length, ends whole-blob readers once the blob is verified', async () => {
    const data = randomBytes(150_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), undefined);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const whole = collect(blob.createReader(0));
    const ranged = collect(blob.createReader(10, 19));
    body.write(data.subarray(0, 100_000));
    assert.deepEqual(await ranged, data.subarray(10, 20));
    body.end(data.subarray(100_000));
    await done;
    assert.deepEqual(await whole, data);
    assert.equal(await tmp.store.size(digestOf(data)), data.byteLength);
  });

  it('without a Content-Length, fails its readers when the digest does not match', async () => {
    const data = randomBytes(10_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(Buffer.from('other')), undefined);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const whole = collect(blob.createReader(0));
    body.end(data);
    await assert.rejects(done, { code: 'DIGEST_MISMATCH' });
    await assert.rejects(whole, { code: 'DIGEST_MISMATCH' });
  });

  it('counts its readers; once done and left by all, sends new readers to the stored file', async () => {
    const data = randomBytes(20_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const r = blob.acquire();
    assert.ok(r);
    assert.equal(blob.readerCount, 1);
    await blob.download(bodyOf(data), tmp.store);
    // Still held by the reader: new readers read through the open file.
    const buf = Buffer.alloc(100);
    assert.equal(await r.read(buf, 19_950, 100, undefined), 50);
    assert.deepEqual(buf.subarray(0, 50), data.subarray(19_950));
    assert.equal(await r.read(buf, 20_000, 100, undefined), 0, 'the end, once verified');
    r.release();
    r.release();
    assert.equal(blob.readerCount, 0);
    assert.equal(blob.acquire(), undefined, 'the file is let go');
    assert.deepEqual(await collect(blob.createReader(100, 199)), data.subarray(100, 200));
    assert.deepEqual(await collect(blob.createReader(19_990)), data.subarray(19_990));
  });

  it('once failed and left by all, gives new readers a stream that fails with the error', async () => {
    const data = randomBytes(1000);
    const blob = await InflightBlob.create(tmp.store, digestOf(Buffer.from('x')), data.byteLength);
    await assert.rejects(blob.download(bodyOf(data), tmp.store), { code: 'DIGEST_MISMATCH' });
    assert.equal(blob.acquire(), undefined);
    await assert.rejects(collect(blob.createReader(0)), { code: 'DIGEST_MISMATCH' });
  });

  it('reads a range that ends before the last byte without waiting for verification', async () => {
    const data = randomBytes(4096);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const r = blob.acquire()!;
    body.write(data);
    await until(blob, data.byteLength);
    const buf = Buffer.alloc(8192);
    // The range [4000, 4094] ends one byte short of the blob's end: all of it is served now.
    assert.equal(await r.read(buf, 4000, 8192, 4094), 95);
    assert.equal(await r.read(buf, 4095, 8192, 4094), 0);
    // Through the end: everything but the last byte, which waits for the digest.
    assert.equal(await r.read(buf, 4000, 8192, undefined), 95);
    const last = r.read(buf, 4095, 8192, undefined);
    body.end();
    await done;
    assert.equal(await last, 1);
    assert.equal(buf[0], data[4095]);
    r.release();
  });

  it('tells a reader when a read would not wait (waitReadable)', async () => {
    const data = randomBytes(4096);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const r = blob.acquire()!;
    const states: string[] = [];
    const track = (name: string, p: Promise<void> | undefined) => p?.then(() => states.push(name));
    // Past a range that ends early: answered at once.
    await r.waitReadable!(200, 99);
    const first = track('first bytes', r.waitReadable!(0, undefined));
    const lastByte = track('last byte', r.waitReadable!(4095, undefined));
    // Past the end of a range through the last byte: the read answers once the blob is verified.
    const pastEnd = track('past the end', r.waitReadable!(4096, 4095));
    body.write(data.subarray(0, 100));
    await first;
    assert.deepEqual(states, ['first bytes']);
    body.write(data.subarray(100));
    await until(blob, data.byteLength);
    // Every byte is there, but the last one goes out only after verification.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(states, ['first bytes']);
    body.end();
    await done;
    await Promise.all([lastByte, pastEnd]);
    assert.deepEqual(states.sort(), ['first bytes', 'last byte', 'past the end']);
    r.release();
  });

  it('fails every reader with the reason when aborted from outside', async () => {
    const data = randomBytes(10_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const reader = collect(blob.createReader(0));
    body.write(data.subarray(0, 5000));
    await until(blob, 5000);
    const reason = new Error('mirror shutting down');
    blob.abort(reason);
    await assert.rejects(reader, (e) => e === reason);
    assert.equal(blob.state, 'failed');
    assert.equal(blob.error, reason);
    body.destroy(new Error('closed'));
    await assert.rejects(done);
  });
});

describe('InflightBlob: a full disk', () => {
  const tmp = useTempStore('hoist-inflight-full-');
  afterEach(() => mock.restoreAll());

  /** Makes the disk refuse every write past `capacity` bytes of the file (ENOSPC). */
  async function diskOf(capacity: number): Promise<void> {
    const probe = await open(join(tmp.root, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { writev: (b: Buffer[], p: number) => Promise<unknown> };
    await probe.close();
    const writev = proto.writev;
    mock.method(proto, 'writev', async function (this: unknown, buffers: Buffer[], position: number) {
      const room = capacity - position;
      if (room <= 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      // A partial write up to the capacity, as a real disk does.
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

  it('streams the verified blob to its readers from memory and stores nothing', async () => {
    await diskOf(100_000);
    const data = randomBytes(400_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const refused: string[] = [];
    blob.onUnstored = (err) => refused.push((err as NodeJS.ErrnoException).code ?? '');
    const body = new PassThrough();
    const readers = [collect(blob.createReader(0)), collect(blob.createReader(99_000, 101_999))];
    const done = blob.download(body, tmp.store);
    body.end(data);
    await done;
    assert.equal(blob.unstored, true);
    assert.deepEqual(refused, ['ENOSPC']);
    const [whole, ranged] = await Promise.all(readers);
    assert.deepEqual(whole, data);
    assert.deepEqual(ranged, data.subarray(99_000, 102_000));
    assert.equal(await tmp.store.size(digestOf(data)), undefined);
    await until(blob, data.byteLength);
    mock.restoreAll();
    // The temp file goes too (removed in the background once verified).
    for (let i = 0; (await readdir(tmp.store.tmpDir)).length > 0 && i < 1000; i++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(await readdir(tmp.store.tmpDir), []);
  });

  it('holds the upstream back while the slowest reader needs what memory holds', async () => {
    await diskOf(10_000);
    const data = randomBytes(300_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    blob.memoryLimitBytes = 50_000;
    const r = blob.acquire(0)!;
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    for (let off = 0; off < data.byteLength; off += 10_000) body.write(data.subarray(off, off + 10_000));
    body.end();
    // The reader reads nothing: memory holds more than the limit, so the download waits for it
    // (and the batches after it wait upstream). The batch that went past the limit is readable,
    // or the reader and the download would wait for each other.
    while (!blob.unstored) await new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(blob.state, 'downloading');
    // Reading moves it on, to the end.
    const buf = Buffer.alloc(64 * 1024);
    const chunks: Buffer[] = [];
    for (let pos = 0; ;) {
      const n = await r.read(buf, pos, buf.byteLength, undefined);
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
      pos += n;
    }
    await done;
    r.release();
    assert.deepEqual(Buffer.concat(chunks), data);
  });

  it('gives up with NO_SPACE when the last reader leaves', async () => {
    await diskOf(10_000);
    const data = randomBytes(200_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    blob.memoryLimitBytes = 20_000;
    const r = blob.acquire(0)!;
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    body.write(data.subarray(0, 100_000));
    await until(blob, 30_000);
    r.release();
    body.end(data.subarray(100_000));
    await assert.rejects(done, { code: 'NO_SPACE' });
    assert.equal(blob.state, 'failed');
  });
});
