import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PUBLIC_UPSTREAMS, resolveMirrorConfig } from './config.js';

const noFiles = async (path: string) => {
  if (path === '/secret/pw') return 'hunter2\n';
  throw new Error('ENOENT');
};

describe('mirror configuration', () => {
  it('mirrors the public registries with no configuration', async () => {
    const c = await resolveMirrorConfig({}, {}, noFiles);
    assert.deepEqual(
      c.upstreams.map((u) => u.name),
      Object.keys(PUBLIC_UPSTREAMS),
    );
    assert.equal(c.defaultUpstream, 'docker.io');
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 5000 });
    assert.equal(c.storage, './hoist-data');
    assert.equal(c.tagTtlSeconds, 300);
  });

  it('lets flags win over the file', async () => {
    const c = await resolveMirrorConfig(
      {
        listen: '0.0.0.0:5001',
        storage: '/var/lib/hoist',
        upstreams: { 'ghcr.io': { url: 'https://ghcr.io', username: 'u', passwordFile: '/secret/pw' } },
        tagTtlSeconds: 60,
      },
      {
        listen: '127.0.0.1:6001',
        upstream: ['127.0.0.1:7000=http://127.0.0.1:7000'],
        defaultUpstream: '127.0.0.1:7000',
      },
      noFiles,
    );
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 6001 });
    assert.equal(c.storage, '/var/lib/hoist');
    assert.deepEqual(
      c.upstreams.map((u) => u.name),
      ['ghcr.io', '127.0.0.1:7000'],
    );
    assert.equal(c.upstreams[0]?.password, 'hunter2');
    assert.equal(c.defaultUpstream, '127.0.0.1:7000');
    assert.equal(c.tagTtlSeconds, 60);
  });

  const bad: Array<[string, unknown, object, RegExp]> = [
    ['an unknown key', { lisen: 'x' }, {}, /\(top level\)|lisen/],
    ['a bad upstream URL', { upstreams: { 'ghcr.io': { url: 'ftp://x' } } }, {}, /upstreams\.ghcr\.io\.url/],
    ['a wrong type', { tagTtlSeconds: 'soon' }, {}, /tagTtlSeconds/],
    [
      'a username without password',
      { upstreams: { a: { url: 'http://a', username: 'u' } } },
      {},
      /upstreams\.a/,
    ],
    ['a bad --upstream', {}, { upstream: ['nourl'] }, /--upstream "nourl" must be NAME=URL/],
    ['an unknown default', {}, { defaultUpstream: 'nope' }, /default upstream "nope"/],
    ['a bad --listen', {}, { listen: 'localhost' }, /--listen "localhost" must be HOST:PORT/],
    ['a port out of range', {}, { listen: '127.0.0.1:70000' }, /at most 65535/],
  ];
  for (const [what, file, flags, message] of bad) {
    it(`rejects ${what} with the path of the bad key`, async () => {
      await assert.rejects(resolveMirrorConfig(file, flags, noFiles), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CONFIG_INVALID');
        assert.match(err.message, message);
        return true;
      });
    });
  }
});
