import { createHash } from 'node:crypto';
import type { Credentials, RegistryClient } from '../registry-client/index.js';
import { MirrorError } from './errors.js';

/**
 * The registry credentials a client sent the mirror, and the upstream clients that use them.
 *
 * Clients send credentials as HTTP Basic (RFC 7617) after the mirror's Basic challenge. skopeo,
 * podman and CRI-O (containers/image) answer a Basic challenge even when they hold no credentials,
 * with an empty user and password (`Basic Og==`): that is an anonymous client, not a wrong login.
 */

/** Undefined for an anonymous client (no header, or empty Basic credentials). */
export function parseClientCredentials(authorization: string | undefined): Credentials | undefined {
  if (authorization === undefined || authorization.trim() === '') return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]*)\s*$/i.exec(authorization.trim());
  if (!m) {
    throw new MirrorError('UNAUTHORIZED', 'send registry credentials as HTTP Basic authorization');
  }
  const decoded = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const username = colon === -1 ? decoded : decoded.slice(0, colon);
  const password = colon === -1 ? '' : decoded.slice(colon + 1);
  if (username === '' && password === '') return undefined;
  if (username === '') {
    throw new MirrorError('UNAUTHORIZED', 'send registry credentials as HTTP Basic user:password');
  }
  return { username, password };
}

/**
 * A digest naming one upstream and one set of credentials, for map keys: the password itself is
 * never a key, never logged, and two passwords never share an entry.
 */
export function credentialKey(upstream: string, creds: Credentials): string {
  return createHash('sha256')
    .update(upstream)
    .update('\0')
    .update(creds.username)
    .update('\0')
    .update(creds.password)
    .digest('hex');
}

export interface CredentialClientsOptions {
  /** Makes the upstream client for one set of client credentials. */
  make: (base: RegistryClient, creds: Credentials) => RegistryClient;
  /** Most clients kept; the least recently used goes first. */
  maxClients?: number;
  /** A client unused this long is dropped (its cached tokens with it). */
  idleMs?: number;
  now?: () => number;
}

export const CREDENTIAL_CLIENT_DEFAULTS = { maxClients: 256, idleMs: 15 * 60 * 1000 } as const;

/**
 * One RegistryClient per upstream and client credentials, so that each client's token (Bearer
 * upstreams) is fetched with its own credentials and used only for its own requests. Bounded by
 * count (least recently used first) and idle time, so that a flood of distinct credentials cannot
 * grow memory without bound. A dropped client is not closed: a download that started with it keeps
 * its reference and resumes with the same credentials.
 */
export class CredentialClients {
  private readonly clients = new Map<string, { client: RegistryClient; usedAt: number }>();
  private readonly maxClients: number;
  private readonly idleMs: number;
  private readonly now: () => number;

  constructor(private readonly options: CredentialClientsOptions) {
    this.maxClients = options.maxClients ?? CREDENTIAL_CLIENT_DEFAULTS.maxClients;
    this.idleMs = options.idleMs ?? CREDENTIAL_CLIENT_DEFAULTS.idleMs;
    this.now = options.now ?? Date.now;
  }

  get(base: RegistryClient, creds: Credentials): RegistryClient {
    const key = credentialKey(base.name, creds);
    const now = this.now();
    this.expire(now);
    const found = this.clients.get(key);
    if (found) {
      // Re-inserted: a Map iterates in insertion order, so the first entry is the least recent.
      this.clients.delete(key);
      found.usedAt = now;
      this.clients.set(key, found);
      return found.client;
    }
    const client = this.options.make(base, creds);
    this.clients.set(key, { client, usedAt: now });
    while (this.clients.size > this.maxClients) {
      const oldest = this.clients.keys().next().value;
      if (oldest === undefined) break;
      this.clients.delete(oldest);
    }
    return client;
  }

  get size(): number {
    return this.clients.size;
  }

  private expire(now: number): void {
    for (const [key, entry] of this.clients) {
      // Oldest first: stop at the first one still fresh.
      if (now - entry.usedAt < this.idleMs) return;
      this.clients.delete(key);
    }
  }
}
