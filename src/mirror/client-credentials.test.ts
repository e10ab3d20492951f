import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryClient } from '../registry-client/index.js';
import { credentialKey, CredentialClients, parseClientCredentials } from './client-credentials.js';
import { MirrorError } from './errors.js';

const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

describe('client credentials', () => {
  it('parses Basic credentials; empty ones (skopeo without a login) are anonymous', () => {
    assert.deepEqual(parseClientCredentials(basic('alice:pa:ss')), { username: 'alice', password: 'pa:ss' });
    assert.deepEqual(parseClientCredentials(basic('alice:')), { username: 'alice', password: '' });
    assert.equal(parseClientCredentials(undefined), undefined);
    assert.equal(parseClientCredentials(''), undefined);
    assert.equal(
      parseClientCredentials('Basic Og=='),
      undefined,
      'containers/image sends ":" when it has no login',
    );
    for (const bad of ['Bearer abc', basic(':secret'), 'Basic !!!']) {
      assert.throws(
        () => parseClientCredentials(bad),
        (e: unknown) =>
          e instanceof MirrorError && e.code === 'UNAUTHORIZED' && !e.message.includes('secret'),
        bad,
      );
    }
  });

  it('keys by upstream and credentials without holding the password', () => {
    const k = credentialKey('r.test', { username: 'alice', password: 'hunter2' });
    assert.match(k, /^[0-9a-f]{64}$/);
    assert.notEqual(k, credentialKey('r.test', { username: 'alice', password: 'hunter3' }));
    assert.notEqual(k, credentialKey('s.test', { username: 'alice', password: 'hunter2' }));
    // No confusion between user and password boundaries.
    assert.notEqual(
      credentialKey('r', { username: 'a', password: 'b:c' }),
      credentialKey('r', { username: 'a:b', password: 'c' }),
    );
  });

  const base = new RegistryClient({ name: 'r.test', url: 'http://127.0.0.1:9' });
  const other = new RegistryClient({ name: 's.test', url: 'http://127.0.0.1:9' });

  it('keeps one client per upstream and credentials, bounded by count, least recently used first', () => {
    let made = 0;
    const clients = new CredentialClients({
      make: (b, credentials) => {
        made += 1;
        return new RegistryClient({ name: b.name, url: b.baseUrl, credentials });
      },
      maxClients: 3,
    });
    const alice = clients.get(base, { username: 'alice', password: 'a' });
    assert.equal(clients.get(base, { username: 'alice', password: 'a' }), alice, 'reused');
    assert.notEqual(clients.get(base, { username: 'alice', password: 'b' }), alice, 'another password');
    assert.notEqual(clients.get(other, { username: 'alice', password: 'a' }), alice, 'another upstream');
    assert.equal(made, 3);
    clients.get(base, { username: 'alice', password: 'a' }); // alice is now the most recent
    // A flood of distinct credentials never holds more than maxClients.
    for (let i = 0; i < 1000; i++) clients.get(base, { username: `u${i}`, password: 'x' });
    assert.equal(clients.size, 3);
    assert.notEqual(clients.get(base, { username: 'alice', password: 'a' }), alice, 'evicted, made again');
  });

  it('drops clients unused for idleMs', () => {
    let now = 0;
    const clients = new CredentialClients({
      make: (b, credentials) => new RegistryClient({ name: b.name, url: b.baseUrl, credentials }),
      idleMs: 1000,
      now: () => now,
    });
    const a = clients.get(base, { username: 'a', password: 'a' });
    now = 500;
    clients.get(base, { username: 'b', password: 'b' });
    now = 1200;
    assert.equal(clients.get(base, { username: 'b', password: 'b' }) !== undefined, true);
    assert.equal(clients.size, 1, 'a was idle for 1200 ms and is gone; b was used at 500');
    assert.notEqual(clients.get(base, { username: 'a', password: 'a' }), a);
  });
});
