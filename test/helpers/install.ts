// The install tests' shared pieces: `hoist render install` from the sources, the real helm with a
// private home, and the lookups the tests use to pick rendered objects apart.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../src/install/index.js';
import { runHoist, type HoistResult } from './cri.js';
import { goPeerBinary } from './go-peers.js';
import { run } from './process.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CHART = join(ROOT, 'deploy/helm/hoist');
/** The namespace the chart and `hoist render install` default to. */
export const NS = 'hoist-system';

// Rendered objects are checked field by field; typing every path would add nothing.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = any;

/** `hoist ARGS` from the sources (tsx), as users run the built binary. */
export const hoist = (args: string[]): Promise<HoistResult> => runHoist(args, { fromSource: true });

/** `hoist render install ARGS`'s stdout; asserts it exits 0. */
export async function renderInstall(args: string[] = []): Promise<string> {
  const res = await hoist(['render', 'install', ...args]);
  assert.equal(res.code, 0, res.stderr);
  return res.stdout;
}

/** The objects of a multi-document YAML stream, empty documents left out. */
export function docs(yaml: string): KubeObject[] {
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

export const keyOf = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** The object of that kind and name; asserts there is one. */
export function find(objects: KubeObject[], kind: string, name: string): Loose {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name} is rendered`);
  return o;
}

/**
 * The real helm (built from test/peers/helm, else the one on PATH) with HOME and helm's cache,
 * config and data under `home`, so no user setting or repository cache takes part. Resolves with
 * the exit code, never rejects on a non-zero exit.
 */
export function runHelm(home: string, args: string[]): Promise<HoistResult> {
  const env = {
    ...process.env,
    HOME: home,
    HELM_CACHE_HOME: home,
    HELM_CONFIG_HOME: home,
    HELM_DATA_HOME: home,
  };
  return run(goPeerBinary('helm') ?? 'helm', args, { env, timeoutMs: 60_000 }).then(
    (r) => ({ code: 0, ...r }),
    (e: { exitCode: number | null; stdout: string; stderr: string }) => ({ code: e.exitCode, ...e }),
  );
}
