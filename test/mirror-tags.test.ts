// Tag list pagination through the mirror (OCI distribution-spec, "Listing Tags"): `n` and `last`
// reach the real docker-registry, and an upstream's `Link: <...>; rel="next"` comes back pointing at
// the mirror, for the same upstream and repository, however the client named the upstream (a path
// prefix or containerd's `ns`). A client that follows the Links, as the spec tells it to, reads
// every tag, page by page, and never leaves the mirror. Debian's docker-registry (distribution 2.8)
// ignores `n` and sends no Link, so the paging cases put test/helpers/tags-page-front.ts, which
// pages the registry's real tags as the spec describes, with an absolute Link, in front of it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { MEDIA_TYPES, buildImage, pushImage } from './helpers/images.js';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { removeTempDir, requirePeers, tempDir } from './helpers/peers.js';
import { fetchManifest, startRegistry, type RegistryPeer } from './helpers/registry.js';
import { startTagsPageFront, type TagsPageFront } from './helpers/tags-page-front.js';

const TIMEOUT = { timeout: 180_000 };
const TAGS = ['a', 'b', 'c', 'd', 'e'];

/** Follows `rel="next"` Links from `first`; the pages' tags and the URLs asked. */
async function readAllPages(first: string): Promise<{ pages: string[][]; urls: string[] }> {
  const pages: string[][] = [];
  const urls: string[] = [];
  let next: string | undefined = first;
  while (next !== undefined) {
    assert.ok(urls.length < 10, `more pages than tags: ${urls.join(' ')}`);
    urls.push(next);
    const res = await fetch(next);
    assert.equal(res.status, 200, `${next}: ${await res.clone().text()}`);
    pages.push(((await res.json()) as { tags: string[] }).tags);
    const link = res.headers.get('link');
    if (link === null) break;
    const target = /^<([^>]*)>;\s*rel="next"$/.exec(link)?.[1];
    assert.ok(target, `a Link the spec describes: ${link}`);
    next = new URL(target, next).href;
  }
  return { pages, urls };
}

interface Fixture {
  registry: RegistryPeer;
  front: TagsPageFront;
  mirror: MirrorHandle;
}

let fixture: Promise<Fixture> | undefined;
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/**
 * docker-registry holding team/app:a..e (one manifest), the paging front before it, and a mirror
 * of both; made on first use.
 */
function peers(t: TestContext): Promise<Fixture> | undefined {
  if (!requirePeers(t, 'docker-registry', 'skopeo', 'umoci')) return undefined;
  fixture ??= (async () => {
    const work = await tempDir('hoist-tags-');
    cleanups.push(() => removeTempDir(work));
    const registry = await startRegistry();
    cleanups.push(() => registry.stop());
    const image = await buildImage(join(work, 'app'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'a.txt', content: 'a\n' }] }],
    });
    await pushImage(image.dir, 'v1', `${registry.host}/team/app:a`);
    // The other tags name the same manifest: PUT by tag, as `docker tag` and a push would.
    const manifest = await fetchManifest(registry, 'team/app', 'a', [MEDIA_TYPES.ociManifest]);
    assert.equal(manifest.status, 200);
    for (const tag of TAGS.slice(1)) {
      const put = await fetch(`${registry.url}/v2/team/app/manifests/${tag}`, {
        method: 'PUT',
        headers: { 'content-type': manifest.contentType },
        body: manifest.body,
      });
      assert.equal(put.status, 201, await put.text());
    }
    const front = await startTagsPageFront(registry.url);
    cleanups.push(() => front.close());
    // The default upstream is neither (and refuses connections): a Link the mirror did not
    // rewrite, followed from a path-prefixed request, would land there or at the front itself.
    const mirror = await startMirror(
      {
        [registry.host]: registry.url,
        [front.host]: front.url,
        // A path segment cannot hold a ':' in an image reference: by path, a hostname-style name.
        'paged.test': front.url,
        'elsewhere.test': 'http://127.0.0.1:9',
      },
      { defaultUpstream: 'elsewhere.test' },
    );
    cleanups.push(() => mirror.close());
    return { registry, front, mirror };
  })();
  return fixture;
}

describe('mirror: tags/list pagination (n, last, Link)', () => {
  it('n and last reach the real docker-registry; it sent no Link, so none comes back', TIMEOUT, async (t) => {
    const f = await peers(t);
    if (!f) return;
    const { registry, mirror } = f;
    const res = await fetch(`${mirror.url}/v2/team/app/tags/list?n=2&last=b&ns=${registry.host}`);
    assert.equal(res.status, 200);
    // distribution 2.8 ignores both and answers every tag.
    assert.deepEqual(((await res.json()) as { tags: string[] }).tags.sort(), TAGS);
    assert.equal(res.headers.get('link'), null);
    const seen = await registry.waitForAccess((e) => e.path === '/v2/team/app/tags/list' && e.query !== '');
    assert.deepEqual(Object.fromEntries(new URLSearchParams(seen.query)), { n: '2', last: 'b' });
  });

  for (const [how, path] of [
    ['an upstream named by a path prefix', () => `/v2/paged.test/team/app/tags/list?n=2`],
    ["containerd's ns parameter", (host: string) => `/v2/team/app/tags/list?n=2&ns=${host}`],
  ] as const) {
    it(`a client following the Links reads every tag through the mirror (${how})`, TIMEOUT, async (t) => {
      const f = await peers(t);
      if (!f) return;
      const { front, mirror } = f;
      const first = `${mirror.url}${path(front.host)}`;
      const { pages, urls } = await readAllPages(first);
      assert.deepEqual(pages, [['a', 'b'], ['c', 'd'], ['e']], urls.join(' '));
      const start = new URL(first);
      for (const url of urls.slice(1).map((u) => new URL(u))) {
        assert.equal(url.origin, start.origin, 'the next page is asked of the mirror');
        assert.equal(url.pathname, start.pathname, 'for the same repository, by the same route');
        assert.equal(url.searchParams.get('n'), '2');
        assert.equal(url.searchParams.get('ns'), start.searchParams.get('ns'));
      }
      assert.deepEqual(
        urls.slice(1).map((u) => new URL(u).searchParams.get('last')),
        ['b', 'd'],
      );
      // The front saw the pages asked in turn, n and last as the client gave them.
      const asked = front.requests.filter((r) => r.includes('/tags/list')).slice(-3);
      assert.deepEqual(asked, [
        '/v2/team/app/tags/list?n=2',
        '/v2/team/app/tags/list?n=2&last=b',
        '/v2/team/app/tags/list?n=2&last=d',
      ]);
    });
  }

  it('last alone starts after it; the last page has no Link', TIMEOUT, async (t) => {
    const f = await peers(t);
    if (!f) return;
    const { mirror } = f;
    const res = await fetch(`${mirror.url}/v2/paged.test/team/app/tags/list?n=5&last=b`);
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { tags: string[] }).tags, ['c', 'd', 'e']);
    assert.equal(res.headers.get('link'), null);
    const all = await fetch(`${mirror.url}/v2/paged.test/team/app/tags/list`);
    assert.deepEqual(((await all.json()) as { tags: string[] }).tags, TAGS);
    assert.equal(all.headers.get('link'), null);
  });
});
