// The one byte formatter and the outputs that rely on it: image reports (si), Dockerfile findings
// (si, whole from 100), `hoist node pull` progress (iec) and the kubectl plugin (iec, no space).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatBytes } from './format-bytes.js';

describe('formatBytes', () => {
  it('si by default: powers of 1000, bytes whole, one decimal above, TB the largest unit', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1000), '1.0 KB');
    assert.equal(formatBytes(123_456_789), '123.5 MB');
    assert.equal(formatBytes(1_200_000_000), '1.2 GB');
    assert.equal(formatBytes(2e15), '2000.0 TB');
  });

  it('wholeFrom100: no decimal from 100 of a unit up', () => {
    assert.equal(formatBytes(99_900, { wholeFrom100: true }), '99.9 KB');
    assert.equal(formatBytes(100_000, { wholeFrom100: true }), '100 KB');
    assert.equal(formatBytes(999_499, { wholeFrom100: true }), '999 KB');
    assert.equal(formatBytes(5, { wholeFrom100: true }), '5 B');
  });

  it('iec: powers of 1024 up to PiB, and the separator kubectl leaves out', () => {
    assert.equal(formatBytes(1023, { units: 'iec' }), '1023 B');
    assert.equal(formatBytes(1024, { units: 'iec' }), '1.0 KiB');
    assert.equal(formatBytes(73_714_688, { units: 'iec' }), '70.3 MiB');
    assert.equal(formatBytes(2 ** 50, { units: 'iec' }), '1.0 PiB');
    assert.equal(formatBytes(400_600, { units: 'iec', separator: '' }), '391.2KiB');
    assert.equal(formatBytes(512, { units: 'iec', separator: '' }), '512B');
  });
});
