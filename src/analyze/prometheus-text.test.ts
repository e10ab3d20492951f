import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnalyzeError } from './errors.js';
import { histogramQuantile, histograms, mergeHistograms, parsePrometheusText } from './prometheus-text.js';

// As the kubelet serves it (1.30+: the histogram is labelled by image size bucket).
export const KUBELET_METRICS = `# HELP kubelet_image_pull_duration_seconds [ALPHA] Duration in seconds to pull an image.
# TYPE kubelet_image_pull_duration_seconds histogram
kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="0-10MB",le="0.5"} 2
kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="0-10MB",le="1"} 4
kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="0-10MB",le="5"} 4
kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="0-10MB",le="+Inf"} 4
kubelet_image_pull_duration_seconds_sum{image_size_in_bytes="0-10MB"} 2.1
kubelet_image_pull_duration_seconds_count{image_size_in_bytes="0-10MB"} 4
kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="5GB-10GB",le="60"} 0
kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="5GB-10GB",le="300"} 1
kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="5GB-10GB",le="600"} 3
kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="5GB-10GB",le="+Inf"} 3
kubelet_image_pull_duration_seconds_sum{image_size_in_bytes="5GB-10GB"} 1200
kubelet_image_pull_duration_seconds_count{image_size_in_bytes="5GB-10GB"} 3
# HELP kubelet_running_pods [ALPHA] Number of pods
# TYPE kubelet_running_pods gauge
kubelet_running_pods 12
process_start_time_seconds{label="with \\"quote\\""} 1.7e+09 1714550400000
`;

describe('Prometheus text', () => {
  it('parses samples, labels with escapes, exponents and timestamps', () => {
    const samples = parsePrometheusText(KUBELET_METRICS);
    assert.equal(samples.length, 14);
    const last = samples[samples.length - 1];
    assert.deepEqual(last, {
      name: 'process_start_time_seconds',
      labels: { label: 'with "quote"' },
      value: 1.7e9,
    });
  });

  it('rebuilds kubelet_image_pull_duration_seconds histograms by image size', () => {
    const hs = histograms(parsePrometheusText(KUBELET_METRICS), 'kubelet_image_pull_duration_seconds');
    assert.deepEqual(
      hs.map((h) => [h.labels.image_size_in_bytes, h.count, h.sum, h.buckets.length]),
      [
        ['0-10MB', 4, 2.1, 4],
        ['5GB-10GB', 3, 1200, 4],
      ],
    );
    const big = hs[1]!;
    // rank 1.5 of 3 lies in (300, 600]: 300 + 300 * (1.5 - 1) / 2
    assert.equal(histogramQuantile(0.5, big.buckets), 375);
    assert.equal(histogramQuantile(0.5, hs[0]!.buckets), 0.5);
    assert.equal(histogramQuantile(0.5, []), null);
    const merged = mergeHistograms(hs, {});
    assert.equal(merged?.count, 7);
    assert.equal(merged?.buckets.find((b) => b.le === Infinity)?.count, 7);
  });

  it('rejects text that is not Prometheus format, naming the line', () => {
    assert.throws(
      () => parsePrometheusText('# ok\nthis is not a metric line at all\n', 'm.txt'),
      (e: unknown) =>
        e instanceof AnalyzeError && e.code === 'METRICS_INVALID' && /m\.txt:2:/.test(e.message),
    );
    assert.throws(() => parsePrometheusText('x{a="1" b} 1\n'), /malformed labels/);
  });
});
