import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imageSizeBucket } from './metrics.js';
import { checkPull, overHighWaterMark, parseHighWaterMark } from './disk-mark.js';
import { DiskReservations } from './disk-reservations.js';

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

  it('refuses a pull whose estimate would cross the mark, with every number of the sum', () => {
    const mark = { kind: 'bytes', bytes: 10_000 } as const;
    const reading = { imageFsUsedBytes: 4_000, mountpoint: '/var/lib/containerd' };
    const planned = (imageFsBytes: number, reservedImageFsBytes = 0) => ({
      imageFsBytes,
      diskBytes: imageFsBytes * 2,
      basis: '1 layer compressed x 3',
      reservedImageFsBytes,
      reservedDiskBytes: 0,
    });
    assert.equal(checkPull(mark, reading, planned(6_000)), undefined, 'exactly at the mark is allowed');
    assert.equal(checkPull(mark, reading, undefined), undefined, 'no estimate: current usage only');
    assert.equal(
      checkPull(mark, reading, planned(6_001)),
      'pulling it would take image filesystem /var/lib/containerd past the high-water mark: 4000 bytes of images + 6001 bytes estimated for this image (1 layer compressed x 3) = 10001 bytes, over the mark of 10000 bytes; free space, raise --disk-high-water, or pull fewer images at a time',
    );
    assert.match(
      checkPull(mark, reading, planned(3_000, 3_500)) ?? '',
      /4000 bytes of images \+ 3500 bytes reserved by other pulls \+ 3000 bytes estimated .* = 10500 bytes/,
    );
    // Already over: the current-usage reason, whatever the estimate.
    assert.match(
      checkPull(mark, { ...reading, imageFsUsedBytes: 10_000 }, planned(0)) ?? '',
      /at or over the high-water mark of 10000 bytes/,
    );

    const pct = { kind: 'percent', percent: 80 } as const;
    const fs = {
      imageFsUsedBytes: 0,
      mountpoint: '/',
      filesystemUsedPercent: 70,
      filesystemUsedBytes: 700,
      filesystemCapacityBytes: 1000,
    };
    assert.equal(checkPull(pct, fs, { ...planned(50), diskBytes: 100 }), undefined);
    assert.match(
      checkPull(pct, fs, { ...planned(50), diskBytes: 101 }) ?? '',
      /700 bytes in use \+ 101 bytes estimated for this image \(1 layer compressed x 3, unpacked plus compressed\) = 801 of 1000 bytes, 80\.1% full, over the mark of 80%/,
    );
  });

  it('keeps a finished pull reserved until two later ImageFsInfo readings could count it', () => {
    let now = 1_000;
    const r = new DiskReservations(() => now);
    const a = r.reserve(100, 150);
    const b = r.reserve(10, 20);
    assert.deepEqual(r.outstanding({ timestampNs: 500 }), { imageFsBytes: 110, diskBytes: 170 });
    r.finish(b, false);
    assert.deepEqual(
      r.outstanding({ timestampNs: 500 }),
      { imageFsBytes: 100, diskBytes: 150 },
      'failed: freed',
    );
    now = 2_000;
    r.finish(a, true);
    // statfs sees a finished pull at once; ImageFsInfo only after a stats sync that began later.
    assert.deepEqual(r.outstanding({ timestampNs: 1_500 }), { imageFsBytes: 100, diskBytes: 0 });
    assert.deepEqual(
      r.outstanding({ timestampNs: 2_500 }),
      { imageFsBytes: 100, diskBytes: 0 },
      'first sync after',
    );
    assert.deepEqual(
      r.outstanding({ timestampNs: 2_500 }),
      { imageFsBytes: 100, diskBytes: 0 },
      'same sync again',
    );
    assert.deepEqual(
      r.outstanding({ timestampNs: 3_500 }),
      { imageFsBytes: 0, diskBytes: 0 },
      'a later sync',
    );
    assert.equal(r.size, 0);
  });
});
