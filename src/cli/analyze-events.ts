import { readFile } from 'node:fs/promises';
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { AnalyzeError } from '../analyze/index.js';
import { renderEventsHtml } from '../analyze/index.js';
import { parseEventsJson, type ParsedEvents } from '../analyze/index.js';
import { histograms, parsePrometheusText, type Histogram } from '../analyze/index.js';
import { buildEventsReport, formatBytes, type EventsReport } from '../analyze/index.js';
import { cutAtWord, shortenRef, textTable } from '../analyze/pull-report.js';
import { collect, inputErrorsAsUsage } from './analyze-common.js';
import { UsageError } from './usage-error.js';

const FAMILY = 'kubelet_image_pull_duration_seconds';

interface EventsFlags {
  output: string;
  out: string;
  metrics?: string[];
}

async function readInput(file: string): Promise<string> {
  if (file === '-') {
    if (process.stdin.isTTY) {
      throw new UsageError(
        'no input: give a file, or pipe "kubectl get events -o json" into hoist analyze events',
      );
    }
    const chunks: Buffer[] = [];
    for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

const merge = (a: ParsedEvents, b: ParsedEvents): ParsedEvents => ({
  pulls: [...a.pulls, ...b.pulls],
  failures: [...a.failures, ...b.failures],
  alreadyPresent: [...a.alreadyPresent, ...b.alreadyPresent],
  pullsWithoutDuration: a.pullsWithoutDuration + b.pullsWithoutDuration,
  events: a.events + b.events,
});

/**
 * JSON numbers as a reader wants them: durations (seconds) and shares to three decimals, so
 * milliseconds, without binary float noise (115.51626377299999 is 115.516); `+Inf` for the
 * histograms' last bucket, which JSON cannot hold.
 */
function jsonValue(_key: string, v: unknown): unknown {
  if (v === Infinity) return '+Inf';
  if (typeof v === 'number' && !Number.isInteger(v)) return Math.round(v * 1000) / 1000;
  return v;
}

const seconds = (n: number) => `${n.toFixed(n >= 100 ? 0 : 1)}s`;

/** Room for a failure's example error in the text table: the cause is the gist, this the detail. */
const EXAMPLE_MAX_CHARS = 72;

export function formatEventsText(r: EventsReport): string {
  let s = `${r.overall.pulls} pulls`;
  if (r.overall.seconds)
    s += `: p50 ${seconds(r.overall.seconds.p50)}, p90 ${seconds(r.overall.seconds.p90)}, p99 ${seconds(r.overall.seconds.p99)}`;
  if (r.overall.waitingShare !== null)
    s += `; ${Math.round(r.overall.waitingShare * 100)}% of pull time spent waiting`;
  s += '\n';
  if (r.images.length) {
    s += `\n${textTable(
      ['image', 'pulls', 'nodes', 'p50', 'p90', 'p90+wait', 'size'],
      r.images.map((i) => [
        shortenRef(i.image),
        String(i.pulls),
        String(i.nodes),
        seconds(i.seconds.p50),
        seconds(i.seconds.p90),
        i.secondsIncludingWaiting ? seconds(i.secondsIncludingWaiting.p90) : 'n/a',
        i.bytes === null ? 'n/a' : formatBytes(i.bytes),
      ]),
      ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
    )}`;
  }
  if (r.failures.length) {
    s += '\nfailed pull attempts (ErrImagePull), and the back-offs after them:\n';
    s += textTable(
      ['image', 'node', 'cause', 'attempts', 'back-offs', 'example'],
      r.failures.map((f) => [
        shortenRef(f.image),
        f.node,
        f.cause,
        String(f.count),
        String(f.imagePullBackOff),
        cutAtWord(f.example, EXAMPLE_MAX_CHARS),
      ]),
      ['left', 'left', 'left', 'right', 'right', 'left'],
      '  ',
    );
  }
  for (const h of r.histograms) {
    const labels = Object.entries(h.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    s += `\n${FAMILY}{${labels}} (${h.source}): ${h.count} pulls, p50 ${h.p50 === null ? 'n/a' : seconds(h.p50)}, p90 ${h.p90 === null ? 'n/a' : seconds(h.p90)}\n`;
  }
  for (const a of r.advice) s += `\n${a.topic}: ${a.message}\n  fix: ${a.fix}\n`;
  return s;
}

export function registerAnalyzeEvents(analyze: Command): void {
  analyze
    .command('events')
    .description(
      'pull times and failures from kubelet events (kubectl get events -o json) and kubelet /metrics',
    )
    .argument(
      '[file...]',
      'events JSON or kubelet /metrics text files, told apart by content; "-" or none reads stdin',
    )
    .option('--metrics <file>', 'kubelet /metrics text (repeatable, one per node)', collect)
    .option('--output <format>', 'text, json or html', 'text')
    .option('--out <file>', 'where --output html writes the report', 'hoist-events.html')
    .action(async (files: string[], opts: EventsFlags) => {
      if (!['text', 'json', 'html'].includes(opts.output)) {
        throw new UsageError(`--output "${opts.output}": use text, json or html`);
      }
      const inputs = files.length === 0 && (opts.metrics ?? []).length === 0 ? ['-'] : files;
      let parsed: ParsedEvents = {
        pulls: [],
        failures: [],
        alreadyPresent: [],
        pullsWithoutDuration: 0,
        events: 0,
      };
      const metrics: Array<{ source: string; histograms: Histogram[] }> = [];
      await inputErrorsAsUsage(async () => {
        const addMetrics = (source: string, text: string) =>
          metrics.push({ source, histograms: histograms(parsePrometheusText(text, source), FAMILY) });
        for (const file of inputs) {
          const text = await readInput(file);
          const source = file === '-' ? 'stdin' : file;
          if (/^\s*[[{]/.test(text)) parsed = merge(parsed, parseEventsJson(text, source));
          else if (text.trim() === '') throw new AnalyzeError('INPUT_INVALID', `${source} is empty`);
          else addMetrics(source, text);
        }
        for (const file of opts.metrics ?? []) addMetrics(file, await readInput(file));
      });
      const report = buildEventsReport(parsed, metrics);
      if (opts.output === 'json') {
        process.stdout.write(`${JSON.stringify(report, jsonValue, 2)}\n`);
      } else if (opts.output === 'html') {
        await writeFile(opts.out, renderEventsHtml(report, new Date().toISOString()));
        process.stdout.write(`wrote ${opts.out}\n`);
      } else process.stdout.write(formatEventsText(report));
    });
}
