/**
 * Where a registry is and who to be there: its API URL (plain HTTP on loopback, as Docker
 * treats localhost registries as insecure, or when asked) and its credentials, from a Docker
 * `config.json` (`auths`) or from the mirror's upstreams. Pure code; the CLI reads the files.
 */
import type { Credentials } from '../registry-client/index.js';

export interface RegistryEndpoint {
  /** The host as image references name it (docker.io, 127.0.0.1:5000). */
  name: string;
  url: string;
  credentials?: Credentials;
}

/** Credentials and URLs known for registry hosts. */
export interface RegistryAuthSources {
  /** From a Docker config.json, by normalized host. */
  docker?: Map<string, Credentials>;
  /** From the mirror's YAML `upstreams` (URL and credentials), by host. */
  upstreams?: Map<string, { url: string; credentials?: Credentials }>;
}

export function isLoopbackHost(host: string): boolean {
  const h = host
    .replace(/:\d+$/, '')
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Docker Hub's API endpoint differs from the name images use. */
function defaultUrl(host: string, plainHttp: boolean): string {
  if (host === 'docker.io') return 'https://registry-1.docker.io';
  return `${plainHttp || isLoopbackHost(host) ? 'http' : 'https'}://${host}`;
}

export function resolveEndpoint(
  host: string,
  sources: RegistryAuthSources,
  plainHttp: boolean,
): RegistryEndpoint {
  const upstream = sources.upstreams?.get(host);
  const url = upstream?.url ?? defaultUrl(host, plainHttp);
  const credentials = upstream?.credentials ?? sources.docker?.get(normalizeAuthKey(host));
  return { name: host, url, ...(credentials ? { credentials } : {}) };
}

/**
 * Docker keys `auths` by host, by URL, and Docker Hub by `https://index.docker.io/v1/`
 * (docker/cli config/configfile "ConvertToHostname").
 */
export function normalizeAuthKey(key: string): string {
  let host = key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  if (host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'registry.hub.docker.com') {
    host = 'docker.io';
  }
  return host;
}

/**
 * Parses a Docker config.json's `auths`: `auth` (base64 `user:password`) or `username` and
 * `password`. Entries with only `identitytoken` or held by a credential helper (`credsStore`,
 * `credHelpers`) carry no password here and are skipped.
 */
export function parseDockerConfig(text: string, source = 'config.json'): Map<string, Credentials> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new Error(`${source} is not valid JSON`, { cause });
  }
  const out = new Map<string, Credentials>();
  const auths = (json as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null) return out;
  for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
    if (typeof value !== 'object' || value === null) continue;
    const v = value as { auth?: unknown; username?: unknown; password?: unknown };
    let username: string | undefined;
    let password: string | undefined;
    if (typeof v.auth === 'string' && v.auth !== '') {
      const decoded = Buffer.from(v.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0) throw new Error(`${source}: auths.${key}.auth is not base64 of "user:password"`);
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    } else if (typeof v.username === 'string' && typeof v.password === 'string') {
      username = v.username;
      password = v.password;
    }
    if (username !== undefined && password !== undefined)
      out.set(normalizeAuthKey(key), { username, password });
  }
  return out;
}
