import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMirrorMetrics } from './mirror-metrics.js';
import { targetsFromEndpointSlices } from './mirror-scraper.js';

describe('mirror /metrics for the dashboard', () => {
  it('reads store bytes, blob hit ratio, served and upstream bytes', () => {
    const text = [
      '# HELP hoist_mirror_store_bytes Bytes of verified blobs in the store',
      '# TYPE hoist_mirror_store_bytes gauge',
      'hoist_mirror_store_bytes 1234',
      'hoist_mirror_cache_lookups_total{kind="blob",result="hit"} 3',
      'hoist_mirror_cache_lookups_total{kind="blob",result="miss"} 1',
      'hoist_mirror_cache_lookups_total{kind="manifest",result="hit"} 50',
      'hoist_mirror_served_bytes_total{source="cache"} 300',
      'hoist_mirror_served_bytes_total{source="inflight"} 100',
      'hoist_mirror_upstream_bytes_total{upstream="docker.io"} 70',
      'hoist_mirror_upstream_bytes_total{upstream="a \\"b\\", c"} 30 1700000000000',
      'hoist_mirror_requests_total{route="blob"} 999',
      'garbage line {',
      '',
    ].join('\n');
    assert.deepEqual(parseMirrorMetrics(text), {
      storeBytes: 1234,
      blobHits: 3,
      blobLookups: 4,
      servedBytes: 400,
      upstreamBytes: 100,
    });
  });

  it('takes upstream and peer bytes from fetched_bytes_total once mirrors report it', () => {
    const text = [
      'hoist_mirror_upstream_bytes_total{upstream="x"} 500',
      'hoist_mirror_fetched_bytes_total{source="upstream"} 400',
      'hoist_mirror_fetched_bytes_total{source="peer"} 100',
    ].join('\n');
    const c = parseMirrorMetrics(text);
    assert.equal(c.upstreamBytes, 400);
    assert.equal(c.peerBytes, 100);
  });

  it('turns ready EndpointSlice endpoints into one target per node', () => {
    const targets = targetsFromEndpointSlices([
      {
        metadata: { name: 's1' },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 5000 }],
        endpoints: [
          { addresses: ['10.0.0.2'], nodeName: 'n2', conditions: { ready: true } },
          { addresses: ['10.0.0.1'], nodeName: 'n1' },
          { addresses: ['10.0.0.3'], nodeName: 'n3', conditions: { ready: false } },
          { addresses: ['10.0.0.4'] },
        ],
      },
      {
        metadata: { name: 's2' },
        addressType: 'IPv6',
        ports: [{ name: 'http', port: 5000 }],
        endpoints: [{ addresses: ['fd00::5'], nodeName: 'n5' }],
      },
      { metadata: { name: 's3' }, addressType: 'FQDN', ports: [{ name: 'http', port: 1 }], endpoints: [] },
    ]);
    assert.deepEqual(targets, [
      { node: 'n1', url: 'http://10.0.0.1:5000' },
      { node: 'n2', url: 'http://10.0.0.2:5000' },
      { node: 'n5', url: 'http://[fd00::5]:5000' },
    ]);
  });
});
