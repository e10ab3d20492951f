// A supervisor (a test, systemd, the kubelet) may stop a long-running command the moment it prints
// "listening on": the command must already handle SIGTERM then and shut down cleanly (exit 0),
// not die by the signal. Each command is stopped that way several times: the window used to be a
// few event-loop turns wide and was hit about one run in three.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startCriNode, startHoist } from './helpers/cri.js';
import { requirePeers, testTempDir } from './helpers/peers.js';

const RUNS = 5;

async function stopAtOnce(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const run = startHoist(args);
  await run.url;
  run.child.kill('SIGTERM');
  const code = await run.exited;
  return { code, signal: run.child.signalCode };
}

describe('SIGTERM right after "listening on"', () => {
  it('hoist mirror shuts down cleanly', { timeout: 120_000 }, async (t) => {
    const dir = await testTempDir(t, 'hoist-signals-');
    for (let i = 0; i < RUNS; i++) {
      const result = await stopAtOnce([
        'mirror',
        '--listen',
        '127.0.0.1:0',
        '--storage',
        join(dir, `store-${i}`),
        '--upstream',
        'offline.test=http://127.0.0.1:9',
      ]);
      assert.deepEqual(result, { code: 0, signal: null }, `run ${i}`);
    }
  });

  it('hoist agent shuts down cleanly', { timeout: 180_000 }, async (t) => {
    if (!requirePeers(t, 'containerd')) return;
    const { ctd, endpoint } = await startCriNode(t);
    for (let i = 0; i < RUNS; i++) {
      const result = await stopAtOnce([
        'agent',
        '--runtime-endpoint',
        endpoint,
        '--listen',
        '127.0.0.1:0',
        '--certs-dir',
        ctd.hostsDir,
        '--disk-high-water',
        'none',
      ]);
      assert.deepEqual(result, { code: 0, signal: null }, `run ${i}`);
    }
  });
});
