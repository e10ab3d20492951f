// src/kube against the real kube-apiserver (with etcd, TLS, token auth and RBAC) built by
// scripts/install-peers.sh: configuration with TLS verified, CRUD with optimistic concurrency,
// informers (including a real 410 Gone and the re-list after it), Lease leader election between
// two electors, and RBAC refusals as KubeError Forbidden.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it, type TestContext } from 'node:test';
import {
  Informer,
  KubeClient,
  KubeConnectionError,
  KubeError,
  LeaderElector,
  loadKubeConfig,
  type ChangeType,
  type KubeObject,
  type Lease,
  type ListWatchClient,
  type ResourceRef,
} from '../src/kube/index.js';
import { goPeerBinary, requireGoPeer } from './helpers/go-peers.js';
import { startKubeApiServer, type KubeApiServer } from './helpers/kube.js';

// A bound for failures only: each wait below ends on an event long before it.
const EVENT_TIMEOUT_MS = 30_000;
const TIMEOUT = { timeout: 120_000 };

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

const configMaps = (namespace: string): ResourceRef => ({
  group: '',
  version: 'v1',
  plural: 'configmaps',
  namespace,
});

/** Resolves with the first value `check` returns that is not undefined, called at each change. */
function waitFor<T>(
  what: string,
  subscribe: (wake: () => void) => void,
  check: () => T | undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what}: not seen within ${EVENT_TIMEOUT_MS} ms`)),
      EVENT_TIMEOUT_MS,
    );
    let done = false;
    const wake = () => {
      if (done) return;
      const v = check();
      if (v === undefined) return;
      done = true;
      clearTimeout(timer);
      resolve(v);
    };
    subscribe(wake);
    wake();
  });
}

/**
 * Compacts etcd's history up to its current revision through etcd's JSON gateway (found from the
 * etcd process's --listen-client-urls), as kube-apiserver does every few minutes.
 */
async function compactEtcd(kube: KubeApiServer): Promise<void> {
  const argv = readFileSync(`/proc/${kube.pids.etcd}/cmdline`, 'utf8').split('\0');
  const flag = argv.indexOf('--listen-client-urls');
  const etcdUrl = (
    flag >= 0 ? argv[flag + 1] : argv.find((a) => a.startsWith('--listen-client-urls='))?.split('=')[1]
  )?.split(',')[0];
  assert.ok(etcdUrl, `no --listen-client-urls in etcd's command line: ${argv.join(' ')}`);
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    const text = await res.text();
    assert.equal(res.status, 200, `${path}: ${res.status} ${text}`);
    return JSON.parse(text) as { header?: { revision?: string } };
  };
  const { header } = await post('/v3/kv/range', { key: Buffer.from('/').toString('base64') });
  assert.ok(header?.revision, 'etcd gave no revision');
  await post('/v3/kv/compaction', { revision: header.revision, physical: true });
}

describe('src/kube against kube-apiserver', () => {
  let api: KubeApiServer | undefined;
  let client: KubeClient;

  before(async () => {
    if (!goPeerBinary('kube-apiserver') || !goPeerBinary('etcd') || !goPeerBinary('kubectl')) return;
    api = await startKubeApiServer();
    client = new KubeClient(await loadKubeConfig({ kubeconfig: api.adminKubeconfig }), {
      userAgent: 'hoist-test',
    });
  });
  after(async () => {
    client?.close();
    await api?.stop();
  });

  /** The shared server, or false when the peers are not built (skips, or throws under CI=true). */
  function server(t: TestContext): KubeApiServer | false {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return false;
    assert.ok(api, 'kube-apiserver did not start');
    return api;
  }

  async function namespace(name: string): Promise<string> {
    await client.create({ group: '', version: 'v1', plural: 'namespaces' }, { metadata: { name } });
    return name;
  }

  it('loads the admin kubeconfig and talks TLS verified against its CA', TIMEOUT, async (t) => {
    const kube = server(t);
    if (!kube) return;
    const config = await loadKubeConfig({ kubeconfig: kube.adminKubeconfig });
    assert.equal(config.server, kube.url);
    assert.equal(config.caPem?.trim(), kube.caPem.trim());
    assert.equal(config.insecureSkipTlsVerify, undefined);
    const version = await client.request<{ gitVersion?: string }>('GET', '/version');
    assert.match(version.gitVersion ?? '', /^v1\./);

    // Without the CA the same server is refused: verification is really on.
    const { caPem: _ca, ...noCa } = config;
    const untrusting = new KubeClient(noCa);
    t.after(() => untrusting.close());
    await assert.rejects(untrusting.request('GET', '/version'), (err: unknown) => {
      assert.ok(err instanceof KubeConnectionError, String(err));
      assert.equal(err.code, 'KUBE_UNREACHABLE');
      return true;
    });
  });

  it(
    'creates, reads, replaces (409 on a stale version), patches, lists and deletes ConfigMaps',
    TIMEOUT,
    async (t) => {
      if (!server(t)) return;
      const ns = await namespace('kube-crud');
      const ref = configMaps(ns);
      const created = await client.create<ConfigMap>(ref, {
        metadata: { name: 'one', labels: { app: 'hoist' } },
        data: { k: 'v1' },
      });
      assert.equal(created.metadata.namespace, ns);
      assert.ok(created.metadata.uid && created.metadata.resourceVersion);
      await assert.rejects(client.create(ref, { metadata: { name: 'one' } }), {
        name: 'KubeError',
        status: 409,
        reason: 'AlreadyExists',
      });

      const got = await client.get<ConfigMap>({ ...ref, name: 'one' });
      assert.deepEqual(got?.data, { k: 'v1' });

      const replaced = await client.replace<ConfigMap>(
        { ...ref, name: 'one' },
        { ...created, data: { k: 'v2' } },
      );
      assert.deepEqual(replaced.data, { k: 'v2' });
      // `created` now carries a stale resourceVersion.
      await assert.rejects(
        client.replace({ ...ref, name: 'one' }, { ...created, data: { k: 'lost' } }),
        (err: unknown) => {
          assert.ok(err instanceof KubeError);
          assert.equal(err.status, 409);
          assert.equal(err.reason, 'Conflict');
          assert.equal(err.code, 'CONFLICT');
          return true;
        },
      );

      const merged = await client.patch<ConfigMap>(
        { ...ref, name: 'one' },
        { data: { extra: 'x' } },
        'merge',
      );
      assert.deepEqual(merged.data, { k: 'v2', extra: 'x' });
      const jsonPatched = await client.patch<ConfigMap>(
        { ...ref, name: 'one' },
        [{ op: 'remove', path: '/data/extra' }],
        'json',
      );
      assert.deepEqual(jsonPatched.data, { k: 'v2' });
      const applied = await client.patch<ConfigMap>(
        { ...ref, name: 'two' },
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'two', namespace: ns }, data: { a: 'b' } },
        { apply: { fieldManager: 'hoist-test' } },
      );
      assert.deepEqual(applied.data, { a: 'b' });
      await assert.rejects(client.patch({ ...ref, name: 'one' }, { data: { k: 5 } }, 'merge'), {
        status: 422,
        reason: 'Invalid',
        code: 'INVALID',
      });

      const labelled = await client.list<ConfigMap>(ref, { labelSelector: 'app=hoist' });
      assert.deepEqual(
        labelled.items.map((i) => [i.kind, i.metadata.name]),
        [['ConfigMap', 'one']],
      );
      assert.match(labelled.resourceVersion, /^\d+$/);

      await client.delete({ ...ref, name: 'one' }, { preconditions: { uid: created.metadata.uid } });
      assert.equal(await client.get({ ...ref, name: 'one' }), undefined);
      await client.delete({ ...ref, name: 'one' }); // already gone: fine
      assert.equal(await client.get({ ...ref, name: 'missing' }), undefined);
    },
  );

  it('lists more than one page', TIMEOUT, async (t) => {
    if (!server(t)) return;
    const ns = await namespace('kube-pages');
    const ref = configMaps(ns);
    const names = Array.from({ length: 510 }, (_, i) => `cm-${String(i).padStart(3, '0')}`);
    for (let i = 0; i < names.length; i += 30) {
      await Promise.all(names.slice(i, i + 30).map((name) => client.create(ref, { metadata: { name } })));
    }
    const listed = await client.list(ref);
    // the namespace also holds kube-root-ca.crt only when a controller-manager runs: none here
    assert.deepEqual(
      listed.items.map((i) => i.metadata.name).filter((n) => n.startsWith('cm-')),
      names,
    );
  });

  it('informer: sees ADDED, MODIFIED and DELETED', TIMEOUT, async (t) => {
    if (!server(t)) return;
    const ns = await namespace('kube-informer');
    const ref = configMaps(ns);
    await client.create(ref, { metadata: { name: 'before' } });
    const informer = new Informer<ConfigMap>(client, ref);
    const changes: string[] = [];
    const wakers: Array<() => void> = [];
    informer.on('change', (type: ChangeType, obj, old) => {
      changes.push(
        `${type} ${obj.metadata.name}${type === 'MODIFIED' ? ` ${old?.data?.k ?? '-'}->${obj.data?.k}` : ''}`,
      );
      for (const w of wakers) w();
    });
    const ac = new AbortController();
    t.after(() => ac.abort());
    informer.start(ac.signal);
    await informer.synced();
    assert.ok(informer.get(`${ns}/before`));
    const seen = (line: string) =>
      waitFor(
        line,
        (w) => wakers.push(w),
        () => (changes.includes(line) ? true : undefined),
      );

    await client.create(ref, { metadata: { name: 'x' }, data: { k: '1' } });
    await seen('ADDED x');
    await client.patch({ ...ref, name: 'x' }, { data: { k: '2' } }, 'merge');
    await seen('MODIFIED x 1->2');
    assert.equal(informer.get(`${ns}/x`)?.data?.k, '2');
    await client.delete({ ...ref, name: 'x' });
    await seen('DELETED x');
    assert.equal(informer.get(`${ns}/x`), undefined);
    assert.deepEqual(changes, ['ADDED before', 'ADDED x', 'MODIFIED x 1->2', 'DELETED x']);
  });

  it(
    'a watch from a compacted resourceVersion gets 410 Gone; the informer lists again',
    TIMEOUT,
    async (t) => {
      const kube = server(t);
      if (!kube) return;
      // Events have no watch cache (kube-apiserver's default), so their watches read etcd's history,
      // which compaction really removes.
      const ns = await namespace('kube-gone');
      const ref: ResourceRef = { group: '', version: 'v1', plural: 'events', namespace: ns };
      const event = (name: string) => ({
        metadata: { name },
        involvedObject: { kind: 'ConfigMap', namespace: ns, name: 'x' },
        reason: 'Test',
        message: name,
        type: 'Normal',
      });
      const old = await client.create<KubeObject>(ref, event('stays'));
      await client.create(ref, event('goes'));
      // A watch from version V reads etcd from V + 1: write once more so V + 1 is compacted too.
      await client.create(configMaps(ns), { metadata: { name: 'one-more-revision' } });
      await compactEtcd(kube);
      const ac = new AbortController();
      t.after(() => ac.abort());

      const tooOld = old.metadata.resourceVersion!;
      await assert.rejects(
        (async () => {
          for await (const _ev of client.watch(ref, {
            resourceVersion: tooOld,
            signal: ac.signal,
            timeoutSeconds: 30,
          })) {
            // a compacted version yields no event before the error
          }
        })(),
        (err: unknown) => {
          assert.ok(err instanceof KubeError, String(err));
          assert.equal(err.status, 410);
          assert.equal(err.reason, 'Gone');
          assert.equal(err.code, 'GONE');
          return true;
        },
      );

      // An informer whose first watch starts from that compacted version: the real 410 makes it
      // list again, and what changed between its two lists comes out as changes.
      let lists = 0;
      let watches = 0;
      const fromCompacted: ListWatchClient = {
        list: (r, o) => {
          lists++;
          return client.list(r, o);
        },
        watch: <T extends KubeObject>(r: ResourceRef, o: Parameters<KubeClient['watch']>[1]) => {
          watches++;
          if (watches > 1) return client.watch<T>(r, o);
          return (async function* () {
            // While "disconnected": one object goes, one comes.
            await client.delete({ ...ref, name: 'goes' });
            await client.create(ref, event('new'));
            yield* client.watch<T>(r, { ...o, resourceVersion: tooOld });
          })();
        },
      };
      const informer = new Informer<KubeObject>(fromCompacted, ref);
      const changes: string[] = [];
      const wakers: Array<() => void> = [];
      informer.on('change', (type, obj) => {
        changes.push(`${type} ${obj.metadata.name}`);
        for (const w of wakers) w();
      });
      informer.start(ac.signal);
      await informer.synced();
      await waitFor(
        'the re-list after 410',
        (w) => wakers.push(w),
        () => (changes.length >= 4 ? true : undefined),
      );
      assert.deepEqual(changes.slice(0, 2).sort(), ['ADDED goes', 'ADDED stays']);
      assert.deepEqual(changes.slice(2).sort(), ['ADDED new', 'DELETED goes']);
      assert.equal(lists, 2);
      assert.deepEqual(
        informer
          .list()
          .map((o) => o.metadata.name)
          .sort(),
        ['new', 'stays'],
      );
      // And it watches on from the new list: a later change arrives by watch, with no third list.
      await client.create(ref, event('later'));
      await waitFor(
        'ADDED later',
        (w) => wakers.push(w),
        () => (changes.includes('ADDED later') ? true : undefined),
      );
      assert.equal(lists, 2);
    },
  );

  it(
    'two electors on one Lease: exactly one leads; aborting it hands over to the other',
    TIMEOUT,
    async (t) => {
      if (!server(t)) return;
      const ns = await namespace('kube-lease');
      const timings = { leaseDurationSeconds: 6, renewDeadlineSeconds: 4, retryPeriodSeconds: 1 };
      const wakers: Array<() => void> = [];
      const wake = () => wakers.forEach((w) => w());
      type Id = 'a' | 'b';
      const leading = new Set<Id>();
      const overlaps: string[] = [];
      const seenLeader: Record<string, string[]> = { a: [], b: [] };
      const controllers = { a: new AbortController(), b: new AbortController() };
      t.after(() => {
        controllers.a.abort();
        controllers.b.abort();
      });
      const electors = {
        a: new LeaderElector(client, { namespace: ns, name: 'hoist', identity: 'a', ...timings }),
        b: new LeaderElector(client, { namespace: ns, name: 'hoist', identity: 'b', ...timings }),
      };
      const runs = (['a', 'b'] as const).map((id) =>
        electors[id].run(controllers[id].signal, {
          onStartedLeading: (leaderSignal) => {
            if (leading.size > 0) overlaps.push(`${id} leads while ${[...leading].join()} does`);
            leading.add(id);
            leaderSignal.addEventListener('abort', () => leading.delete(id));
            wake();
          },
          onNewLeader: (leader) => {
            seenLeader[id]!.push(leader);
            wake();
          },
        }),
      );
      const first: Id = await waitFor(
        'a leader',
        (w) => wakers.push(w),
        () => [...leading][0],
      );
      const other: Id = first === 'a' ? 'b' : 'a';
      // The other has read the Lease and knows who leads; it must stay a follower while the leader
      // renews: wait for two renewals of the Lease.
      await waitFor(
        `${other} sees ${first}`,
        (w) => wakers.push(w),
        () => (seenLeader[other]!.includes(first) ? true : undefined),
      );
      const leaseRef: ResourceRef = {
        group: 'coordination.k8s.io',
        version: 'v1',
        plural: 'leases',
        namespace: ns,
        name: 'hoist',
      };
      const lease0 = await client.get<Lease>(leaseRef);
      assert.equal(lease0?.spec?.holderIdentity, first);
      const watchAc = new AbortController();
      let renewals = 0;
      for await (const ev of client.watch<Lease>(leaseRef, {
        resourceVersion: lease0!.metadata.resourceVersion!,
        signal: watchAc.signal,
        timeoutSeconds: 30,
      })) {
        if (ev.type === 'MODIFIED' && ev.object.spec?.holderIdentity === first && ++renewals === 2) break;
      }
      assert.equal(renewals, 2);
      assert.deepEqual([...leading], [first]);
      assert.equal(electors[first].isLeader(), true);
      assert.equal(electors[other].isLeader(), false);

      // The leader steps down: it releases the Lease and the other takes it over without waiting
      // for the lease to expire.
      controllers[first].abort();
      await runs[first === 'a' ? 0 : 1];
      assert.equal(electors[first].isLeader(), false);
      await waitFor(
        `${other} leads`,
        (w) => wakers.push(w),
        () => (leading.has(other) ? true : undefined),
      );
      const lease1 = await client.get<Lease>(leaseRef);
      assert.equal(lease1?.spec?.holderIdentity, other);
      assert.equal(lease1?.spec?.leaseTransitions, 1);
      controllers[other].abort();
      await Promise.all(runs);
      const released = await client.get<Lease>(leaseRef);
      assert.equal(released?.spec?.holderIdentity ?? '', '');
      assert.deepEqual(overlaps, []);
    },
  );

  it('an RBAC refusal surfaces as KubeError Forbidden', TIMEOUT, async (t) => {
    const kube = server(t);
    if (!kube) return;
    const path = await kube.serviceAccountKubeconfig('kube-rbac', 'nobody');
    const sa = new KubeClient(await loadKubeConfig({ kubeconfig: path }));
    t.after(() => sa.close());
    const forbidden = (err: unknown) => {
      assert.ok(err instanceof KubeError, String(err));
      assert.equal(err.status, 403);
      assert.equal(err.reason, 'Forbidden');
      assert.equal(err.code, 'FORBIDDEN');
      assert.match(err.message, /system:serviceaccount:kube-rbac:nobody/);
      return true;
    };
    await assert.rejects(sa.list(configMaps('kube-system')), forbidden);
    // A refused get is an error, never "absent".
    await assert.rejects(sa.get({ ...configMaps('kube-system'), name: 'x' }), forbidden);
    await assert.rejects(sa.create(configMaps('kube-rbac'), { metadata: { name: 'x' } }), forbidden);
  });
});
