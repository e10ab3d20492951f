// Runs the OCI distribution-spec conformance suite (distribution-spec v1.1's Ginkgo suite, the
// `oci-conformance` test binary that scripts/install-peers.sh builds from test/peers/conformance)
// and reads its JUnit report; and the method router that lets the suite, which pushes its own
// content, test a read-only mirror.
import { readFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { TestContext } from 'node:test';
import { testTempDir } from './peers.js';
import { CommandError, run } from './process.js';

/** A request the router passed on, for failure messages. */
export interface Routed {
  method: string;
  path: string;
  to: 'mirror' | 'upstream';
  status: number;
}

export interface MethodRouter {
  url: string;
  routed: Routed[];
  /** The requests so far, one line each (paths cut short: upload URLs carry long state tokens). */
  trail(): string;
}

/**
 * Starts a router on loopback: reads (GET, HEAD) go to the mirror, every other method to the
 * upstream, headers and bodies untouched. distribution builds upload `Location`s from the
 * request's Host, so they name the router and the suite's next PUT comes back through it.
 * Closed when `t` ends.
 */
export async function startMethodRouter(
  t: TestContext,
  mirrorUrl: string,
  upstreamUrl: string,
): Promise<MethodRouter> {
  const routed: Routed[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const to = req.method === 'GET' || req.method === 'HEAD' ? 'mirror' : 'upstream';
    const target = new URL(req.url ?? '/', to === 'mirror' ? mirrorUrl : upstreamUrl);
    const entry = { method: req.method ?? '', path: req.url ?? '', to, status: 0 } satisfies Routed;
    routed.push(entry);
    const out = request(target, { method: req.method, headers: req.headers }, (back) => {
      entry.status = back.statusCode ?? 0;
      res.writeHead(back.statusCode ?? 502, back.headers);
      pipeline(back, res).catch(() => res.destroy());
    });
    out.on('error', (err) => {
      entry.status = 502;
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-type': 'text/plain' }).end(`router: ${err.message}\n`);
    });
    pipeline(req, out).catch(() => out.destroy());
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    routed,
    trail: () => routed.map((r) => `${r.method} ${r.path.slice(0, 110)} -> ${r.to} ${r.status}`).join('\n'),
  };
}

export interface JunitCase {
  name: string;
  /** Ginkgo's status: passed, skipped, failed, panicked, interrupted, timedout, aborted. */
  status: string;
  /** The failure message, when there is one. */
  failure: string | undefined;
}

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, ent: string) => {
    if (/^#x/i.test(ent)) return String.fromCodePoint(parseInt(ent.slice(2), 16));
    if (ent.startsWith('#')) return String.fromCodePoint(parseInt(ent.slice(1), 10));
    return XML_ENTITIES[ent] ?? whole;
  });
}

/**
 * The test cases of Ginkgo's JUnit report (ginkgo/v2 reporters/junit_report.go): one
 * `<testcase name=... status=...>` per spec, with a `<failure message=...>` child when it failed.
 * Attribute values never hold a raw `<` or `"` (they are escaped), so a pattern reads them.
 */
export function parseGinkgoJunit(xml: string): JunitCase[] {
  const cases: JunitCase[] = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const attrs = m[1] ?? '';
    const name = /\bname="([^"]*)"/.exec(attrs)?.[1];
    const status = /\bstatus="([^"]*)"/.exec(attrs)?.[1];
    if (name === undefined || status === undefined) continue;
    const failure = /<(?:failure|error)\b[^>]*?\bmessage="([^"]*)"/.exec(m[3] ?? '')?.[1];
    cases.push({
      name: unescapeXml(name),
      status,
      failure: failure === undefined ? undefined : unescapeXml(failure),
    });
  }
  return cases;
}

/** Every spec name starts with this (the suite's top-level Describe). */
export const SPEC_PREFIX = '[It] OCI Distribution Conformance Tests ';

export type Workflow = 'pull' | 'push' | 'discovery' | 'management';

const WORKFLOW_ENV: Record<Workflow, string> = {
  pull: 'OCI_TEST_PULL',
  push: 'OCI_TEST_PUSH',
  discovery: 'OCI_TEST_CONTENT_DISCOVERY',
  management: 'OCI_TEST_CONTENT_MANAGEMENT',
};

export interface SuiteRun {
  cases: JunitCase[];
  /** The suite's own stdout and stderr (Ginkgo's summary), for failure messages. */
  output: string;
}

/**
 * Runs the suite binary against `rootUrl` (OCI_ROOT_URL) for the given workflows, configured by
 * its environment only (conformance/README.md of distribution-spec v1.1), and returns the specs
 * of its JUnit report. A failed spec is not an error here (the suite exits 1); a suite that
 * could not run or wrote no report is.
 */
export async function runConformanceSuite(
  t: TestContext,
  binary: string,
  rootUrl: string,
  opts: { namespace: string; workflows: Workflow[] },
): Promise<SuiteRun> {
  const reportDir = await testTempDir(t, 'hoist-oci-conformance-');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: reportDir,
    OCI_ROOT_URL: rootUrl,
    OCI_NAMESPACE: opts.namespace,
    // Else a random conformance-<uuid>; a fixed one keeps the requests readable.
    OCI_CROSSMOUNT_NAMESPACE: `${opts.namespace}-mount`,
    OCI_HIDE_SKIPPED_WORKFLOWS: '1',
    OCI_DEBUG: '0',
    OCI_REPORT_DIR: reportDir,
  };
  for (const w of opts.workflows) env[WORKFLOW_ENV[w]] = '1';
  let output: string;
  try {
    const r = await run(binary, ['-ginkgo.no-color', '-test.timeout', '120s'], {
      env,
      cwd: reportDir,
      timeoutMs: 180_000,
    });
    output = r.stdout + r.stderr;
  } catch (err) {
    if (!(err instanceof CommandError) || err.exitCode !== 1) throw err;
    output = err.stdout + err.stderr;
  }
  let xml: string;
  try {
    xml = await readFile(join(reportDir, 'junit.xml'), 'utf8');
  } catch (err) {
    throw new Error(`the suite wrote no junit.xml (${String(err)}); its output:\n${output.slice(-4000)}`);
  }
  return { cases: parseGinkgoJunit(xml), output };
}
