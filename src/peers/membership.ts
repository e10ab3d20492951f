import type { Logger } from 'pino';

/**
 * The peers one node knows, as base URLs (`http://10.0.3.7:5000`), from any number of sources:
 * a static list (`--peer`), a DNS name re-resolved on a timer, or the ready endpoints of the
 * mirror's headless Service (EndpointSlice watch). Each source replaces its own part; the members
 * are the union, minus this node itself. Changes apply at once, without a restart.
 */
export type MembershipListener = (members: readonly string[]) => void;

export class Membership {
  private readonly sources = new Map<string, ReadonlySet<string>>();
  private current: readonly string[] = [];
  private readonly listeners: MembershipListener[] = [];

  /** `self` is this node's own peer URL: left out of `members()`, included in `ranked()`. */
  constructor(
    readonly self: string,
    private readonly logger?: Logger,
  ) {
    this.self = normalizePeerUrl(self);
  }

  /** Replaces what `source` says the members are. */
  set(source: string, urls: Iterable<string>): void {
    const set = new Set<string>();
    for (const url of urls) set.add(normalizePeerUrl(url));
    this.sources.set(source, set);
    this.recompute();
  }

  /** Other nodes, sorted. */
  members(): readonly string[] {
    return this.current;
  }

  /** Every node including this one: what rendezvous hashing ranks. */
  everyone(): string[] {
    return [this.self, ...this.current];
  }

  onChange(listener: MembershipListener): void {
    this.listeners.push(listener);
  }

  private recompute(): void {
    const union = new Set<string>();
    for (const set of this.sources.values()) for (const url of set) if (url !== this.self) union.add(url);
    const next = [...union].sort();
    if (next.length === this.current.length && next.every((u, i) => u === this.current[i])) return;
    const added = next.filter((u) => !this.current.includes(u));
    const removed = this.current.filter((u) => !next.includes(u));
    this.current = next;
    this.logger?.info({ members: next.length, added, removed }, 'peer membership changed');
    for (const l of this.listeners) l(next);
  }
}

/**
 * `http://HOST:PORT` with no path, lower-case, IPv6 in brackets: the one spelling every node
 * uses, so that rankings agree. Throws on anything that is not an http(s) origin.
 */
export function normalizePeerUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`peer '${raw}' is not a URL; give it as http://HOST:PORT`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`peer '${raw}' must be an http:// or https:// URL`);
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    throw new TypeError(`peer '${raw}' must be just scheme, host and port (http://HOST:PORT)`);
  }
  return url.origin;
}

/** The peer URL of an address and port (an IPv6 address gets its brackets). */
export function peerUrl(address: string, port: number, scheme: 'http' | 'https' = 'http'): string {
  const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
  return normalizePeerUrl(`${scheme}://${host}:${port}`);
}
