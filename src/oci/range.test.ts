import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRange } from './range.js';

// Edge cases of RFC 9110 §14.1.2 byte ranges beyond the table in oci.test.ts.
describe('parseRange edges', () => {
  it('keeps a one-byte range at offset 0 (end 0 is a real range, not "none")', () => {
    assert.deepEqual(parseRange('bytes=0-0', 100), { kind: 'range', range: { start: 0, end: 0 } });
  });

  it('cannot resolve a suffix range before the size is known', () => {
    assert.deepEqual(parseRange('bytes=-10', undefined), { kind: 'unsatisfiable' });
  });

  it('accepts a header of exactly the length limit, skipping empty list elements', () => {
    const header = `bytes=0-9${','.repeat(8192 - 'bytes=0-9'.length)}`;
    assert.equal(header.length, 8192);
    assert.deepEqual(parseRange(header, 100), { kind: 'range', range: { start: 0, end: 9 } });
    assert.deepEqual(parseRange('bytes=, 5-6 ,', 100), { kind: 'range', range: { start: 5, end: 6 } });
  });

  // The message is what a client developer reads: it must say what was wrong.
  const bad: Array<[string, RegExp]> = [
    [`bytes=${'0-1,'.repeat(3000)}`, /is too long/],
    ['items=0-1', /must use the "bytes" unit/],
    ['bytes5', /must use the "bytes" unit/],
    ['bytes=0-1,x-y', /has a malformed range "x-y"/],
    ['bytes=5-1', /has a range "5-1" that ends before it starts/],
    ['bytes= , ', /names no range/],
  ];
  for (const [header, message] of bad) {
    it(`explains ${JSON.stringify(header.slice(0, 16))}`, () => {
      assert.throws(
        () => parseRange(header, 100),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'RANGE_INVALID');
          assert.match(err.message, message);
          assert.match(err.message, /^Range header "/);
          return true;
        },
      );
    });
  }
});
