import { lookup } from 'node:dns/promises';
import type { Logger } from 'pino';
import { peerUrl, type Membership } from './membership.js';

export type ResolveAll = (name: string) => Promise<string[]>;

/** Every A and AAAA address of a name (a headless Service returns one per ready pod). */
export const resolveAll: ResolveAll = async (name) =>
  (await lookup(name, { all: true, verbatim: true })).map((a) => a.address);

export interface DnsPeersOptions {
  /** `NAME:PORT` (e.g. `hoist-mirror-peers.hoist.svc:5000`). */
  target: string;
  intervalMs: number;
  scheme?: 'http' | 'https';
  resolve?: ResolveAll;
  logger?: Logger;
}

/**
 * Members from a DNS name, re-resolved every `intervalMs`. A failed look-up keeps the last answer
 * (a DNS hiccup must not empty the cluster); an answer with no address empties it.
 */
export function watchDnsPeers(
  membership: Membership,
  options: DnsPeersOptions,
  signal: AbortSignal,
): Promise<void> {
  const { name, port } = parseDnsTarget(options.target);
  const resolve = options.resolve ?? resolveAll;
  const source = `dns:${options.target}`;
  const once = async (): Promise<void> => {
    try {
      const addresses = await resolve(name);
      membership.set(
        source,
        addresses.map((a) => peerUrl(a, port, options.scheme)),
      );
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') membership.set(source, []);
      else
        options.logger?.warn({ name, err: String(err) }, 'peer DNS look-up failed; keeping the last answer');
    }
  };
  const first = once();
  const timer = setInterval(() => void once(), options.intervalMs);
  timer.unref();
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  return first;
}

export function parseDnsTarget(target: string): { name: string; port: number } {
  const m = /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(target);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new TypeError(
      `peer DNS target '${target}' must be NAME:PORT, e.g. hoist-mirror-peers.hoist.svc:5000`,
    );
  }
  return { name: m[1] as string, port };
}
