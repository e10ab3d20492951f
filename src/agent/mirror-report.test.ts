// The node mirror's figures in NodePull status, without a cluster: the target flag, the pure
// change test and status shape, the reporter's reading loop on a manual clock (one reading per
// interval, changed figures only, a failing mirror logged once and harmless), and NodePullSync
// writing the figures into the status it already writes, within its write budget.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { MirrorMetrics } from '../mirror/index.js';
import { serveMetricsSocket } from '../mirror/metrics-socket.js';
import {
  figuresChanged,
  MirrorReporter,
  mirrorStatusOf,
  parseMirrorMetricsTarget,
  readMirrorMetrics,
} from './mirror-report.js';
import { NodePullSync } from './node-pull-sync.js';
import type { NodePullMirrorStatus, NodePullStatus } from './node-pull.js';
import { PullQueue } from './pull-queue.js';
import { ManualClock, settle } from '../../test/helpers/manual-clock.js';

/** A mirror's /metrics page with these counters. */
function page(o: { store: number; hits: number; misses: number; served: number; upstream: number }): string {
  return [
    '# TYPE hoist_mirror_store_bytes gauge',
    `hoist_mirror_store_bytes ${o.store}`,
    `hoist_mirror_cache_lookups_total{kind="blob",result="hit"} ${o.hits}`,
    `hoist_mirror_cache_lookups_total{kind="blob",result="miss"} ${o.misses}`,
    `hoist_mirror_served_bytes_total{source="cache"} ${o.served}`,
    `hoist_mirror_upstream_bytes_total{upstream="r.example"} ${o.upstream}`,
    '',
  ].join('\n');
}

/** Log lines at warn and above, as objects. */
function captureLogs(): { logger: pino.Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino(
    { level: 'info' },
    { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) },
  );
  return { logger, lines };
}

describe('mirror figures for NodePull status', () => {
  it('parses --mirror-metrics: http://HOST:PORT, unix:///PATH, none; refuses the rest', () => {
    assert.deepEqual(parseMirrorMetricsTarget('http://127.0.0.1:5000'), { url: 'http://127.0.0.1:5000' });
    assert.deepEqual(parseMirrorMetricsTarget('http://127.0.0.1:5000/'), { url: 'http://127.0.0.1:5000' });
    assert.deepEqual(parseMirrorMetricsTarget('unix:///run/hoist/mirror/metrics.sock'), {
      socketPath: '/run/hoist/mirror/metrics.sock',
    });
    assert.equal(parseMirrorMetricsTarget('none'), undefined);
    assert.throws(() => parseMirrorMetricsTarget('unix://relative.sock'), /absolute path/);
    assert.throws(() => parseMirrorMetricsTarget('https://m.example'), /http:\/\/HOST:PORT/);
    assert.throws(() => parseMirrorMetricsTarget('http://m.example/metrics'), /no path/);
    assert.throws(() => parseMirrorMetricsTarget('127.0.0.1:5000'), /not a URL|http:\/\/HOST:PORT/);
  });

  it('builds the status field: whole non-negative counters, hits within lookups, seconds-precision time', () => {
    const at = new Date('2026-01-01T00:00:00.789Z');
    assert.deepEqual(
      mirrorStatusOf(
        { storeBytes: 10.5, blobHits: 3, blobLookups: 4, servedBytes: 7, upstreamBytes: -1, peerBytes: 2 },
        at,
      ),
      {
        storeBytes: 10,
        blobHits: 3,
        blobLookups: 4,
        servedBytes: 7,
        upstreamBytes: 0,
        peerBytes: 2,
        observedAt: '2026-01-01T00:00:00Z',
      },
    );
    assert.equal(
      mirrorStatusOf({ storeBytes: 0, blobHits: 9, blobLookups: 4, servedBytes: 0, upstreamBytes: 0 }, at)
        .blobHits,
      4,
    );
    const f = { storeBytes: 1, blobHits: 1, blobLookups: 2, servedBytes: 3, upstreamBytes: 4 };
    assert.equal(figuresChanged(undefined, f), true);
    assert.equal(figuresChanged(f, { ...f }), false);
    assert.equal(figuresChanged(f, { ...f, servedBytes: 4 }), true);
    assert.equal(figuresChanged(f, { ...f, peerBytes: 0 }), true);
  });

  it('reads once per interval, hands on changed figures only, and logs a failing mirror once', async () => {
    const clock = new ManualClock();
    const { logger, lines } = captureLogs();
    const counters = { store: 100, hits: 0, misses: 1, served: 100, upstream: 100 };
    let answer: (() => string) | Error = () => page(counters);
    let reads = 0;
    const reported: NodePullMirrorStatus[] = [];
    const reporter = new MirrorReporter({
      read: async () => {
        reads++;
        if (answer instanceof Error) throw answer;
        return answer();
      },
      onFigures: (s) => reported.push(s),
      intervalMs: 30_000,
      timers: clock,
      wallClock: clock.date,
      logger,
    });
    reporter.start();
    await settle();
    assert.equal(reads, 1, 'reads at start');
    assert.deepEqual(reported, [
      {
        storeBytes: 100,
        blobHits: 0,
        blobLookups: 1,
        servedBytes: 100,
        upstreamBytes: 100,
        observedAt: '2026-01-01T00:00:00Z',
      },
    ]);
    assert.deepEqual(clock.delays(), [30_000], 'the next reading waits the interval');

    await clock.advance(29_999);
    assert.equal(reads, 1, 'not before the interval');
    await clock.advance(1);
    assert.equal(reads, 2);
    assert.equal(reported.length, 1, 'unchanged figures are not handed on');

    // A second pull of the same blob: a hit, more bytes served.
    counters.hits = 1;
    counters.served = 200;
    await clock.advance(30_000);
    assert.equal(reported.length, 2);
    assert.equal(reported[1]!.blobHits, 1);
    assert.equal(reported[1]!.blobLookups, 2);
    assert.equal(reported[1]!.servedBytes, 200);
    assert.equal(reported[1]!.observedAt, '2026-01-01T00:01:00Z');

    // The mirror goes away for three readings: one warning, nothing handed on, no throw.
    answer = new Error('connect ECONNREFUSED');
    await clock.advance(90_000);
    assert.equal(reads, 6);
    assert.equal(reported.length, 2);
    const warnings = lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1, JSON.stringify(lines));
    assert.match(warnings[0]!.msg, /cannot read the node mirror/);

    // Something that is not a Hoist mirror answers: no figures from it.
    answer = () => 'up 1\n';
    await clock.advance(30_000);
    assert.equal(reported.length, 2);
    assert.equal(lines.filter((l) => l.level === 40).length, 1, 'still the one warning');

    // Back, with the same figures as last handed on: nothing new to write.
    answer = () => page(counters);
    await clock.advance(30_000);
    assert.equal(reported.length, 2);
    assert.ok(
      lines.some((l) => l.level === 30 && /again/.test(l.msg)),
      'says it recovered',
    );

    reporter.stop();
    assert.deepEqual(clock.delays(), [], 'stop clears the timer');
  });

  it('reads /metrics from a mirror metrics socket, and a missing socket rejects', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hoist-mirror-report-'));
    try {
      const metrics = new MirrorMetrics();
      metrics.storeBytes.set(4096);
      const path = join(dir, 'metrics.sock');
      const server = await serveMetricsSocket(path, metrics, pino({ enabled: false }));
      try {
        const text = await readMirrorMetrics(
          { socketPath: path },
          { timeoutMs: 2_000, maxBodyBytes: 1 << 20 },
        );
        assert.match(text, /^hoist_mirror_store_bytes 4096$/m);
        await assert.rejects(
          readMirrorMetrics({ socketPath: path }, { timeoutMs: 2_000, maxBodyBytes: 10 }),
          /larger than 10 bytes/,
        );
      } finally {
        await new Promise<void>((r) => server.close(() => r()));
      }
      await assert.rejects(
        readMirrorMetrics(
          { socketPath: join(dir, 'none.sock') },
          { timeoutMs: 2_000, maxBodyBytes: 1 << 20 },
        ),
        /ENOENT/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads over http and rejects a non-200 answer', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/metrics') res.writeHead(503).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as { port: number };
      await assert.rejects(
        readMirrorMetrics({ url: `http://127.0.0.1:${port}` }, { timeoutMs: 2_000, maxBodyBytes: 1 << 20 }),
        /answered 503/,
      );
    } finally {
      server.close();
    }
  });

  it('NodePullSync carries the figures in the status it writes, coalesced by its writer', async () => {
    const clock = new ManualClock();
    const queue = new PullQueue({
      runtime: { status: async () => undefined, pull: async () => 'sha256:00' },
      concurrency: 1,
      timers: clock,
    });
    const statuses: NodePullStatus[] = [];
    const sync = new NodePullSync({
      nodeName: 'node-a',
      queue,
      defaultConcurrency: 1,
      writeStatus: async (s) => void statuses.push(structuredClone(s)),
      statusIntervalMs: 1_000,
      timers: clock,
      now: clock.now,
      wallClock: clock.date,
    });
    const figures = (served: number): NodePullMirrorStatus => ({
      storeBytes: 10,
      blobHits: 1,
      blobLookups: 2,
      servedBytes: served,
      upstreamBytes: 10,
      observedAt: '2026-01-01T00:00:00Z',
    });
    // Before the NodePull exists nothing is written; the figures wait for it.
    sync.setMirror(figures(20));
    await clock.advance(5_000);
    assert.equal(statuses.length, 0);
    sync.apply({ metadata: { name: 'node-a', generation: 1 }, spec: { nodeName: 'node-a', images: [] } });
    await clock.advance(0);
    assert.equal(statuses.length, 1);
    assert.deepEqual(statuses[0]!.mirror, figures(20));
    // Figures arriving faster than the writer's interval: one write with the latest.
    sync.setMirror(figures(30));
    sync.setMirror(figures(40));
    await clock.advance(1_000);
    assert.equal(statuses.length, 2);
    assert.equal(statuses[1]!.mirror?.servedBytes, 40);
    // The same figures again: no write.
    sync.setMirror(figures(40));
    await clock.advance(5_000);
    assert.equal(statuses.length, 2);
    await sync.close();
    queue.close();
  });
});
