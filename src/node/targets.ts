import { NodeConfigError } from './errors.js';
import type { RegistryTarget } from './hosts-config.js';

// A registry host as image references name it: host[:port], or a bracketed IPv6 literal.
const REGISTRY_HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

function httpUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new NodeConfigError(
      'INVALID_MIRROR_URL',
      `${what} "${value}" is not a URL: use http://HOST:PORT or https://HOST`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new NodeConfigError('INVALID_MIRROR_URL', `${what} "${value}" must be an http:// or https:// URL`);
  }
  if (url.search || url.hash || url.username) {
    throw new NodeConfigError(
      'INVALID_MIRROR_URL',
      `${what} "${value}" must not carry a query, fragment or credentials`,
    );
  }
  // containerd appends /v2/... itself; a bare origin is what hosts.toml wants.
  return value.replace(/\/+$/, '');
}

/** The mirror URL as it goes into `[host."URL"]`. */
export function parseMirrorUrl(value: string): string {
  return httpUrl(value, '--mirror');
}

/**
 * Parses `--registries docker.io,ghcr.io,127.0.0.1:6000=http://127.0.0.1:6000`: registry hosts,
 * each optionally with its origin URL (NAME=URL, as `hoist mirror --upstream` takes it).
 */
export function parseRegistryList(value: string): RegistryTarget[] {
  const out: RegistryTarget[] = [];
  const seen = new Set<string>();
  for (const item of value.split(',').map((s) => s.trim())) {
    if (!item) continue;
    const eq = item.indexOf('=');
    const registry = eq >= 0 ? item.slice(0, eq) : item;
    if (!REGISTRY_HOST.test(registry) || registry.startsWith('.')) {
      throw new NodeConfigError(
        'INVALID_REGISTRY',
        `--registries: "${registry}" is not a registry host (e.g. docker.io, ghcr.io, 127.0.0.1:6000)`,
      );
    }
    if (seen.has(registry))
      throw new NodeConfigError('INVALID_REGISTRY', `--registries names ${registry} twice`);
    seen.add(registry);
    out.push(
      eq >= 0 ? { registry, origin: httpUrl(item.slice(eq + 1), `origin of ${registry}`) } : { registry },
    );
  }
  if (out.length === 0) {
    throw new NodeConfigError(
      'INVALID_REGISTRY',
      '--registries is empty: name at least one registry, e.g. docker.io',
    );
  }
  return out;
}
