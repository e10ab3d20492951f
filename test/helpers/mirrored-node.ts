// The node-side setup the pull tests share: a mirror in front of a registry and a CRI node beside
// it, and the flags that point `hoist node configure` and `hoist agent` at the one for the other.
// Apart from cri.ts so that tests that only run `hoist` do not load the mirror.
import type { TestContext } from 'node:test';
import type { CriClient } from '../../src/cri/index.js';
import type { ContainerdOptions, ContainerdPeer } from './containerd.js';
import { startCriNode } from './cri.js';
import { startMirror, type MirrorHandle } from './mirror.js';

/**
 * `--mirror`, `--registries`, `--certs-dir`, `--containerd-config`: `mirrorUrl` for `upstream`'s
 * registry, written into the hosts.toml directory and containerd config of `ctd`'s node.
 */
export function mirrorFlags(
  mirrorUrl: string,
  upstream: { host: string; url: string },
  ctd: Pick<ContainerdPeer, 'hostsDir' | 'configPath'>,
): string[] {
  return [
    '--mirror',
    mirrorUrl,
    '--registries',
    `${upstream.host}=${upstream.url}`,
    '--certs-dir',
    ctd.hostsDir,
    '--containerd-config',
    ctd.configPath,
  ];
}

export interface MirroredCriNode {
  mirror: MirrorHandle;
  ctd: ContainerdPeer;
  cri: CriClient;
  /** The `--runtime-endpoint` value. */
  endpoint: string;
  /** mirrorFlags() for this mirror, upstream and node. */
  mirrorFlags: string[];
  /** `--runtime-endpoint` and `--certs-dir` of this node, for `hoist node pull`. */
  nodeFlags: string[];
}

/**
 * A mirror in front of `upstream` (nothing else), then a CRI node (startCriNode); all stopped
 * after the test. Nothing points the node at the mirror yet: that is the test's `hoist` command.
 */
export async function startMirroredCriNode(
  t: TestContext,
  upstream: { host: string; url: string },
  opts: ContainerdOptions = {},
  mirrorOptions: Parameters<typeof startMirror>[1] = {},
): Promise<MirroredCriNode> {
  const mirror = await startMirror({ [upstream.host]: upstream.url }, mirrorOptions);
  t.after(() => mirror.close());
  const node = await startCriNode(t, opts);
  return {
    mirror,
    ...node,
    mirrorFlags: mirrorFlags(mirror.url, upstream, node.ctd),
    nodeFlags: ['--runtime-endpoint', node.endpoint, '--certs-dir', node.ctd.hostsDir],
  };
}
