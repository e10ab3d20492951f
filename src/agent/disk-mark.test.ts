import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imageSizeBucket } from './metrics.js';
import { overHighWaterMark, parseHighWaterMark } from './disk-mark.js';

describe('disk high-water mark', () => {
  it('parses percentages, sizes and none', () => {
    assert.deepEqual(parseHighWaterMark('85%'), { kind: 'percent', percent: 85 });
    assert.deepEqual(parseHighWaterMark('40GiB'), { kind: 'bytes', bytes: 40 * 1024 ** 3 });
    assert.deepEqual(parseHighWaterMark('500MB'), { kind: 'bytes', bytes: 500e6 });
    assert.deepEqual(parseHighWaterMark('1'), { kind: 'bytes', bytes: 1 });
    assert.equal(parseHighWaterMark('none'), undefined);
    for (const bad of ['0%', '101%', 'lots', '5 parsecs', '-1'])
      assert.throws(() => parseHighWaterMark(bad), bad);
  });

  it('refuses at or over the mark with the numbers in the reason', () => {
    const bytes = { kind: 'bytes', bytes: 1000 } as const;
    assert.equal(overHighWaterMark(bytes, { imageFsUsedBytes: 999, mountpoint: '/var/lib' }), undefined);
    assert.match(
      overHighWaterMark(bytes, { imageFsUsedBytes: 1000, mountpoint: '/var/lib' }) ?? '',
      /\/var\/lib holds 1000 bytes of images, at or over the high-water mark of 1000 bytes/,
    );
    const pct = { kind: 'percent', percent: 85 } as const;
    assert.equal(
      overHighWaterMark(pct, { imageFsUsedBytes: 0, mountpoint: '/', filesystemUsedPercent: 84.9 }),
      undefined,
    );
    assert.match(
      overHighWaterMark(pct, { imageFsUsedBytes: 0, mountpoint: '/', filesystemUsedPercent: 90 }) ?? '',
      /90\.0% full/,
    );
  });

  it("labels sizes as the kubelet's image_size_in_bytes buckets", () => {
    assert.equal(imageSizeBucket(0), '0-10MB');
    assert.equal(imageSizeBucket(10 * 1024 * 1024), '10MB-100MB');
    assert.equal(imageSizeBucket(15 * 1024 ** 3), '10GB-20GB');
    assert.equal(imageSizeBucket(200 * 1024 ** 3), 'GT100GB');
  });
});
