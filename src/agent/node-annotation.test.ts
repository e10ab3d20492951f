import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { CriClient } from '../cri/index.js';
import { Agent } from './agent.js';
import { kubeMirroredRegistriesMarker } from './node-annotation.js';
import type { NodePullApi } from './node-pull-sync.js';

/** The few CRI calls an agent makes to start and stop, and nothing else. */
const fakeCri = {
  endpoint: 'unix:///fake.sock',
  version: async () => ({
    runtimeName: 'fake',
    runtimeVersion: '0',
    runtimeApiVersion: 'v1',
    version: '0.1.0',
  }),
  close: () => {},
} as unknown as CriClient;

/** A NodePull watch that lists nothing and waits for the abort. */
const idleApi: NodePullApi = {
  watch: async () => {},
  patchStatus: async () => {},
  readSecret: async () => undefined,
};

describe('the agent marks its Node with the registries it sends through the mirror', () => {
  it('patches one annotation, registries sorted and lowercased', async () => {
    const calls: unknown[][] = [];
    const mark = kubeMirroredRegistriesMarker(
      {
        patch: async (...args: unknown[]) => {
          calls.push(args);
          return {} as never;
        },
      },
      'gpu-1',
    );
    await mark(['ghcr.io', 'Docker.io']);
    assert.deepEqual(calls, [
      [
        { group: '', version: 'v1', plural: 'nodes', name: 'gpu-1' },
        { metadata: { annotations: { 'hoist.dev/mirrored-registries': 'docker.io,ghcr.io' } } },
        'merge',
      ],
    ]);
  });

  it(
    'after writing hosts.toml, with the registries written, retrying a refused patch',
    { timeout: 30_000 },
    async () => {
      const certsDir = await mkdtemp(join(tmpdir(), 'hoist-mark-'));
      const marked: string[][] = [];
      let refusals = 1;
      let done!: () => void;
      const markedTwice = new Promise<void>((r) => (done = r));
      const agent = new Agent({
        cri: fakeCri,
        listen: { host: '127.0.0.1', port: 0 },
        concurrency: 1,
        logger: pino({ enabled: false }),
        node: {
          mirrorUrl: 'http://127.0.0.1:5000',
          registries: [{ registry: 'docker.io' }, { registry: 'quay.io' }],
          certsDir,
          containerdConfig: join(certsDir, 'no-config.toml'),
        },
        cluster: {
          nodeName: 'gpu-1',
          namespace: 'hoist-system',
          api: idleApi,
          markMirrored: async (registries) => {
            marked.push([...registries]);
            if (refusals-- > 0) throw new Error('403 Forbidden');
            done();
          },
        },
      });
      try {
        await agent.start();
        await markedTwice;
        const written = (await readdir(certsDir)).filter((f) => !f.startsWith('.'));
        assert.deepEqual(written.sort(), ['docker.io', 'quay.io']);
        assert.deepEqual(marked, [
          ['docker.io', 'quay.io'],
          ['docker.io', 'quay.io'],
        ]);
      } finally {
        await agent.close();
        await rm(certsDir, { recursive: true, force: true });
      }
    },
  );
});
