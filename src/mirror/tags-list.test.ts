import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mirrorTagsLink, upstreamTagsQuery } from './tags-list.js';

const client = (target: string) => new URL(target, 'http://mirror.invalid');

describe('tags/list pagination through the mirror', () => {
  it('passes n and last to the upstream, nothing else', () => {
    assert.equal(upstreamTagsQuery(new URLSearchParams('ns=ghcr.io&last=v2&x=1&n=2')), '?n=2&last=v2');
    assert.equal(upstreamTagsQuery(new URLSearchParams('ns=ghcr.io')), '');
  });

  it("points a relative Link at the client's own path", () => {
    assert.equal(
      mirrorTagsLink(
        '</v2/org/app/tags/list?last=v2&n=2>; rel="next"',
        client('/v2/ghcr.io/org/app/tags/list?n=2'),
      ),
      '</v2/ghcr.io/org/app/tags/list?n=2&last=v2>; rel="next"',
    );
  });

  it('rewrites an absolute upstream URL and keeps the client ns', () => {
    assert.equal(
      mirrorTagsLink(
        '<https://registry-1.docker.io/v2/library/busybox/tags/list?n=2&last=1.36>; rel="next"',
        client('/v2/busybox/tags/list?ns=docker.io&n=2'),
      ),
      '</v2/busybox/tags/list?n=2&last=1.36&ns=docker.io>; rel="next"',
    );
  });

  it('keeps every link and its parameters, commas in quotes included', () => {
    assert.equal(
      mirrorTagsLink(
        '<https://up.test/v2/a/tags/list?n=1&last=b>; rel="next"; title="x, y", </v2/a/tags/list?n=1>;rel=first',
        client('/v2/a/tags/list'),
      ),
      '</v2/a/tags/list?n=1&last=b>; rel="next"; title="x, y", </v2/a/tags/list?n=1>; rel=first',
    );
  });

  it('drops a value that is not a Link list', () => {
    assert.equal(mirrorTagsLink('https://up.test/v2/a/tags/list?n=1', client('/v2/a/tags/list')), undefined);
    assert.equal(mirrorTagsLink('<unterminated', client('/v2/a/tags/list')), undefined);
    assert.equal(mirrorTagsLink('', client('/v2/a/tags/list')), undefined);
  });
});
