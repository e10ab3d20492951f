import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import type { InflightReader } from './inflight-blob.js';
import { matchesVerifiedTail, TailHold } from './range-tail.js';

/** Passes `chunks` through a TailHold; returns what came out and the hold. */
async function hold(chunks: Buffer[]): Promise<{ out: Buffer; tail: TailHold; counted: number }> {
  let counted = 0;
  const tail = new TailHold((n) => (counted += n));
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk);
      cb();
    },
  });
  await pipeline(Readable.from(chunks), tail, sink);
  return { out: Buffer.concat(out), tail, counted };
}

/** A reader over `blob` as a verified download would give it, or failing at the end. */
function readerOf(blob: Buffer, failAtEnd = false): InflightReader {
  return {
    read: async (buf, pos, max) => {
      const n = Math.max(0, Math.min(max, blob.byteLength - pos));
      if (n === 0 && failAtEnd) throw new Error('digest mismatch');
      blob.copy(buf, 0, pos, pos + n);
      return n;
    },
    release: () => {},
  };
}

describe('TailHold', () => {
  it('passes everything but the final byte, across chunks', async () => {
    const { out, tail, counted } = await hold([Buffer.from('abc'), Buffer.from('d'), Buffer.from('ef')]);
    assert.equal(out.toString(), 'abcde');
    assert.equal(tail.last?.toString(), 'f');
    assert.equal(tail.bytes, 6);
    assert.equal(counted, 5);
  });

  it('still holds the final byte when an empty chunk comes last', async () => {
    const { out, tail } = await hold([Buffer.from('abc'), Buffer.alloc(0)]);
    assert.equal(out.toString(), 'ab');
    assert.equal(tail.last?.toString(), 'c');
  });

  it('holds nothing of an empty body', async () => {
    const { out, tail } = await hold([]);
    assert.equal(out.byteLength, 0);
    assert.equal(tail.last, undefined);
  });
});

describe('matchesVerifiedTail', () => {
  const blob = Buffer.from('0123456789');

  it('accepts a range that is exactly the verified tail', async () => {
    const { tail } = await hold([blob.subarray(6)]);
    assert.equal(await matchesVerifiedTail(readerOf(blob), 6, tail), true);
  });

  it('refuses different bytes, a range short of the end, and one past it', async () => {
    assert.equal(
      await matchesVerifiedTail(readerOf(blob), 6, (await hold([Buffer.from('6780')])).tail),
      false,
    );
    assert.equal(
      await matchesVerifiedTail(readerOf(blob), 6, (await hold([Buffer.from('678')])).tail),
      false,
    );
    assert.equal(
      await matchesVerifiedTail(readerOf(blob), 6, (await hold([Buffer.from('67890')])).tail),
      false,
    );
  });

  it('refuses a range short of the end without waiting for the download to finish', async () => {
    // The reader fails where the verified end would be: a range that stops earlier is decided
    // from the bytes before that, so neither waits for nor depends on the verification.
    const { tail } = await hold([Buffer.from('678')]);
    assert.equal(await matchesVerifiedTail(readerOf(blob, true), 6, tail), false);
  });

  it('rejects when the download fails verification', async () => {
    const { tail } = await hold([blob.subarray(6)]);
    await assert.rejects(matchesVerifiedTail(readerOf(blob, true), 6, tail), /digest mismatch/);
  });
});
