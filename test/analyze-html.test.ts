// The HTML reports of `hoist analyze events` and `hoist analyze images`, opened in headless
// Chromium: the page's own script sets the title to `ok:<charts>` once every chart has drawn, or
// `error:...` on a script error; the Content-Security-Policy forbids loading anything else, and a
// blocked load would show in Chromium's console log.
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it, type TestContext } from 'node:test';
import { buildEventsReport, parseEventsJson, renderEventsHtml } from '../src/analyze/index.js';
import { cutAtWord, shortenRef, textTable } from '../src/analyze/pull-report.js';
import { formatEventsText } from '../src/cli/analyze-events.js';
import { hoist } from './analyze-helpers.js';
import { buildImage, pushImage } from './helpers/images.js';
import { requirePeers, tempDir, testTempDir } from './helpers/peers.js';
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

// Layout: the report is measured by a script inside it, loaded in an iframe of the width under test
// (headless Chromium will not make a window narrower than 500 px; an iframe has any width). The
// script posts what it measured to the harness page, whose DOM --dump-dom prints.
const MEASURE = `<script>
(function(){
  var vw=innerWidth,bad=[],wrapped=[],scrolling=0;
  function name(el){return el.tagName.toLowerCase()+(el.className&&typeof el.className==='string'?'.'+el.className:'');}
  function scroller(el){for(var p=el.parentElement;p;p=p.parentElement){if(p.classList.contains('scroll'))return p;}return null;}
  var all=document.body.querySelectorAll('*');
  for(var i=0;i<all.length;i++){
    var r=all[i].getBoundingClientRect();
    if(r.width===0&&r.height===0)continue;
    if(r.right>vw+0.5||r.left<-0.5){
      var s=scroller(all[i]);
      var sr=s&&s.getBoundingClientRect();
      if(!s||sr.right>vw+0.5||sr.left<-0.5)bad.push(name(all[i])+' '+Math.round(r.left)+'..'+Math.round(r.right));
    }
  }
  var nums=document.querySelectorAll('td.n');
  for(var j=0;j<nums.length;j++){
    var range=document.createRange();range.selectNodeContents(nums[j]);
    var tops={};var rects=range.getClientRects();
    for(var k=0;k<rects.length;k++)tops[Math.round(rects[k].top)]=1;
    if(Object.keys(tops).length>1)wrapped.push(nums[j].textContent);
  }
  var sc=document.querySelectorAll('.scroll');
  for(var m=0;m<sc.length;m++)if(sc[m].scrollWidth>sc[m].clientWidth)scrolling++;
  parent.postMessage(JSON.stringify({title:document.title,innerWidth:vw,scrollWidth:document.documentElement.scrollWidth,bad:bad.slice(0,10),wrappedNumbers:wrapped,scrolling:scrolling,tables:sc.length}),'*');
})();
</script>`;

interface Layout {
  title: string;
  innerWidth: number;
  scrollWidth: number;
  bad: string[];
  wrappedNumbers: string[];
  scrolling: number;
  tables: number;
}

/** Lays the report out `width` px wide; returns what its script measured, and a screenshot. */
async function layout(t: TestContext, report: string, width: number, artifacts: string) {
  const measured = join(artifacts, `report-${width}.html`);
  await writeFile(measured, (await readFile(report, 'utf8')).replace('</body>', `${MEASURE}</body>`));
  const harness = join(artifacts, `harness-${width}.html`);
  await writeFile(
    harness,
    `<!DOCTYPE html><html><body style="margin:0"><pre id="m">pending</pre>
<script>addEventListener('message',function(e){document.getElementById('m').textContent=e.data;});</script>
<iframe src="report-${width}.html" width="${width}" height="3000" style="border:0;display:block"></iframe></body></html>`,
  );
  const url = pathToFileURL(harness).href;
  const windowSize = `--window-size=${Math.max(width, 500)},3000`;
  const dom = await chromium(t, ['--dump-dom', '--hide-scrollbars', windowSize, url]);
  const text = /<pre id="m">([^<]*)<\/pre>/.exec(dom.stdout)?.[1] ?? '';
  assert.notEqual(
    text,
    'pending',
    `the report's measuring script never reported: ${dom.stderr.slice(-1500)}`,
  );
  const screenshot = join(artifacts, `report-${width}.png`);
  await chromium(t, [`--screenshot=${screenshot}`, windowSize, '--hide-scrollbars', url]);
  return { measured: JSON.parse(text.replace(/&amp;/g, '&').replace(/&quot;/g, '"')) as Layout, screenshot };
}

const LONG_IMAGE =
  'registry.internal.example.com:5443/platform-team/machine-learning/inference/text-generation-server-with-a-long-name:v2024.05.01-cuda12.4-ubuntu22.04';
const LONG_NODE = 'ip-10-120-33-201.eu-central-1.compute.internal';

describe('HTML report layout in headless Chromium', () => {
  it(
    'fits 1400 px and a 375 px phone: wide tables scroll in their section, numbers keep their units',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'chromium')) return;
      const dir = await testTempDir(t, 'hoist-html-layout-');
      // Kept after the test, to look at: the screenshots and the measured pages.
      const artifacts = await tempDir('hoist-html-layout-artifacts-');
      t.diagnostic(`screenshots in ${artifacts}`);
      const items = [];
      for (let i = 0; i < 6; i++) {
        const s = 40 + i * 33.3;
        items.push(
          event(
            'Pulled',
            `Successfully pulled image "${LONG_IMAGE.replace(':v2024', `-${i}:v2024`)}" in ${s}s (${s * 2.2}s including waiting). Image size: ${(i + 1) * 2_100_000_000} bytes.`,
            `${LONG_NODE.replace('201', String(200 + i))}`,
          ),
        );
      }
      items.push(
        event(
          'Failed',
          `Failed to pull image "${LONG_IMAGE}": rpc error: code = Canceled desc = failed to pull and unpack image "${LONG_IMAGE}": failed to copy: httpReadSeeker: failed open: failed to do request: Get "https://registry.internal.example.com:5443/v2/platform-team/machine-learning/inference/text-generation-server-with-a-long-name/blobs/sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1": context canceled`,
          LONG_NODE,
          3,
        ),
      );
      items.push(event('BackOff', `Back-off pulling image "${LONG_IMAGE}"`, LONG_NODE, 5));
      const eventsFile = join(dir, 'events.json');
      await writeFile(eventsFile, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
      const report = join(dir, 'events.html');
      const parsed = parseEventsJson(await readFile(eventsFile, 'utf8'), eventsFile);
      await writeFile(report, renderEventsHtml(buildEventsReport(parsed), '2024-05-01T10:00:00Z'));
      // Bar labels are cut in the middle: the six nodes, alike at both ends, stay apart.
      const html = await readFile(report, 'utf8');
      const nodeChart = html.slice(html.indexOf('aria-label="pull time per node"'));
      const labels = [...nodeChart.matchAll(/text-anchor="end"[^>]*>([^<]*)</g)].map((m) => m[1]);
      assert.equal(new Set(labels).size, 6, labels.join('\n'));

      for (const width of [1400, 375]) {
        const { measured: m, screenshot } = await layout(t, report, width, artifacts);
        t.diagnostic(`${width} px: ${screenshot}`);
        assert.equal(m.title, 'ok:4', `the report's own script at ${width} px`);
        assert.equal(m.innerWidth, width);
        assert.ok(m.scrollWidth <= m.innerWidth, `page ${m.scrollWidth} px wide in a ${width} px window`);
        assert.deepEqual(m.bad, [], `elements past the window at ${width} px, outside a scroll box`);
        assert.deepEqual(m.wrappedNumbers, [], `numbers parted from their units at ${width} px`);
        assert.equal(m.tables, 2, 'the per-image and the failure tables, each in a scroll box');
        // At 1400 px the failure table fits; on a phone it is wider than the screen and scrolls.
        if (width === 375) assert.ok(m.scrolling >= 1, 'a table scrolls inside its section on a phone');
        assert.ok((await stat(screenshot)).size > 10_000, 'a screenshot with content');
      }
    },
  );
});

describe('text tables', () => {
  it('shortens a long image reference in the middle, keeping registry start and name:tag', () => {
    assert.equal(shortenRef('nginx:1.27', 20), 'nginx:1.27');
    const short = shortenRef(LONG_IMAGE, 100);
    assert.equal([...short].length, 100);
    assert.ok(short.startsWith('regist'), short);
    assert.ok(
      short.endsWith('/text-generation-server-with-a-long-name:v2024.05.01-cuda12.4-ubuntu22.04'.slice(-40)),
      short,
    );
    assert.ok(short.includes('…'), short);
    // The tag survives even when the last component alone is too long.
    const tiny = shortenRef(LONG_IMAGE, 24);
    assert.equal([...tiny].length, 24);
    assert.ok(tiny.endsWith('cuda12.4-ubuntu22.04'), tiny);
    // Short enough after the registry: name:tag kept whole.
    assert.equal(
      shortenRef('registry.example.com/a/very/deep/path/that/goes/on/and/on/app:v1', 40),
      'registry.example.com/a/very/deep/…app:v1',
    );
  });

  it('cuts a message at a word boundary with an ellipsis', () => {
    assert.equal(cutAtWord('short message', 40), 'short message');
    const msg =
      'rpc error: code = Canceled desc = failed to pull and unpack image "app:v1": context canceled';
    const cut = cutAtWord(msg, 41);
    assert.ok([...cut].length <= 41, cut);
    assert.equal(cut, 'rpc error: code = Canceled desc = failed…');
    assert.equal(cutAtWord(msg, 40), 'rpc error: code = Canceled desc =…');
    assert.ok(msg.startsWith(cut.slice(0, -1)), 'a prefix of the message');
    assert.equal(cutAtWord('one two three', 8), 'one two…');
    // One long word (a URL) has no boundary: cut inside it rather than print nothing.
    assert.equal(cutAtWord(`see https://example.com/${'x'.repeat(60)}`, 20), 'see https://example…');
    assert.equal(cutAtWord('a\n  b\tc', 10), 'a b c', 'whitespace runs become one space');
  });

  it('aligns columns by the longest cell, numbers to the right', () => {
    const out = textTable(
      ['image', 'pulls', 'size'],
      [
        ['nginx:1.27', '3', '12.0 MB'],
        ['registry.example.com/ml/model:v1', '120', '1.2 GB'],
      ],
      ['left', 'right', 'right'],
      '  ',
    );
    const lines = out.trimEnd().split('\n');
    assert.deepEqual(lines, [
      '  image                             pulls     size',
      '  nginx:1.27                            3  12.0 MB',
      '  registry.example.com/ml/model:v1    120   1.2 GB',
    ]);
  });

  it('analyze events text: columns stay aligned with long image names', () => {
    const items = [
      event(
        'Pulled',
        `Successfully pulled image "${LONG_IMAGE}" in 120.5s. Image size: 4000000000 bytes.`,
        'n1',
      ),
      event('Pulled', 'Successfully pulled image "nginx:1.27" in 1.5s', 'n2'),
      event(
        'Failed',
        `Failed to pull image "${LONG_IMAGE}": ${'rpc error: code = Canceled desc = context canceled '.repeat(3)}`,
        LONG_NODE,
        2,
      ),
    ];
    const text = formatEventsText(
      buildEventsReport(parseEventsJson(JSON.stringify({ kind: 'List', items }), 'x')),
    );
    const lines = text.split('\n');
    const header = lines.findIndex((l) => l.startsWith('image '));
    const table = lines.slice(header, header + 3);
    // Every row ends its "pulls" column at the same place as the header.
    const end = (table[0] ?? '').indexOf('pulls') + 'pulls'.length;
    for (const row of table.slice(1)) assert.match(row.slice(0, end), /\d$/, `aligned: ${row}`);
    assert.ok(
      table.every((l) => [...l].length <= 120),
      table.join('\n'),
    );
    const failure = lines.find((l) => l.includes(LONG_NODE)) ?? '';
    const example = failure.split(/ {2,}/).at(-1) ?? '';
    const message = `${'rpc error: code = Canceled desc = context canceled '.repeat(3)}`.trim();
    assert.match(example, /…$/, 'the example is cut with an ellipsis');
    const kept = example.slice(0, -1);
    assert.ok(message.startsWith(kept), `a prefix of the message: ${example}`);
    assert.match(message.slice(kept.length), /^[\s,;:.=-]/, `cut between words: ${example}`);
  });
});
