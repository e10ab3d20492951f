import { parse, stringify, TomlError } from 'smol-toml';
import { NodeConfigError } from './errors.js';

/**
 * containerd's per-registry host configuration, `<config_path>/<registry>/hosts.toml`
 * (containerd docs/hosts.md). containerd tries every `[host."URL"]` in the order they appear in
 * the file, then `server`; a host answering an error status makes it go on to the next one.
 * Pure: parse, merge and render, no file access.
 */

export const HOIST_HEADER =
  '# Managed by `hoist node configure`: the Hoist mirror is tried first, then any other hosts,\n' +
  '# then server (the registry itself). `hoist node unconfigure` restores the previous file.\n';

/** Capabilities Hoist's mirror gets: it is read-only, so never "push". */
export const MIRROR_CAPABILITIES = ['pull', 'resolve'] as const;

export type HostsToml = Record<string, unknown> & {
  server?: string;
  host?: Record<string, Record<string, unknown>>;
};

/**
 * The registry's own URL, containerd's default `server` when hosts.toml names none: Docker Hub
 * lives at registry-1.docker.io; every other registry is `https://<host>`.
 */
export function defaultOrigin(registry: string): string {
  return registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`;
}

/** smol-toml builds tables as null-prototype objects; give callers ordinary ones (dates stay as they are). */
function toPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toPlain);
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}

/** Parses a hosts.toml; a syntax error or a `host` entry that is not a table is INVALID_HOSTS_TOML. */
export function parseHostsToml(text: string, where = 'hosts.toml'): HostsToml {
  let doc: Record<string, unknown>;
  try {
    doc = toPlain(parse(text)) as Record<string, unknown>;
  } catch (err) {
    const detail = err instanceof TomlError ? err.message.split('\n')[0] : String(err);
    throw new NodeConfigError('INVALID_HOSTS_TOML', `${where} is not valid TOML: ${detail}`, { cause: err });
  }
  const hosts = doc.host;
  if (hosts !== undefined) {
    if (typeof hosts !== 'object' || hosts === null || Array.isArray(hosts)) {
      throw new NodeConfigError(
        'INVALID_HOSTS_TOML',
        `${where}: "host" must be a table of [host."URL"] entries`,
      );
    }
    for (const [url, entry] of Object.entries(hosts)) {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        throw new NodeConfigError('INVALID_HOSTS_TOML', `${where}: host."${url}" must be a table`);
      }
    }
  }
  if (doc.server !== undefined && typeof doc.server !== 'string') {
    throw new NodeConfigError('INVALID_HOSTS_TOML', `${where}: "server" must be a string URL`);
  }
  return doc as HostsToml;
}

/** Host URLs in the order containerd tries them. */
export function hostOrder(doc: HostsToml): string[] {
  return Object.keys(doc.host ?? {});
}

/** containerd compares host URLs as given; ignore a trailing slash so "http://m/" and "http://m" are one. */
function sameUrl(a: string, b: string): boolean {
  return a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
}

export interface MergeInput {
  /** The file that was there before Hoist (undefined: none). */
  existing: HostsToml | undefined;
  mirrorUrl: string;
  /** The registry's origin; undefined keeps an existing `server`, else the default origin. */
  origin: string | undefined;
  registry: string;
}

/**
 * The configuration Hoist wants: the mirror first with pull+resolve, then every host the user
 * already had (in their order, minus an entry for the same mirror URL), then `server`. Every
 * other top-level key the user set (ca, client, skip_verify, header, ...) is kept as it was.
 */
export function mergeHostsToml(input: MergeInput): HostsToml {
  const { existing, mirrorUrl, registry } = input;
  const server = input.origin ?? existing?.server ?? defaultOrigin(registry);
  const hosts: Record<string, Record<string, unknown>> = {
    [mirrorUrl]: { capabilities: [...MIRROR_CAPABILITIES] },
  };
  for (const [url, entry] of Object.entries(existing?.host ?? {})) {
    if (!sameUrl(url, mirrorUrl)) hosts[url] = entry;
  }
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(existing ?? {})) {
    if (key !== 'server' && key !== 'host') rest[key] = value;
  }
  // Top-level scalars before tables: TOML puts a key after a [table] header inside that table.
  return { server, ...rest, host: hosts };
}

/** Renders a hosts.toml with Hoist's header; the output parses back to `doc`. */
export function renderHostsToml(doc: HostsToml): string {
  return `${HOIST_HEADER}\n${stringify(doc)}\n`;
}
