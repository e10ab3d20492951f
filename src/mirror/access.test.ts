import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { RegistryClient, UpstreamError } from '../registry-client/index.js';
import { AccessControl } from './access.js';
import { MirrorError } from './errors.js';

const ALICE = `Basic ${Buffer.from('alice:pw').toString('base64')}`;
const target = { kind: 'manifest', reference: 'v1' } as const;

describe('AccessControl.withSource with a passthrough upstream', () => {
  let server: Server;
  let base: RegistryClient;
  let storage: string;
  const seen: string[] = [];

  before(async () => {
    // `priv/*` needs alice's Basic credentials; everything else is public.
    server = createServer((req, res) => {
      const auth =
        req.headers.authorization === ALICE ? 'alice' : req.headers.authorization ? 'other' : 'anon';
      seen.push(`${req.method} ${req.url} ${auth}`);
      if (req.url?.startsWith('/v2/priv/') && auth !== 'alice') {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"', 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}');
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'content-length': 2,
      });
      res.end(req.method === 'HEAD' ? undefined : '{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    base = new RegistryClient({ name: 'r.test', url });
    storage = await mkdtemp(join(tmpdir(), 'hoist-access-'));
  });
  after(async () => {
    server.close();
    await rm(storage, { recursive: true, force: true });
  });

  const control = () =>
    new AccessControl({
      storageRoot: storage,
      clients: new Map([['r.test', base]]),
      trusted: new Set(),
      cacheSeconds: 60,
      logger: pino({ level: 'silent' }),
    });

  /** A `use` that fetches the manifest and records which client it was given. */
  const using = (used: RegistryClient[], repo: string) => async (client: RegistryClient) => {
    used.push(client);
    return client.getManifest(repo, 'v1', ['application/vnd.oci.image.manifest.v1+json']);
  };

  it('serves a public repository anonymously, ignoring the client’s credentials, with no probe', async () => {
    const access = control();
    const used: RegistryClient[] = [];
    seen.length = 0;
    await access.withSource(ALICE, 'r.test', 'pub/app', target, using(used, 'pub/app'));
    assert.deepEqual(used, [base]);
    assert.deepEqual(seen, ['GET /v2/pub/app/manifests/v1 anon']);
  });

  it('retries a refused anonymous request with the client’s credentials, and marks the repository', async () => {
    const access = control();
    const used: RegistryClient[] = [];
    await access.withSource(ALICE, 'r.test', 'priv/app', target, using(used, 'priv/app'));
    assert.equal(used.length, 2);
    assert.equal(used[0], base);
    assert.notEqual(used[1], base);
    assert.equal(used[1]?.hasCredentials, true);
    await stat(join(storage, 'access', 'r.test', 'priv', 'app', '_private'));
    // Now known private: straight to the client's credentials, and anonymous clients are challenged.
    const again: RegistryClient[] = [];
    await access.withSource(ALICE, 'r.test', 'priv/app', target, using(again, 'priv/app'));
    assert.deepEqual(again, [used[1]], 'the same client: its credentials and tokens are reused');
    await assert.rejects(
      access.withSource(undefined, 'r.test', 'priv/app', target, using([], 'priv/app')),
      (e: unknown) => e instanceof MirrorError && e.code === 'UNAUTHORIZED',
    );
    await assert.rejects(
      access.withSource('Basic Og==', 'r.test', 'priv/app', target, using([], 'priv/app')),
      (e: unknown) => e instanceof MirrorError && e.code === 'UNAUTHORIZED',
    );
  });

  it('remembers the mark across a restart: anonymous clients never reach `use`', async () => {
    const restarted = control();
    await restarted.init(async () => true);
    const used: RegistryClient[] = [];
    await assert.rejects(
      restarted.withSource(undefined, 'r.test', 'priv/app', target, using(used, 'priv/app')),
      (e: unknown) => e instanceof MirrorError && e.code === 'UNAUTHORIZED',
    );
    assert.deepEqual(used, []);
  });

  it('does not retry once the answer has started (canRetry false), nor for other errors', async () => {
    const access = control();
    const used: RegistryClient[] = [];
    await assert.rejects(
      access.withSource(ALICE, 'r.test', 'priv/other', target, using(used, 'priv/other'), () => false),
      (e: unknown) => e instanceof UpstreamError && e.code === 'UNAUTHORIZED',
    );
    assert.deepEqual(used, [base]);
    const calls: RegistryClient[] = [];
    await assert.rejects(
      access.withSource(ALICE, 'r.test', 'pub/x', target, async (c) => {
        calls.push(c);
        throw new UpstreamError('MANIFEST_UNKNOWN', 'no such manifest');
      }),
      (e: unknown) => e instanceof UpstreamError && e.code === 'MANIFEST_UNKNOWN',
    );
    assert.equal(calls.length, 1);
  });
});
