// The HTML reports of `hoist analyze events` and `hoist analyze images`, opened in headless
// Chromium: the page's own script sets the title to `ok:<charts>` once every chart has drawn, or
// `error:...` on a script error; the Content-Security-Policy forbids loading anything else, and a
// blocked load would show in Chromium's console log.
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it, type TestContext } from 'node:test';
import { hoist } from './analyze-helpers.js';
import { buildImage, pushImage } from './helpers/images.js';
import { requirePeers, testTempDir } from './helpers/peers.js';
import { run } from './helpers/process.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };

async function chromium(t: TestContext, args: string[]) {
  const profile = await testTempDir(t, 'hoist-chromium-');
  return run(
    'chromium',
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--enable-logging=stderr',
      '--v=0',
      `--user-data-dir=${profile}`,
      ...args,
    ],
    { timeoutMs: 90_000 },
  );
}

/** Opens the report; returns the page title its script set, and what Chromium logged. */
async function render(t: TestContext, file: string) {
  const url = pathToFileURL(file).href;
  const dom = await chromium(t, ['--dump-dom', url]);
  const title = /<title>([^<]*)<\/title>/.exec(dom.stdout)?.[1] ?? '';
  const charts = (dom.stdout.match(/<svg class="chart"/g) ?? []).length;
  const shot = join(file, '..', 'report.png');
  await chromium(t, [`--screenshot=${shot}`, '--window-size=1100,2400', '--hide-scrollbars', url]);
  return { title, charts, log: dom.stderr, screenshot: shot };
}

function assertClean(log: string) {
  // Console errors (CSP violations, failed loads, uncaught exceptions) appear as CONSOLE lines.
  const bad = log
    .split('\n')
    .filter((l) => /Refused to|Uncaught|Failed to load|ERR_/.test(l) && /CONSOLE|console/.test(l));
  assert.deepEqual(bad, []);
}

const event = (reason: string, message: string, node: string, count = 1) => ({
  kind: 'Event',
  reason,
  message,
  involvedObject: { kind: 'Pod', namespace: 'default', name: `p-${node}`, fieldPath: 'spec.containers{app}' },
  source: { component: 'kubelet', host: node },
  count,
  lastTimestamp: '2024-05-01T10:00:00Z',
});

describe('HTML reports in headless Chromium', () => {
  it('analyze events: renders every chart with no script errors', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'chromium')) return;
    const dir = await testTempDir(t, 'hoist-html-events-');
    const items = [];
    for (let i = 0; i < 12; i++) {
      const s = 2 + i * 7.5;
      items.push(
        event(
          'Pulled',
          `Successfully pulled image "registry.example.com/ml/model:v${i % 3}" in ${s}s (${s * 1.6}s including waiting). Image size: ${(i + 1) * 900_000_000} bytes.`,
          `node-${i % 4}`,
        ),
      );
    }
    items.push(event('Pulled', 'Successfully pulled image "nginx:1.27" in 1.5s', 'node-9'));
    items.push(
      event(
        'Failed',
        'Failed to pull image "nginx:1.27": 429 Too Many Requests - toomanyrequests',
        'node-1',
        4,
      ),
    );
    items.push(event('BackOff', 'Back-off pulling image "nginx:1.27"', 'node-1', 6));
    items.push(event('Failed', 'Failed to pull image "app:gone": manifest unknown', 'node-2'));
    const eventsFile = join(dir, 'events.json');
    await writeFile(eventsFile, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
    const metricsFile = join(dir, 'metrics.txt');
    await writeFile(
      metricsFile,
      [
        '# TYPE kubelet_image_pull_duration_seconds histogram',
        'kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="1GB-5GB",le="10"} 1',
        'kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="1GB-5GB",le="60"} 5',
        'kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="1GB-5GB",le="300"} 7',
        'kubelet_image_pull_duration_seconds_bucket{image_size_in_bytes="1GB-5GB",le="+Inf"} 7',
        'kubelet_image_pull_duration_seconds_sum{image_size_in_bytes="1GB-5GB"} 400',
        'kubelet_image_pull_duration_seconds_count{image_size_in_bytes="1GB-5GB"} 7',
        '',
      ].join('\n'),
    );
    const out = join(dir, 'events.html');
    const res = await hoist(['analyze', 'events', eventsFile, metricsFile, '--output', 'html', '--out', out]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `wrote ${out}\n`);
    const html = await readFile(out, 'utf8');
    assert.doesNotMatch(html, /\b(src|href)=["']?(https?:)?\/\//, 'no external resources');
    const page = await render(t, out);
    // distribution, per image, failures by cause, per node, one kubelet histogram
    assert.equal(page.title, 'ok:5', page.log.slice(-2000));
    assert.equal(page.charts, 5);
    assertClean(page.log);
    assert.ok((await stat(page.screenshot)).size > 10_000, 'a screenshot with content');
  });

  it('analyze images: renders bytes per image and shared versus unique', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'chromium', 'docker-registry', 'skopeo')) return;
    const dir = await testTempDir(t, 'hoist-html-images-');
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const base = { files: [{ path: 'base/os.bin', size: 300_000, seed: 'html-os' }] };
    const refs: string[] = [];
    for (const name of ['web', 'jobs']) {
      const image = await buildImage(join(dir, name), {
        tag: 'v1',
        layers: [base, { files: [{ path: `${name}/app.bin`, size: 120_000, seed: name }] }],
      });
      await pushImage(image.dir, 'v1', `${registry.host}/html/${name}:v1`, { preserveDigests: true });
      refs.push(`${registry.host}/html/${name}:v1`);
    }
    const out = join(dir, 'images.html');
    const res = await hoist(['analyze', 'images', ...refs, '--output', 'html', '--out', out]);
    assert.equal(res.code, 0, res.stderr);
    const page = await render(t, out);
    assert.equal(page.title, 'ok:2', page.log.slice(-2000));
    assert.equal(page.charts, 2);
    assertClean(page.log);
    const html = await readFile(out, 'utf8');
    for (const ref of refs) assert.ok(html.includes(ref), ref);
  });
});
