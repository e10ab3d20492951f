// One reconcile pass against an in-memory API (the real API server is in test/controller.test.ts):
// our own writes count before the cache shows them, statuses are patched only when they change,
// pull secrets are mirrored and collected, tags resolved once per run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { KubeObject, ResourceRef } from '../kube/index.js';
import type { Credentials } from '../registry-client/index.js';
import type { Resolution } from './plan.js';
import { mirroredSecretName } from './pull-secrets.js';
import { Reconciler, type ClusterView, type KubeApi } from './reconciler.js';
import type { Node, NodePull, PrePull, PrePullSpecInput } from './types.js';

const D1 = `sha256:${'1'.repeat(64)}`;

/** Just enough of the API: objects by plural/namespace/name; merge patches of spec or status. */
class FakeApi {
  readonly objects = new Map<string, KubeObject>();
  readonly calls: string[] = [];
  private rv = 1;

  private key(ref: ResourceRef, name?: string) {
    return `${ref.plural}/${ref.namespace ?? ''}/${name ?? ref.name ?? ''}`;
  }

  api(): KubeApi {
    const self = this as FakeApi;
    return {
      async get<T extends KubeObject>(ref: ResourceRef) {
        self.calls.push(`get ${self.key(ref)}`);
        return self.objects.get(self.key(ref)) as T | undefined;
      },
      async list<T extends KubeObject>(ref: ResourceRef) {
        self.calls.push(`list ${ref.plural}`);
        const prefix = `${ref.plural}/${ref.namespace ?? ''}/`;
        const items = [...self.objects.entries()]
          .filter(([k]) => k.startsWith(prefix))
          .map(([, v]) => v as T);
        return { items, resourceVersion: String(self.rv) };
      },
      async create<T extends KubeObject>(ref: ResourceRef, obj: T) {
        const key = self.key(ref, obj.metadata.name);
        self.calls.push(`create ${key}`);
        const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++self.rv) } };
        self.objects.set(key, stored);
        return stored as T;
      },
      async replace<T extends KubeObject>(ref: ResourceRef, obj: T) {
        const key = self.key(ref, obj.metadata.name);
        self.calls.push(`replace ${key}`);
        self.objects.set(key, obj);
        return obj;
      },
      async patch<T extends KubeObject>(ref: ResourceRef, patch: unknown) {
        const key = self.key(ref);
        self.calls.push(`patch ${key}${ref.subresource ? `/${ref.subresource}` : ''}`);
        const current = self.objects.get(key) ?? { metadata: { name: ref.name ?? '' } };
        const merged = { ...current, ...(patch as object) } as T;
        self.objects.set(key, merged);
        return merged;
      },
      async delete(ref: ResourceRef) {
        self.calls.push(`delete ${self.key(ref)}`);
        self.objects.delete(self.key(ref));
      },
    } as KubeApi;
  }
}

class FakeResolver {
  readonly calls: Array<{ image: string; credentials: ReadonlyMap<string, Credentials> }> = [];
  answer: (image: string) => Resolution = () => ({ digest: D1 });
  async resolve(image: string, credentials: ReadonlyMap<string, Credentials>): Promise<Resolution> {
    this.calls.push({ image, credentials });
    return this.answer(image);
  }
}

function setup(now = { t: Date.parse('2026-12-01T10:00:00Z') }) {
  const fake = new FakeApi();
  const resolver = new FakeResolver();
  const reconciler = new Reconciler({
    api: fake.api(),
    namespace: 'hoist-system',
    resolver,
    logger: pino({ enabled: false }),
    resyncMs: 300_000,
    now: () => now.t,
  });
  return { fake, resolver, reconciler, now };
}

const nodes: Node[] = ['n1', 'n2', 'n3'].map((name) => ({ metadata: { name, uid: `uid-${name}` } }));
const prePull = (spec: PrePullSpecInput, status?: PrePull['status']): PrePull => ({
  metadata: { name: 'p', namespace: 'ml', uid: 'uid-p', generation: 1, resourceVersion: '1' },
  spec,
  ...(status ? { status } : {}),
});
const signal = new AbortController().signal;

describe('Reconciler', () => {
  it('counts its own NodePull writes before the cache shows them: never past maxConcurrentNodes', async () => {
    const { fake, reconciler } = setup();
    const view: ClusterView = {
      prePulls: [prePull({ images: ['a:1'], maxConcurrentNodes: 1 })],
      nodes,
      nodePulls: [],
    };
    await reconciler.reconcile(view, signal);
    await reconciler.reconcile(view, signal); // the informer has not caught up
    // One create per node, none repeated; only n1 is given work (the others wait, empty).
    const created = fake.calls.filter((c) => c.startsWith('create nodepulls'));
    assert.deepEqual(created, ['create nodepulls//n1', 'create nodepulls//n2', 'create nodepulls//n3']);
    const withWork = [...fake.objects.entries()]
      .filter(([k, v]) => k.startsWith('nodepulls/') && (v as unknown as NodePull).spec.images.length > 0)
      .map(([k]) => k);
    assert.deepEqual(withWork, ['nodepulls//n1']);
    assert.equal(
      fake.calls.filter((c) => c.startsWith('patch nodepulls')).length,
      0,
      'no rewrite of what it just wrote',
    );
    const np = fake.objects.get('nodepulls//n1') as unknown as NodePull;
    assert.deepEqual(np.metadata.ownerReferences, [
      { apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'uid-n1' },
    ]);
    assert.equal(np.spec.images[0]!.digest, D1);
  });

  it('patches status only when it changes, removing keys it no longer sets', async () => {
    const { fake, reconciler } = setup();
    const first: ClusterView = { prePulls: [prePull({ images: ['a:1'] })], nodes: [], nodePulls: [] };
    await reconciler.reconcile(first, signal);
    const stored = fake.objects.get('prepulls/ml/p') as unknown as { status: Record<string, unknown> };
    assert.equal(stored.status.observedGeneration, 1);
    assert.equal(stored.status.nextScheduleTime, null, 'absent keys are sent as null (merge patch)');
    // Same state, cache not caught up: no second write.
    await reconciler.reconcile(first, signal);
    assert.equal(fake.calls.filter((c) => c.endsWith('/status')).length, 1);
  });

  it('resolves tags once per run, with the mirrored pull secret credentials; collects the secret when the PrePull goes', async () => {
    const { fake, resolver, reconciler } = setup();
    const auth = Buffer.from('user:pass').toString('base64');
    await fake.api().create({ group: '', version: 'v1', plural: 'secrets', namespace: 'ml' }, {
      metadata: { name: 'regcred', namespace: 'ml' },
      type: 'kubernetes.io/dockerconfigjson',
      data: {
        '.dockerconfigjson': Buffer.from(
          JSON.stringify({ auths: { 'registry.example': { auth } } }),
        ).toString('base64'),
      },
    } as KubeObject);
    const p = prePull({
      images: ['registry.example/app:1'],
      imagePullSecrets: [{ name: 'regcred' }],
      maxConcurrentNodes: 3,
    });
    const view: ClusterView = { prePulls: [p], nodes, nodePulls: [] };
    await reconciler.reconcile(view, signal);
    await reconciler.reconcile(view, signal);
    assert.equal(resolver.calls.length, 1, 'the second pass reuses the run (status not yet in the cache)');
    assert.deepEqual(resolver.calls[0]!.credentials.get('registry.example'), {
      username: 'user',
      password: 'pass',
    });
    const name = mirroredSecretName(p);
    const mirrored = fake.objects.get(`secrets/hoist-system/${name}`) as unknown as {
      data: Record<string, string>;
    };
    assert.match(Buffer.from(mirrored.data['.dockerconfigjson']!, 'base64').toString(), /registry\.example/);
    const np = fake.objects.get('nodepulls//n2') as unknown as NodePull;
    assert.deepEqual(np.spec.images[0]!.pullSecrets, [name]);

    await reconciler.reconcile({ prePulls: [], nodes, nodePulls: [] }, signal);
    assert.equal(fake.objects.has(`secrets/hoist-system/${name}`), false);
    assert.equal(fake.objects.has('secrets/ml/regcred'), true, "the PrePull's own secret is never touched");
  });

  it('retries a resolution that failed for a passing reason, later', async () => {
    const { resolver, reconciler, now } = setup();
    resolver.answer = () => ({ resolveError: 'UPSTREAM_UNAVAILABLE: cannot reach registry.example' });
    const view: ClusterView = {
      prePulls: [prePull({ images: ['registry.example/app:1'] })],
      nodes: [],
      nodePulls: [],
    };
    await reconciler.reconcile(view, signal);
    assert.equal(resolver.calls.length, 1);
    resolver.answer = () => ({ digest: D1 });
    // The status now records the run; nothing is due until the retry time.
    const ran: ClusterView = {
      ...view,
      prePulls: [
        prePull(
          { images: ['registry.example/app:1'] },
          {
            observedGeneration: 1,
            images: [
              {
                image: 'registry.example/app:1',
                resolveError: 'x',
                desired: 0,
                pulling: 0,
                succeeded: 0,
                failed: 0,
              },
            ],
          },
        ),
      ],
    };
    await reconciler.reconcile(ran, signal);
    assert.equal(resolver.calls.length, 1);
    now.t += 31_000;
    await reconciler.reconcile(ran, signal);
    assert.equal(resolver.calls.length, 2);
  });

  it('runs a missed scheduled run once, records it, and wakes at the next one', async () => {
    const { fake, resolver, reconciler } = setup();
    const spec = { images: ['registry.example/app:1'], schedule: '0 3 * * *' };
    const status = { observedGeneration: 1, lastScheduleTime: '2026-11-28T03:00:00Z' };
    const result = await reconciler.reconcile(
      { prePulls: [prePull(spec, status)], nodes: [], nodePulls: [] },
      signal,
    );
    assert.equal(resolver.calls.length, 1);
    assert.equal(result.wakeAt?.toISOString(), '2026-12-02T03:00:00.000Z');
    const stored = fake.objects.get('prepulls/ml/p') as unknown as PrePull;
    assert.equal(stored.status?.lastScheduleTime, '2026-12-01T03:00:00Z');
    assert.equal(stored.status?.nextScheduleTime, '2026-12-02T03:00:00Z');
    await reconciler.reconcile({ prePulls: [stored], nodes: [], nodePulls: [] }, signal);
    assert.equal(resolver.calls.length, 1, 'once, not once per missed day');
  });
});
