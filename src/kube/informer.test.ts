import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { describe, it } from 'node:test';
import { KubeConnectionError, KubeError } from './errors.js';
import { Informer, type ListWatchClient } from './informer.js';
import type { ChangeType, KubeObject, ResourceRef, WatchEvent } from './types.js';

const REF: ResourceRef = { group: '', version: 'v1', plural: 'configmaps', namespace: 'ns' };

function cm(name: string, rv: string, data: Record<string, string> = {}): KubeObject {
  return { metadata: { name, namespace: 'ns', resourceVersion: rv }, data };
}

type ListStep = { items: KubeObject[]; resourceVersion: string } | Error;
/** A watch: its events, then how it ends (normally, or with an error); 'hang' waits for the abort. */
type WatchStep = { events: WatchEvent<KubeObject>[]; end?: Error | 'hang' };

/** A scripted client: each list/watch call takes the next step and records its arguments. */
class FakeClient implements ListWatchClient {
  readonly calls: string[] = [];
  readonly idle = new EventEmitter();
  constructor(
    private readonly lists: ListStep[],
    private readonly watches: WatchStep[],
  ) {}

  async list<T extends KubeObject>(): Promise<{ items: T[]; resourceVersion: string }> {
    this.calls.push('list');
    const step = this.lists.shift();
    if (step === undefined) throw new Error('unexpected list');
    if (step instanceof Error) throw step;
    return step as { items: T[]; resourceVersion: string };
  }

  watch<T extends KubeObject>(
    _ref: ResourceRef,
    opts: { resourceVersion: string; signal: AbortSignal },
  ): AsyncIterable<WatchEvent<T>> {
    this.calls.push(`watch@${opts.resourceVersion}`);
    const step = this.watches.shift() ?? { events: [], end: 'hang' as const };
    const idle = this.idle;
    return (async function* () {
      for (const ev of step.events) yield ev as WatchEvent<T>;
      if (step.end === 'hang') {
        idle.emit('hang');
        if (!opts.signal.aborted) await once(opts.signal, 'abort');
        return;
      }
      if (step.end) throw step.end;
    })();
  }
}

function record(informer: Informer<KubeObject>): string[] {
  const seen: string[] = [];
  informer.on('change', (type: ChangeType, obj, old) =>
    seen.push(
      `${type} ${obj.metadata.name}@${obj.metadata.resourceVersion}${old ? ` (was ${old.metadata.resourceVersion})` : ''}`,
    ),
  );
  return seen;
}

const gone = () => new KubeError(410, 'Gone', 'too old resource version');

describe('Informer', () => {
  it('lists, watches from the list version, follows bookmarks and reconnects from the last version', async () => {
    const client = new FakeClient(
      [{ items: [cm('a', '1')], resourceVersion: '10' }],
      [
        {
          events: [
            { type: 'ADDED', object: cm('b', '11') },
            { type: 'MODIFIED', object: cm('a', '12', { k: 'v' }) },
            { type: 'BOOKMARK', object: { metadata: { name: '', resourceVersion: '15' } } },
          ],
        },
        { events: [{ type: 'DELETED', object: cm('b', '16') }], end: 'hang' },
      ],
    );
    const sleeps: number[] = [];
    const informer = new Informer(client, REF, {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    const seen = record(informer);
    const ac = new AbortController();
    informer.start(ac.signal);
    await informer.synced();
    await once(client.idle, 'hang');
    ac.abort();
    assert.deepEqual(client.calls, ['list', 'watch@10', 'watch@15']);
    assert.deepEqual(seen, ['ADDED a@1', 'ADDED b@11', 'MODIFIED a@12 (was 1)', 'DELETED b@16 (was 11)']);
    assert.deepEqual(informer.get('ns/a')?.data, { k: 'v' });
    assert.equal(informer.get('ns/b'), undefined);
    assert.equal(informer.list().length, 1);
    assert.deepEqual(sleeps, []);
  });

  it('lists again on 410 Gone and reports what changed while disconnected', async () => {
    const client = new FakeClient(
      [
        { items: [cm('a', '1'), cm('b', '2'), cm('c', '3')], resourceVersion: '3' },
        { items: [cm('a', '1'), cm('b', '7'), cm('d', '8')], resourceVersion: '9' },
      ],
      [
        {
          events: [{ type: 'BOOKMARK', object: { metadata: { name: '', resourceVersion: '4' } } }],
          end: gone(),
        },
      ],
    );
    const sleeps: number[] = [];
    const informer = new Informer(client, REF, {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    const seen = record(informer);
    const ac = new AbortController();
    informer.start(ac.signal);
    await once(client.idle, 'hang');
    ac.abort();
    assert.deepEqual(client.calls, ['list', 'watch@3', 'list', 'watch@9']);
    assert.deepEqual(seen.slice(3), ['MODIFIED b@7 (was 2)', 'ADDED d@8', 'DELETED c@3 (was 3)']);
    assert.deepEqual(
      informer
        .list()
        .map((o) => o.metadata.name)
        .sort(),
      ['a', 'b', 'd'],
    );
    assert.deepEqual(sleeps, [], 'a 410 after events re-lists at once');
  });

  it('backs off exponentially on errors, resets after a success, and keeps the cache meanwhile', async () => {
    const down = () => new KubeConnectionError('KUBE_UNREACHABLE', 'connection refused');
    const client = new FakeClient(
      [
        down(),
        down(),
        { items: [cm('a', '1')], resourceVersion: '5' },
        { items: [cm('a', '6')], resourceVersion: '9' },
      ],
      [
        { events: [], end: down() },
        { events: [], end: down() },
        { events: [{ type: 'MODIFIED', object: cm('a', '6') }], end: down() },
        { events: [], end: gone() },
      ],
    );
    const sleeps: number[] = [];
    const informer = new Informer(client, REF, {
      backoff: { initialMs: 100, maxMs: 1000 },
      random: () => 1,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    const ac = new AbortController();
    informer.start(ac.signal);
    await informer.synced();
    await once(client.idle, 'hang');
    ac.abort();
    // Two failed lists (100, 200); a list resets; two failed watches (100, 200); a watch that
    // delivered an event resets before it fails (100); its 410 comes after an event: no wait.
    assert.deepEqual(sleeps, [100, 200, 100, 200, 100]);
    assert.deepEqual(client.calls, [
      'list',
      'list',
      'list',
      'watch@5',
      'watch@5',
      'watch@5',
      'watch@6',
      'list',
      'watch@9',
    ]);
    assert.equal(informer.get('ns/a')?.metadata.resourceVersion, '6');
  });

  it('backs off a 410 that comes right after a list, and rejects synced() when aborted first', async () => {
    const client = new FakeClient(
      [
        { items: [], resourceVersion: '1' },
        { items: [], resourceVersion: '1' },
      ],
      [{ events: [], end: gone() }],
    );
    const sleeps: number[] = [];
    const informer = new Informer(client, REF, {
      backoff: { initialMs: 50, maxMs: 50 },
      random: () => 1,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    const ac = new AbortController();
    informer.start(ac.signal);
    await once(client.idle, 'hang');
    ac.abort();
    assert.deepEqual(client.calls, ['list', 'watch@1', 'list', 'watch@1']);
    assert.deepEqual(sleeps, [50]);

    const never = new Informer(new FakeClient([], []), REF, { sleep: () => new Promise(() => {}) });
    const ac2 = new AbortController();
    ac2.abort();
    never.start(ac2.signal);
    await assert.rejects(never.synced(), { name: 'AbortError' });
  });

  it('keeps going when a listener throws', async () => {
    const client = new FakeClient([{ items: [cm('a', '1'), cm('b', '1')], resourceVersion: '1' }], []);
    const informer = new Informer(client, REF);
    const names: string[] = [];
    informer.on('change', () => {
      throw new Error('listener bug');
    });
    informer.on('change', (_t, obj) => names.push(obj.metadata.name));
    const ac = new AbortController();
    informer.start(ac.signal);
    await once(client.idle, 'hang');
    ac.abort();
    assert.deepEqual(names, ['a', 'b']);
  });

  it('applies the transform to listed and watched objects before caching and emitting them', async () => {
    const client = new FakeClient(
      [{ items: [cm('a', '1', { big: 'x'.repeat(1000) })], resourceVersion: '10' }],
      [{ events: [{ type: 'ADDED', object: cm('b', '11', { big: 'y' }) }], end: 'hang' }],
    );
    const informer = new Informer(client, REF, {
      transform: (o) => ({ metadata: o.metadata, kept: Object.keys(o.data as object).length }),
    });
    const emitted: unknown[] = [];
    informer.on('change', (_t, obj) => emitted.push(obj));
    const ac = new AbortController();
    informer.start(ac.signal);
    await once(client.idle, 'hang');
    ac.abort();
    assert.deepEqual(informer.get('ns/a'), {
      metadata: { name: 'a', namespace: 'ns', resourceVersion: '1' },
      kept: 1,
    });
    assert.equal(informer.get('ns/b')?.data, undefined);
    assert.deepEqual(
      emitted.map((o) => Object.keys(o as object)),
      [
        ['metadata', 'kept'],
        ['metadata', 'kept'],
      ],
    );
  });
});
