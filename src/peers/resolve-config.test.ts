import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PEER_DEFAULTS, peersConfigSchema } from './config.js';
import { PeerConfigError, resolvePeersConfig } from './resolve-config.js';

const TOKEN = 'a-cluster-token-of-enough-length';
const noFiles = async () => {
  throw new Error('ENOENT');
};
const base = { peer: ['http://10.0.0.2:5000'], peerSelf: 'http://10.0.0.1:5000' };

test('the slow-peer floor: default, from the file, the flag winning over the file, 0 turning it off', async () => {
  const dflt = await resolvePeersConfig(peersConfigSchema.parse({ token: TOKEN }), base, 5000, {}, noFiles);
  assert.equal(dflt?.minBytesPerSecond, PEER_DEFAULTS.minBytesPerSecond);
  assert.equal(dflt?.slowWindowSeconds, PEER_DEFAULTS.slowWindowSeconds);
  assert.equal(dflt?.slowAvoidSeconds, PEER_DEFAULTS.slowAvoidSeconds);
  const file = peersConfigSchema.parse({ token: TOKEN, minBytesPerSecond: 5000, slowWindowSeconds: 0.5 });
  const fromFile = await resolvePeersConfig(file, base, 5000, {}, noFiles);
  assert.equal(fromFile?.minBytesPerSecond, 5000);
  assert.equal(fromFile?.slowWindowSeconds, 0.5);
  const flag = await resolvePeersConfig(file, { ...base, peerMinBytesPerSecond: '0' }, 5000, {}, noFiles);
  assert.equal(flag?.minBytesPerSecond, 0);
});

test('a bad --peer-min-bytes-per-second is refused with what to give', async () => {
  for (const bad of ['1e6', '-1', '1.5', '', 'fast']) {
    await assert.rejects(
      resolvePeersConfig(
        peersConfigSchema.parse({ token: TOKEN }),
        { ...base, peerMinBytesPerSecond: bad },
        5000,
        {},
        noFiles,
      ),
      (err: unknown) =>
        err instanceof PeerConfigError && /--peer-min-bytes-per-second .* whole number/.test(err.message),
      bad,
    );
  }
  assert.equal(peersConfigSchema.safeParse({ minBytesPerSecond: -1 }).success, false);
  assert.equal(peersConfigSchema.safeParse({ slowWindowSeconds: 0 }).success, false);
});
