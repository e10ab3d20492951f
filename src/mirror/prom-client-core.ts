// prom-client's metric classes without the rest of the package. Its index.js also loads its default
// metrics (and through process_cpu_seconds_total the whole of @opentelemetry/api, 51 modules), the
// Pushgateway (node:https, node:tls), the cluster aggregator (node:cluster) and Summary (tdigest,
// bintrees): about 4 MiB of an idle mirror's RSS for code the mirror never runs (BENCHMARKS.md,
// "Idle memory"). Each class lives in a file of its own that loads only what it uses; prom-client
// has no "exports" map, so these paths are as public to Node's resolver as the index is, and they
// are the very modules the index re-exports (one CommonJS cache entry per file), so a Registry from
// here is the Registry that `import ... from 'prom-client'` gives elsewhere. The types are the
// package's own; the version is pinned in package.json, and test/cli-lazy-load.test.ts fails if
// the mirror loads the full index again.
import { createRequire } from 'node:module';
import type * as promClient from 'prom-client';

const require = createRequire(import.meta.url);

export const Registry = require('prom-client/lib/registry') as typeof promClient.Registry;
export type Registry = promClient.Registry;
export const Counter = require('prom-client/lib/counter') as typeof promClient.Counter;
export type Counter<T extends string = string> = promClient.Counter<T>;
export const Gauge = require('prom-client/lib/gauge') as typeof promClient.Gauge;
export type Gauge<T extends string = string> = promClient.Gauge<T>;
export const Histogram = require('prom-client/lib/histogram') as typeof promClient.Histogram;
export type Histogram<T extends string = string> = promClient.Histogram<T>;

/** prom-client's process and Node.js metrics: these need the full package, so it loads only here. */
export function collectDefaultMetrics(...args: Parameters<typeof promClient.collectDefaultMetrics>): void {
  (require('prom-client') as typeof promClient).collectDefaultMetrics(...args);
}
