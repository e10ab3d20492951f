// The dashboard in headless Chromium (playwright-core driving Debian's chromium), served by a real
// controller replica against the real kube-apiserver. It renders the nodes × images matrix from
// the NodePulls the controller wrote; when the test (playing the agent) changes a NodePull's
// status, the page redraws without a reload; a hostile status message shows as text; no console
// or page errors; no page-level horizontal scroll at 1280 px nor at 375 px. A node mirror on
// 127.0.0.1 that the controller cannot read shows its real figures as a real agent reports them
// (NodePull status.mirror). Screenshots go to test-artifacts/ (git-ignored).
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { CacheSource, PullRecord, PullSummary, PullTelemetrySource } from '../src/dashboard/index.js';
import { parseMirrorCacheFigures } from '../src/node/index.js';
import {
  createPrePull,
  digestImage,
  eventually,
  makeNode,
  nodePulls,
  prepareCluster,
  report,
  startMirroredNode,
  startReplica,
  type ControllerReplica,
} from './helpers/dashboard-cluster.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { skopeoCopyToDir } from './helpers/images.js';
import { shareKubeApiServer } from './helpers/kube.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';

const TIMEOUT = { timeout: 240_000 };
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const HOSTILE = '<img src=x onerror="window.__xss=1">manifest unknown';

/** A pull-telemetry source with fixed records: the real one (src/telemetry) reads kubelet events. */
function telemetry(): PullTelemetrySource & { add(r: PullRecord): void } {
  const records: PullRecord[] = [];
  const listeners = new Set<(r: PullRecord) => void>();
  const summary: PullSummary[] = [
    { image: 'registry.example/ml/model:v1', via: 'direct', count: 4, medianSeconds: 412, p90Seconds: 530 },
    { image: 'registry.example/ml/model:v1', via: 'hoist', count: 9, medianSeconds: 38, p90Seconds: 61 },
  ];
  return {
    recent: (n) => records.slice(-n),
    slowest: (n) => [...records].sort((a, b) => (b.seconds ?? 0) - (a.seconds ?? 0)).slice(0, n),
    summary: () => summary,
    onRecord(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    add(r) {
      records.push(r);
      for (const l of listeners) l(r);
    },
  };
}

const cache: CacheSource = {
  nodes: () => [
    {
      node: 'gpu-1',
      storeBytes: 21_474_836_480,
      blobHits: 45,
      blobLookups: 50,
      servedBytes: 64_424_509_440,
      upstreamBytes: 21_474_836_480,
      scrapedAt: '2026-01-01T00:00:00Z',
    },
  ],
  onChange: () => () => {},
};

async function noHorizontalOverflow(page: Page): Promise<void> {
  // Strings, not functions: they run in the page, and this project's TypeScript has no DOM types.
  const { scrollWidth, innerWidth } = (await page.evaluate(
    '({ scrollWidth: document.scrollingElement.scrollWidth, innerWidth: window.innerWidth })',
  )) as { scrollWidth: number; innerWidth: number };
  assert.ok(scrollWidth <= innerWidth, `page scrolls sideways: ${scrollWidth} > ${innerWidth}`);
}

async function sectionsVisible(page: Page): Promise<void> {
  for (const id of ['summary', 'matrix', 'cache', 'bytes', 'slowest', 'before-after']) {
    assert.ok(await page.locator(`#${id}`).isVisible(), `#${id} visible`);
  }
}

/** The page's number formats (page-script.ts bytes() and pct()). */
function bytesText(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? String(n) : n.toFixed(1)}\u00a0${units[i]}`;
}
const pctText = (n: number) => `${(n * 100).toFixed(1)}\u00a0%`;

function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
    ],
  });
}

const cellPhases = (page: Page, node: string) =>
  page
    .locator(`tr[data-node="${node}"] td.cell`)
    .evaluateAll((tds) => tds.map((td) => td.getAttribute('data-phase')));

describe('dashboard in headless Chromium', TIMEOUT, () => {
  const replicas: ControllerReplica[] = [];
  let browser: Browser | undefined;
  after(async () => {
    await browser?.close();
    await Promise.all(replicas.map((r) => r.stop()));
  });
  const kube = shareKubeApiServer();
  let kubeconfig: string | undefined;

  before(async () => {
    try {
      kube();
    } catch {
      return;
    }
    kubeconfig = await prepareCluster(kube());
  });

  it('renders the matrix, updates live, stays usable at 1280 px and 375 px', TIMEOUT, async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || kubeconfig === undefined) return;
    if (!requirePeers(t, 'chromium')) return;
    const api = kube();
    for (const n of ['gpu-1', 'gpu-2', 'gpu-3']) await makeNode(api, n, { pool: 'gpu' });
    const pulls = telemetry();
    const replica = await startReplica(kubeconfig, 'replica-a', {
      telemetry: pulls,
      cache,
      events: { heartbeatMs: 600_000 },
    });
    replicas.push(replica);
    await createPrePull(api, 'gpu', [digestImage('ml/model', 'a'), digestImage('ml/tools', 'b')], 'gpu');
    // Every node has a NodePull from the start (empty while nothing is wanted there): wait for the work.
    await eventually('three NodePulls with work', async () =>
      (await nodePulls(api)).filter((n) => n.spec.images.length === 2).length === 3 ? true : undefined,
    );

    browser ??= await launchChromium();
    const errors: string[] = [];
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
    // ERR_ABORTED is the page closing its own stream to open a filtered one.
    page.on('requestfailed', (r) => {
      if (r.failure()?.errorText !== 'net::ERR_ABORTED') errors.push(`request failed: ${r.url()}`);
    });
    let navigations = 0;
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });

    await page.goto(`${replica.url}/`);
    await page.locator('tr[data-node="gpu-3"]').waitFor();
    assert.deepEqual(await cellPhases(page, 'gpu-1'), ['Pending', 'Pending']);
    assert.equal(await page.locator('table.matrix tbody tr').count(), 3);
    const label = await page.locator('tr[data-node="gpu-2"] td.cell').first().getAttribute('aria-label');
    assert.match(label ?? '', /^gpu-2, .*ml\/model.*: pending$/, 'state in text, not colour alone');
    await page.locator('#live.on').waitFor();
    assert.equal(await page.locator('#cache td').first().textContent(), 'gpu-1');
    assert.equal(await page.locator('#slowest .empty').textContent(), 'no data yet');

    // The agent on gpu-1 reports: the page redraws from the SSE stream, no reload.
    const images = (await nodePulls(api))[0]!.spec.images.map((e) => e.image).sort();
    await report(api, 'gpu-1', (image) =>
      image === images[0]
        ? { phase: 'Succeeded' }
        : { phase: 'Failed', reason: 'ErrImagePull', message: HOSTILE },
    );
    // Locators, not waitForFunction: the page's CSP (no eval) refuses string predicates.
    for (const phase of ['Succeeded', 'Failed'])
      await page.locator(`tr[data-node="gpu-1"] td.cell[data-phase="${phase}"]`).waitFor({ timeout: 30_000 });
    assert.deepEqual(await cellPhases(page, 'gpu-1'), ['Succeeded', 'Failed']);
    const failed = page.locator('tr[data-node="gpu-1"] td.cell[data-phase="Failed"]');
    assert.match(
      (await failed.getAttribute('title')) ?? '',
      /ErrImagePull.*<img src=x onerror=/,
      'the message as text',
    );
    assert.equal(await page.evaluate('window.__xss'), undefined);
    assert.equal(await page.locator('main img').count(), 0);
    assert.equal(await page.locator('[data-stat="failed"] .num').textContent(), '1');

    // A pull record arrives from telemetry: the slowest-pulls table fills in, still no reload.
    pulls.add({
      namespace: 'ml',
      pod: 'trainer-0',
      node: 'gpu-2',
      image: 'registry.example/ml/model:v1',
      registry: 'registry.example',
      via: 'direct',
      outcome: 'pulled',
      cause: 'cold cache: 18 GiB from upstream',
      seconds: 512.5,
      at: '2026-01-01T00:00:00Z',
    });
    await page
      .locator('#slowest td', { hasText: 'cold cache: 18 GiB from upstream' })
      .waitFor({ timeout: 30_000 });
    assert.equal(navigations, 1, 'updated without a reload');

    await mkdir(ARTIFACTS, { recursive: true });
    await noHorizontalOverflow(page);
    await sectionsVisible(page);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-1280.png`, fullPage: true });

    // A phone: the matrix scrolls in its own box, the page does not.
    await page.setViewportSize({ width: 375, height: 812 });
    await noHorizontalOverflow(page);
    await sectionsVisible(page);
    assert.ok(await page.locator('tr[data-node="gpu-1"] td.cell').first().isVisible());
    const [matrixScroll, matrixWidth] = (await page.evaluate(
      "(() => { const m = document.getElementById('matrix'); return [m.scrollWidth, m.clientWidth]; })()",
    )) as [number, number];
    assert.ok(
      matrixScroll > matrixWidth,
      `the matrix scrolls in its own box (${matrixScroll} > ${matrixWidth})`,
    );
    await page.screenshot({ path: `${ARTIFACTS}dashboard-375.png`, fullPage: true });

    // The filter box narrows the matrix (a new stream with ?node=).
    await page.locator('#filter').fill('gpu-3');
    await page.locator('tr[data-node="gpu-1"]').waitFor({ state: 'detached', timeout: 30_000 });
    assert.equal(await page.locator('table.matrix tbody tr').count(), 1);
    assert.equal(await page.locator('table.matrix tbody tr').getAttribute('data-node'), 'gpu-3');
    assert.deepEqual(errors, []);
  });
  it("shows a loopback mirror's real figures as its agent reports them", TIMEOUT, async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || kubeconfig === undefined) return;
    if (!requirePeers(t, 'chromium', 'docker-registry', 'skopeo', 'containerd')) return;
    if (!requireRoot(t, 'containerd mounts snapshots')) return;
    const api = kube();
    await makeNode(api, 'cache-1', { pool: 'cache' });
    const node = await startMirroredNode(t, api, 'cache-1');
    // No cache source: the controller cannot read a mirror on a node's 127.0.0.1.
    const replica = await startReplica(kubeconfig, 'replica-b', { events: { heartbeatMs: 600_000 } });
    replicas.push(replica);
    browser ??= await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    t.after(() => page.close());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
    await page.goto(`${replica.url}/`);
    await page.locator('#live.on').waitFor();

    // The agent pulls through the mirror (a miss), then a second pull of the same image hits.
    await createPrePull(api, 'cached', [node.image.ref], 'cache');
    await page
      .locator('tr[data-node="cache-1"] td.cell[data-phase="Succeeded"]')
      .waitFor({ timeout: 180_000 })
      .catch((err: Error) => {
        throw new Error(`${err.message}\nagent log:\n${node.agent.stderr()}`);
      });
    const copy = await testTempDir(t, 'hoist-dashboard-copy-');
    await skopeoCopyToDir(
      `docker://${node.mirror.host}/${node.image.repo}@${node.image.digest}`,
      join(copy, 'out'),
    );
    const own = parseMirrorCacheFigures(await (await fetch(`${node.mirror.url}/metrics`)).text());
    assert.ok(own.blobHits > 0 && own.servedBytes > 0, JSON.stringify(own));

    // The cache table, redrawn live, carries the mirror's own figures, read by the node agent.
    const expected = [
      'cache-1',
      bytesText(own.storeBytes),
      pctText(own.blobHits / own.blobLookups),
      bytesText(own.servedBytes),
      bytesText(own.upstreamBytes),
    ];
    const row = page.locator('#cache tbody tr', { hasText: 'cache-1' });
    await page
      .locator('#cache tbody tr', { hasText: bytesText(own.servedBytes) })
      .filter({ hasText: pctText(own.blobHits / own.blobLookups) })
      .waitFor({ timeout: 60_000 });
    const cells = await row.locator('td').allTextContents();
    assert.deepEqual(cells.slice(0, 5), expected);
    assert.equal(cells.at(-1), 'node agent');
    assert.notEqual(await page.locator('#bytes .bar-row').count(), 0, 'bytes by source drawn');
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard-agent-cache.png`, fullPage: true });
    assert.deepEqual(errors, []);
  });
});
