import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { CriError } from './errors.js';

/**
 * Where CRI runtimes listen by default, in the order crictl tries them (crictl's
 * defaultRuntimeEndpoints, minus the dockershim socket that no longer exists).
 */
export const DEFAULT_RUNTIME_SOCKETS = [
  '/run/containerd/containerd.sock',
  '/run/crio/crio.sock',
  '/var/run/cri-dockerd.sock',
] as const;

/**
 * Parses a runtime endpoint as crictl's `--runtime-endpoint` takes it: `unix:///abs/path`
 * (or a bare absolute path). Returns the socket path. Only unix sockets: CRI is a node-local API.
 */
export function parseRuntimeEndpoint(endpoint: string): string {
  let path = endpoint;
  if (endpoint.startsWith('unix://')) path = endpoint.slice('unix://'.length);
  else if (/^[a-z][a-z0-9+.-]*:/i.test(endpoint)) {
    throw new CriError(
      'ENDPOINT_INVALID',
      `runtime endpoint "${endpoint}" is not a unix socket: use unix:///path/to/runtime.sock`,
    );
  }
  if (!isAbsolute(path)) {
    throw new CriError(
      'ENDPOINT_INVALID',
      `runtime endpoint "${endpoint}" must name an absolute socket path, e.g. unix:///run/containerd/containerd.sock`,
    );
  }
  return path;
}

/**
 * The socket to use: the given endpoint, else the first default socket that exists.
 * `exists` is injectable so the search order can be tested without the sockets.
 */
export function resolveRuntimeSocket(
  endpoint: string | undefined,
  exists: (path: string) => boolean = existsSync,
): string {
  if (endpoint !== undefined && endpoint !== '') {
    const path = parseRuntimeEndpoint(endpoint);
    if (!exists(path)) {
      throw new CriError(
        'NO_RUNTIME_SOCKET',
        `no runtime socket at ${path}: is the container runtime running? check --runtime-endpoint`,
      );
    }
    return path;
  }
  const found = DEFAULT_RUNTIME_SOCKETS.find((p) => exists(p));
  if (!found) {
    throw new CriError(
      'NO_RUNTIME_SOCKET',
      `no container runtime socket found at ${DEFAULT_RUNTIME_SOCKETS.join(', ')}; pass --runtime-endpoint unix:///path/to/runtime.sock`,
    );
  }
  return found;
}
