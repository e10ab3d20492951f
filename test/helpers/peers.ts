// Shared pieces of the peer helpers: whether a peer is installed, free loopback ports, temp dirs.
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

// runc and ip live in sbin, which a non-root PATH often lacks.
const EXTRA_BIN_DIRS = ['/usr/sbin', '/sbin'];

/** Absolute path of `bin` on PATH (or /usr/sbin, /sbin), or undefined when it is not installed. */
export function findBinary(bin: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_BIN_DIRS];
  for (const dir of dirs) {
    const path = join(dir, bin);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * True when every binary is installed. Otherwise skips the test (returns false) — or, under
 * CI=true, throws, because CI must run every peer test rather than pass by skipping.
 */
export function requirePeers(t: TestContext, ...bins: string[]): boolean {
  for (const bin of bins) {
    if (findBinary(bin) !== undefined) continue;
    const reason = `missing peer: ${bin} (install with scripts/install-peers.sh)`;
    if (process.env.CI === 'true') throw new Error(`${reason}; CI=true requires every peer`);
    process.stderr.write(`${t.name}: skipped, ${reason}\n`);
    t.skip(reason);
    return false;
  }
  return true;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (another process may still take it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('freePort: no TCP address');
  return address.port;
}

/**
 * A new empty directory `<base>/<prefix>XXXXXX`. `base` defaults to the OS temp dir; pass '/tmp'
 * where the path must stay short (unix socket paths are limited to 107 bytes).
 */
export async function tempDir(prefix: string, base: string = tmpdir()): Promise<string> {
  return mkdtemp(join(base, prefix.endsWith('-') ? prefix : `${prefix}-`));
}

/** Removes a directory made by tempDir (no error when it is already gone). */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** tempDir that is removed when the test (or suite, for a suite context) finishes. */
export async function testTempDir(t: TestContext, prefix: string): Promise<string> {
  const dir = await tempDir(prefix);
  t.after(() => removeTempDir(dir));
  return dir;
}

/** True when running as root; otherwise skips (or under CI=true throws) like requirePeers. */
export function requireRoot(t: TestContext, why: string): boolean {
  if (process.getuid?.() === 0) return true;
  const reason = `needs root: ${why}`;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI=true requires every peer test to run`);
  process.stderr.write(`${t.name}: skipped, ${reason}\n`);
  t.skip(reason);
  return false;
}
