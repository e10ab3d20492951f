// Finds the peers that scripts/install-peers.sh builds from the pinned Go modules under
// test/peers/ (kube-apiserver, etcd, kubectl, helm, containerd 2.x, the OCI conformance suite) and the Go toolchain the tests
// build with. The script links each built binary as `<cache>/current/<peer>`.
import { accessSync, constants, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { findBinary } from './peers.js';

export type GoPeer =
  | 'kube-apiserver'
  | 'etcd'
  | 'kubectl'
  | 'helm'
  | 'containerd2'
  | 'ctr2'
  | 'containerd-shim-runc-v2'
  // The OCI distribution-spec conformance suite, a Ginkgo test binary (test/peers/conformance).
  | 'oci-conformance'
  // distribution's Docker token server (test/peers/token-server, test/helpers/token-registry.ts).
  | 'token-server';

const DEFAULT_CACHE = '/var/cache/hoist-peers';
// Where Go >= 1.26 is preinstalled; Debian's golang-go (1.19) owns /usr/bin/go.
const PREINSTALLED_GO = '/usr/local/go/bin/go';

/** The build cache install-peers.sh writes (HOIST_PEERS_CACHE, default /var/cache/hoist-peers). */
export function goPeersCache(): string {
  return process.env.HOIST_PEERS_CACHE ?? DEFAULT_CACHE;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The real path of a Go-built peer, or undefined when install-peers.sh has not built it. Resolved
 * through the `current` link, so `dirname()` is the build's own bin dir (containerd 2.x needs its
 * shim from there, not Debian's).
 */
export function goPeerBinary(name: GoPeer): string | undefined {
  try {
    const path = realpathSync(join(goPeersCache(), 'current', name));
    return executable(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The `go` to build with: $HOIST_GO, else the preinstalled /usr/local/go/bin/go, else `go` on
 * PATH. PATH alone is not enough: Debian's 1.19 comes first wherever /usr/local/go/bin is missing
 * from PATH (sudo's secure_path, for one).
 */
export function goBinary(): string | undefined {
  const fromEnv = process.env.HOIST_GO;
  if (fromEnv !== undefined && fromEnv !== '' && executable(fromEnv)) return fromEnv;
  if (executable(PREINSTALLED_GO)) return PREINSTALLED_GO;
  return findBinary('go');
}

/**
 * True when every named Go-built peer is present. Otherwise skips the test (returns false) — or,
 * under CI=true, throws, because CI must run every peer test rather than pass by skipping.
 */
export function requireGoPeer(t: TestContext, ...names: GoPeer[]): boolean {
  for (const name of names) {
    if (goPeerBinary(name) !== undefined) continue;
    const reason =
      `missing Go-built peer: ${name} (not in ${join(goPeersCache(), 'current')}; ` +
      'build it with scripts/install-peers.sh)';
    if (process.env.CI === 'true') throw new Error(`${reason}; CI=true requires every peer`);
    process.stderr.write(`${t.name}: skipped, ${reason}\n`);
    t.skip(reason);
    return false;
  }
  return true;
}
