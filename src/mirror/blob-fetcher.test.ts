// BlobFetcher with a full disk: a download the disk refused is forgotten at once (new requests
// start their own), the request that found it holds a reader from the lookup on (so a download
// that ends unstored before the request reads loses it no bytes), and the next lookup after it
// ended downloads again. The disk's refusal is injected at FileHandle.writev.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, it, mock } from 'node:test';
import { pino } from 'pino';
import { digestOf } from '../oci/index.js';
import type { BlobResponse } from '../registry-client/index.js';
import { useTempStore } from '../../test/helpers/inflight.js';
import { BlobFetcher, type BlobLookup, type BlobSource } from './blob-fetcher.js';
import type { InflightReader } from './inflight-blob.js';
import { MirrorMetrics } from './metrics.js';

/** Reads with `r` from 0 to the end of the blob. */
async function readAll(r: InflightReader): Promise<Buffer> {
  const buf = Buffer.alloc(64 * 1024);
  const chunks: Buffer[] = [];
  for (let pos = 0; ;) {
    const n = await r.read(buf, pos, buf.byteLength, undefined);
    if (n === 0) return Buffer.concat(chunks);
    chunks.push(Buffer.from(buf.subarray(0, n)));
    pos += n;
  }
}

/** An upstream that answers every GET with a body the test feeds (`bodies`), counting GETs. */
function sourceOf(data: Buffer): BlobSource & { gets: number; bodies: PassThrough[] } {
  const source = {
    name: 'test',
    gets: 0,
    bodies: [] as PassThrough[],
    getBlob: (): Promise<BlobResponse> => {
      source.gets++;
      const body = new PassThrough();
      source.bodies.push(body);
      return Promise.resolve({
        status: 200,
        contentLength: data.byteLength,
        offset: 0,
        totalSize: data.byteLength,
        body,
      });
    },
    headBlob: () => Promise.resolve({ size: data.byteLength }),
  };
  return source;
}

function inflight(lookup: BlobLookup): Extract<BlobLookup, { kind: 'inflight' }> {
  assert.equal(lookup.kind, 'inflight');
  return lookup as Extract<BlobLookup, { kind: 'inflight' }>;
}

describe('BlobFetcher: a download the full disk did not store', () => {
  const tmp = useTempStore('hoist-fetcher-full-');
  afterEach(() => mock.restoreAll());

  /** Makes every write of a download refuse with ENOSPC: the disk is full. */
  async function diskFull(): Promise<void> {
    const probe = await open(join(tmp.root, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { writev: () => Promise<unknown> };
    await probe.close();
    mock.method(proto, 'writev', () =>
      Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })),
    );
  }

  const fetcherOf = () =>
    new BlobFetcher({
      store: tmp.store,
      metrics: new MirrorMetrics({ defaultMetrics: false }),
      logger: pino({ level: 'silent' }),
      retries: 0,
      stallTimeoutMs: 0,
      retry: { baseDelayMs: 1, maxDelayMs: 1 },
    });

  it('is forgotten once unstored, serves its reader whole, and is downloaded again', async () => {
    await diskFull();
    const data = randomBytes(300_000);
    const digest = digestOf(data);
    const source = sourceOf(data);
    const fetcher = fetcherOf();

    const first = inflight(await fetcher.lookup(source, 'r', digest));
    assert.equal(fetcher.isInflight(digest), true);
    source.bodies[0]?.write(data.subarray(0, 1000));
    while (!first.blob.unstored) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(fetcher.isInflight(digest), false, 'new clients do not join a download kept in memory');
    source.bodies[0]?.end(data.subarray(1000));
    assert.deepEqual(await readAll(first.reader), data, 'the first reader gets every byte');
    first.reader.release();
    await fetcher.settled();
    assert.equal(first.blob.state, 'complete');

    // The blob is neither stored nor in flight: the next request downloads it again.
    const second = inflight(await fetcher.lookup(source, 'r', digest));
    assert.notEqual(second.blob, first.blob);
    assert.equal(source.gets, 2);
    source.bodies[1]?.end(data);
    assert.deepEqual(await readAll(second.reader), data);
    second.reader.release();
    await fetcher.settled();
  });

  it('keeps every byte for the request that found it, even if it ends before that request reads', async () => {
    await diskFull();
    const data = randomBytes(300_000);
    const digest = digestOf(data);
    const source = sourceOf(data);
    const fetcher = fetcherOf();

    const found = inflight(await fetcher.lookup(source, 'r', digest));
    // The whole download ends, unstored, before this request reads anything.
    source.bodies[0]?.end(data);
    await fetcher.settled();
    assert.equal(found.blob.state, 'complete');
    assert.equal(found.blob.unstored, true);
    assert.deepEqual(await readAll(found.reader), data);
    found.reader.release();
    assert.equal(source.gets, 1);
  });
});
