import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NodeConfigError } from './errors.js';

/**
 * Registry credentials from a Docker `config.json` (docker/cli cli/config/configfile): the
 * `auths` object, keyed by registry, each entry either `auth` (base64 of "user:password") or
 * `username` + `password`. The same file `docker login`, `podman login --authfile` and
 * `skopeo --authfile` write. Credential helpers (`credsStore`, `credHelpers`) are programs Hoist
 * does not run; `identitytoken` (an OAuth refresh token) is not used either: such entries are
 * reported in `skipped` so the caller can say so.
 */

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface AuthFile {
  path: string;
  /** Credentials by registry host as image references name it (docker.io, 127.0.0.1:5000). */
  registries: Map<string, RegistryCredentials>;
  /** Why some registries have no usable credentials (helpers, identity tokens). */
  skipped: string[];
}

/**
 * The registry host a config.json key names. docker writes bare hosts ("ghcr.io"), older
 * clients URLs ("https://index.docker.io/v1/"); Docker Hub goes by several names.
 */
export function authKeyRegistry(key: string): string {
  let host = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  host = host.split('/')[0] ?? host;
  host = host.toLowerCase();
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') return 'docker.io';
  return host;
}

function decodeAuth(value: string, where: string): RegistryCredentials {
  const text = Buffer.from(value, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) {
    throw new NodeConfigError(
      'INVALID_AUTH_FILE',
      `${where}.auth is not base64 of "username:password"; run docker login again or fix the file`,
    );
  }
  // containerd trims NULs the same way (pkg/cri ParseAuth): some writers pad the decoded value.
  return { username: text.slice(0, colon), password: text.slice(colon + 1).replace(/\0+$/, '') };
}

/** Pure: parses config.json text. Throws INVALID_AUTH_FILE naming the bad key. */
export function parseAuthFile(text: string, path: string): AuthFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new NodeConfigError('INVALID_AUTH_FILE', `${path} is not valid JSON (a Docker config.json)`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new NodeConfigError('INVALID_AUTH_FILE', `${path} must be a JSON object with "auths"`);
  }
  const { auths, credsStore, credHelpers } = doc as Record<string, unknown>;
  const registries = new Map<string, RegistryCredentials>();
  const skipped: string[] = [];
  if (auths !== undefined && (typeof auths !== 'object' || auths === null || Array.isArray(auths))) {
    throw new NodeConfigError('INVALID_AUTH_FILE', `${path}: "auths" must be an object keyed by registry`);
  }
  for (const [key, entry] of Object.entries((auths ?? {}) as Record<string, unknown>)) {
    const where = `${path}: auths."${key}"`;
    if (typeof entry !== 'object' || entry === null) {
      throw new NodeConfigError('INVALID_AUTH_FILE', `${where} must be an object`);
    }
    const e = entry as Record<string, unknown>;
    const registry = authKeyRegistry(key);
    if (typeof e.auth === 'string' && e.auth !== '') {
      registries.set(registry, decodeAuth(e.auth, where));
    } else if (typeof e.username === 'string' && e.username !== '' && typeof e.password === 'string') {
      registries.set(registry, { username: e.username, password: e.password });
    } else if (typeof e.identitytoken === 'string' && e.identitytoken !== '') {
      skipped.push(`${registry}: identitytoken is not supported, use username and password`);
    }
  }
  if (typeof credsStore === 'string' && credsStore !== '') {
    skipped.push(`credsStore "${credsStore}": credential helpers are not run`);
  }
  if (typeof credHelpers === 'object' && credHelpers !== null) {
    for (const registry of Object.keys(credHelpers)) {
      if (!registries.has(authKeyRegistry(registry)))
        skipped.push(`${registry}: credential helpers are not run`);
    }
  }
  return { path, registries, skipped };
}

/**
 * The file to read: `--auth-file` when given, else `$DOCKER_CONFIG/config.json` when DOCKER_CONFIG
 * is set (docker's own rule), else none.
 */
export function authFilePath(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (flag !== undefined) return flag;
  return env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : undefined;
}

/**
 * Reads and parses an auth file. A missing file is INVALID_AUTH_FILE when it was asked for
 * (`required`), and no credentials when it was only the DOCKER_CONFIG default (docker treats a
 * missing config.json as empty).
 */
export async function loadAuthFile(path: string, required: boolean): Promise<AuthFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return { path, registries: new Map(), skipped: [] };
    throw new NodeConfigError(
      'INVALID_AUTH_FILE',
      `cannot read auth file ${path} (${code ?? (err as Error).message}); give a Docker config.json with --authfile`,
    );
  }
  return parseAuthFile(text, path);
}
