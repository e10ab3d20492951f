import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { digestOf } from '../oci/index.js';
import { collect, until, useTempStore } from '../../test/helpers/inflight.js';
import { InflightBlob } from './inflight-blob.js';

describe('InflightBlob', () => {
  const tmp = useTempStore('hoist-inflight-');

  it('serves readers while the body arrives, and stores the verified blob', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const digest = digestOf(data);
    const blob = await InflightBlob.create(tmp.store, digest, data.byteLength);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const whole = collect(blob.createReader(0));
    const ranged = collect(blob.createReader(1000, 1999));
    body.write(data.subarray(0, 1024 * 1024));
    // The range is answered from the first megabyte, before the rest exists.
    assert.deepEqual(await ranged, data.subarray(1000, 2000));
    assert.equal(blob.state, 'downloading');
    body.end(data.subarray(1024 * 1024));
    await done;
    assert.deepEqual(await whole, data);
    assert.equal(blob.state, 'complete');
    assert.deepEqual(await readFile(tmp.store.pathOf(digest)), data);
    // A reader that joins after completion still reads through the open file.
    assert.deepEqual(await collect(blob.createReader(5)), data.subarray(5));
    assert.deepEqual(await readdir(tmp.store.tmpDir), []);
  });

  it('a whole-blob reader does not end before the digest is checked', async () => {
    const data = randomBytes(4096);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const reader = blob.createReader(0);
    const chunks: Buffer[] = [];
    let received = 0;
    let ended = false;
    // Events, not a timing window: resolves once the reader has every byte but the last, or has
    // ended (which it must not yet).
    const heldBack = new Promise<void>((resolve, reject) => {
      reader.on('data', (c: Buffer) => {
        chunks.push(c);
        received += c.byteLength;
        if (received >= data.byteLength - 1) resolve();
      });
      reader.on('end', () => {
        ended = true;
        resolve();
      });
      reader.on('error', reject);
    });
    const finished = new Promise<void>((resolve, reject) => {
      reader.on('end', resolve);
      reader.on('error', reject);
    });
    body.write(data); // all bytes, but the body has not ended: not yet verified
    await until(blob, data.byteLength);
    await heldBack;
    assert.equal(ended, false, 'the reader did not end before verification');
    assert.equal(received, data.byteLength - 1, 'the last byte is held back until the digest is checked');
    body.end();
    await done;
    await finished;
    assert.deepEqual(Buffer.concat(chunks), data);
  });

  it('aborts every unfinished reader and stores nothing when the digest does not match', async () => {
    const data = randomBytes(256 * 1024);
    const wrong = digestOf(Buffer.from('something else'));
    const blob = await InflightBlob.create(tmp.store, wrong, data.byteLength);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const reader = collect(blob.createReader(0));
    body.end(data);
    await assert.rejects(done, { code: 'DIGEST_MISMATCH' });
    await assert.rejects(reader, { code: 'DIGEST_MISMATCH' });
    assert.equal(await tmp.store.size(wrong), undefined);
    assert.equal(blob.state, 'failed');
  });

  it('fails on a body shorter or longer than its Content-Length', async () => {
    const data = randomBytes(1000);
    const short = await InflightBlob.create(tmp.store, digestOf(data), 2000);
    const b1 = new PassThrough();
    const r1 = collect(short.createReader(0));
    const d1 = short.download(b1, tmp.store);
    b1.end(data);
    await assert.rejects(d1, { code: 'PREMATURE_END' });
    await assert.rejects(r1);

    const long = await InflightBlob.create(tmp.store, digestOf(data), 500);
    const b2 = new PassThrough();
    const d2 = long.download(b2, tmp.store);
    b2.end(data);
    await assert.rejects(d2, { code: 'SIZE_MISMATCH' });
  });

  it('resumes from the last byte received, and readers see one unbroken body', async () => {
    const data = randomBytes(300_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const first = new PassThrough();
    const offsets: number[] = [];
    const reader = collect(blob.createReader(0));
    const done = blob.download(first, tmp.store, {
      retries: 2,
      resume: async (offset) => {
        offsets.push(offset);
        const rest = new PassThrough();
        rest.end(data.subarray(offset));
        return rest;
      },
    });
    first.write(data.subarray(0, 123_456));
    await until(blob, 123_456);
    first.destroy(new Error('connection reset'));
    await done;
    assert.deepEqual(offsets, [123_456]);
    assert.deepEqual(await reader, data);
  });

  it('aborts readers when the upstream connection breaks', async () => {
    const data = randomBytes(100_000);
    const blob = await InflightBlob.create(tmp.store, digestOf(data), data.byteLength);
    const body = new PassThrough();
    const done = blob.download(body, tmp.store);
    const reader = collect(blob.createReader(0));
    body.write(data.subarray(0, 50_000));
    await until(blob, 50_000);
    body.destroy(new Error('connection reset'));
    await assert.rejects(done, /connection reset/);
    await assert.rejects(reader, /connection reset/);
    assert.deepEqual(await readdir(tmp.store.tmpDir), []);
  });
});
