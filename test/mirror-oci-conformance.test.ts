// The OCI distribution-spec conformance suite (distribution-spec v1.1's Ginkgo suite, built from
// test/peers/conformance by scripts/install-peers.sh) run against the mirror in front of a real
// docker-registry. Every spec of its pull workflow must pass; test/mirror-conformance.test.ts has
// Hoist's own test for each of them.
//
// The suite's setup and teardown push and delete (POST/PUT/PATCH/DELETE), which a read-only
// mirror refuses by design (405 UNSUPPORTED), so a small method router stands where the suite
// sees "the registry": GET and HEAD go to the mirror, every other method to the upstream. The
// mirror maps the suite's repository to that upstream as its default upstream.
//
// The other workflows are not required to pass. Push checks the write API (here: the upstream's);
// content discovery needs tags/list pagination (`n`, `last`) and the referrers API, which
// distribution 2.8 does not implement and the mirror does not serve; content management checks
// deletes, which are the upstream's. What the second test asserts: through the mirror, no spec of
// any workflow fails that passes against the upstream registry itself.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { goPeerBinary, requireGoPeer } from './helpers/go-peers.js';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import {
  parseGinkgoJunit,
  runConformanceSuite,
  SPEC_PREFIX,
  startMethodRouter,
  type JunitCase,
  type MethodRouter,
} from './helpers/oci-conformance.js';
import { requirePeers } from './helpers/peers.js';
import { startRegistry, type RegistryPeer } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };
const PULL_PREFIX = `${SPEC_PREFIX}Pull `;
/** Skipped by the suite itself whenever it runs its own setup (OCI_TAG_NAME etc. unset). */
const SKIPPED_BY_DESIGN = new Set([`${PULL_PREFIX}Setup Get tag name from environment`]);
/** How many pull specs distribution-spec v1.1's suite has (01_pull_test.go), setup and teardown included. */
const PULL_SPECS = 25;

interface Setup {
  suite: string;
  registry: RegistryPeer;
  mirror: MirrorHandle;
  router: MethodRouter;
}

/** docker-registry, the mirror in front of it, and the router the suite talks to. */
async function setUp(t: TestContext): Promise<Setup | undefined> {
  if (!requirePeers(t, 'docker-registry') || !requireGoPeer(t, 'oci-conformance')) return undefined;
  const suite = goPeerBinary('oci-conformance') ?? '';
  // startRegistry enables storage.delete: the suite's teardown deletes what its setup pushed.
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const mirror = await startMirror(
    { 'up.test': registry.url },
    {
      defaultUpstream: 'up.test',
      // The suite writes behind the mirror's back (through the router, to the upstream) and reads
      // at once; its setup even re-PUTs the tag it read from tags/list. A mirror that kept a tag
      // for its TTL would answer with what it saw before, so TTL 0 makes every tag read re-check
      // upstream, as a client expects of the registry itself. (The mirror has no negative cache:
      // a miss is asked again each time, so content pushed after a 404 is found. By digest,
      // content is immutable and stays cached.) test/mirror-conformance.test.ts checks both.
      file: { tagTtlSeconds: 0 },
    },
  );
  t.after(() => mirror.close());
  const router = await startMethodRouter(t, mirror.url, registry.url);
  return { suite, registry, mirror, router };
}

function describeCase(c: JunitCase): string {
  return `${c.status}: ${c.name.slice(SPEC_PREFIX.length)}${c.failure ? `: ${c.failure}` : ''}`;
}

/** Spec names made unique by their occurrence (the suite repeats some, e.g. two blob pushes). */
function keyed(cases: JunitCase[]): Map<string, JunitCase> {
  const seen = new Map<string, number>();
  const out = new Map<string, JunitCase>();
  for (const c of cases) {
    const n = (seen.get(c.name) ?? 0) + 1;
    seen.set(c.name, n);
    out.set(`${c.name} #${n}`, c);
  }
  return out;
}

describe('OCI distribution-spec conformance suite', () => {
  it('passes every pull spec through the mirror', TIMEOUT, async (t) => {
    const s = await setUp(t);
    if (!s) return;
    const { cases } = await runConformanceSuite(t, s.suite, s.router.url, {
      namespace: 'conformance/pull',
      workflows: ['pull'],
    });
    const pull = cases.filter((c) => c.name.startsWith(PULL_PREFIX));
    const notPassed = pull.filter((c) => c.status !== 'passed' && !SKIPPED_BY_DESIGN.has(c.name));
    const mirrorErrors = s.mirror
      .logs()
      .filter((l) => typeof l.status === 'number' && l.status >= 400)
      .map((l) => JSON.stringify(l))
      .join('\n');
    assert.deepEqual(
      notPassed.map(describeCase),
      [],
      `pull specs that did not pass; requests:\n${s.router.trail()}\nmirror errors:\n${mirrorErrors}`,
    );
    assert.equal(pull.length, PULL_SPECS, `pull specs in the report:\n${pull.map((c) => c.name).join('\n')}`);
    assert.ok(
      s.router.routed.some((r) => r.to === 'mirror' && r.path.includes('/manifests/') && r.status === 200),
      'the mirror served the manifests',
    );
  });

  it('fails no spec of any workflow that the upstream registry itself passes', TIMEOUT, async (t) => {
    const s = await setUp(t);
    if (!s) return;
    const all = ['pull', 'push', 'discovery', 'management'] as const;
    // Against the upstream directly first, in its own namespace, then through the mirror.
    const direct = await runConformanceSuite(t, s.suite, s.registry.url, {
      namespace: 'conformance/direct',
      workflows: [...all],
    });
    const mirrored = await runConformanceSuite(t, s.suite, s.router.url, {
      namespace: 'conformance/mirrored',
      workflows: [...all],
    });
    const directByKey = keyed(direct.cases);
    const regressions = [...keyed(mirrored.cases)]
      .filter(([key, c]) => c.status !== 'passed' && directByKey.get(key)?.status === 'passed')
      .map(([, c]) => describeCase(c));
    assert.deepEqual(
      regressions,
      [],
      `specs that pass upstream but not through the mirror:\n${s.router.trail()}`,
    );
    // The comparison means something only if both runs ran the whole suite.
    assert.equal(mirrored.cases.length, direct.cases.length);
    assert.ok(
      [...directByKey.values()].filter((c) => c.status === 'passed').length > 50,
      `most specs pass upstream:\n${direct.output.slice(-3000)}`,
    );
  });
});

describe('parseGinkgoJunit', () => {
  it('reads names, statuses and failure messages, unescaped', () => {
    const xml =
      '<testsuites><testsuite name="s">' +
      '<testcase name="[It] A &amp; B" classname="s" status="passed" time="0.1"><system-err>x</system-err></testcase>' +
      '<testcase name="[It] C" classname="s" status="failed" time="0.1">' +
      '<failure message="Expected&#xA;    &lt;int&gt;: 400" type="failed">details</failure></testcase>' +
      '<testcase name="[It] D" classname="s" status="skipped"/>' +
      '</testsuite></testsuites>';
    assert.deepEqual(parseGinkgoJunit(xml), [
      { name: '[It] A & B', status: 'passed', failure: undefined },
      { name: '[It] C', status: 'failed', failure: 'Expected\n    <int>: 400' },
      { name: '[It] D', status: 'skipped', failure: undefined },
    ]);
  });
});
