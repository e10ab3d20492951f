// Launches a real upstream registry: distribution 2.8 (`docker-registry serve CONFIG.yml`) on
// loopback with filesystem storage, optionally behind htpasswd auth or as a pull-through proxy.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, removeTempDir, tempDir } from './peers.js';
import type { HostPlacement } from './netns.js';
import type { Daemon } from './process.js';
import { run, startDaemon, waitUntil } from './process.js';

export interface RegistryOptions {
  /** Protect the registry with basic auth (`auth.htpasswd`, a bcrypt file made with htpasswd -Bbn). */
  htpasswd?: { username: string; password: string };
  /** More users of the same htpasswd file. */
  moreUsers?: Array<{ username: string; password: string }>;
  /** Run as a pull-through cache of this registry. distribution refuses to start while it is down. */
  proxyRemoteUrl?: string;
  proxyUsername?: string;
  proxyPassword?: string;
  /** Extra top-level config keys, merged over the generated ones (shallow, per top-level key). */
  extraConfig?: Record<string, unknown>;
  startTimeoutMs?: number;
  /**
   * Listen on this port instead of a free one (a port the fetch standard blocks; or to restart a
   * registry where clients expect it). Fails with
   * distribution's "address already in use" when it is taken; no retry on another port.
   */
  port?: number;
  /**
   * Run on another host (test/helpers/netns.ts): listen on its address and port, start and probe
   * through its command wrapper. The registry is then not reachable from this process.
   */
  placement?: HostPlacement;
}

/** One line of the registry's own access log (combined log format, written on stdout). */
export interface AccessLogEntry {
  /** The client's address as the registry saw it (without port), e.g. 127.0.0.1. */
  remoteAddr: string;
  method: string;
  /** Request path without the query string, e.g. /v2/repo/blobs/sha256:... */
  path: string;
  /** Raw query string without '?', '' when none. */
  query: string;
  status: number;
  /** Response body bytes, 0 when the log shows '-'. */
  bytes: number;
  userAgent: string;
}

export interface RegistryPeer {
  /** http://127.0.0.1:PORT (the placement's address when placed) */
  url: string;
  /** 127.0.0.1:PORT, the registry host as image references name it. */
  host: string;
  port: number;
  storageDir: string;
  configPath: string;
  /** Requests the registry logged so far, oldest first. */
  accessLog(): AccessLogEntry[];
  /**
   * Waits for a logged request matching `match`. distribution writes the access-log line after the
   * response is complete, so a client can see the response before the line exists: await this
   * instead of reading accessLog() right after a request.
   */
  waitForAccess(match: (e: AccessLogEntry) => boolean, timeoutMs?: number): Promise<AccessLogEntry>;
  /** The registry's application log (stderr) and access log, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

// 127.0.0.1 - - [28/Nov/2026:20:28:30 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"
const ACCESS_LINE = /^(\S+) \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"/;

export function parseAccessLogLine(line: string): AccessLogEntry | undefined {
  const m = ACCESS_LINE.exec(line);
  if (m === null) return undefined;
  const [, remoteAddr = '', method = '', uri = '', status = '0', bytes = '-', userAgent = ''] = m;
  const q = uri.indexOf('?');
  return {
    remoteAddr,
    method,
    path: q === -1 ? uri : uri.slice(0, q),
    query: q === -1 ? '' : uri.slice(q + 1),
    status: Number(status),
    bytes: bytes === '-' ? 0 : Number(bytes),
    userAgent,
  };
}

function buildConfig(dir: string, addr: string, opts: RegistryOptions, htpasswdPath?: string) {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: join(dir, 'storage') },
      delete: { enabled: true },
    },
    http: { addr, secret: 'hoist-test-secret' },
  };
  if (opts.htpasswd !== undefined && htpasswdPath !== undefined) {
    config.auth = { htpasswd: { realm: 'hoist-test', path: htpasswdPath } };
  }
  if (opts.proxyRemoteUrl !== undefined) {
    const proxy: Record<string, string> = { remoteurl: opts.proxyRemoteUrl };
    if (opts.proxyUsername !== undefined) proxy.username = opts.proxyUsername;
    if (opts.proxyPassword !== undefined) proxy.password = opts.proxyPassword;
    config.proxy = proxy;
  }
  return { ...config, ...opts.extraConfig };
}

/** node:http, not fetch: fetch refuses the ports the fetch standard blocks (6000, 10080, ...). */
function probe(url: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = get(`${url}/v2/`, { timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 || res.statusCode === 401);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 2 s')));
    req.on('error', reject);
  });
}

/** The same probe from inside the placement's host, which this process cannot reach. */
async function probeFrom(place: HostPlacement, url: string): Promise<boolean> {
  const c = place.command('curl', [
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '--max-time',
    '2',
    `${url}/v2/`,
  ]);
  const { stdout } = await run(c.cmd, c.args, { timeoutMs: 5_000 });
  return stdout === '200' || stdout === '401';
}

async function launch(dir: string, opts: RegistryOptions, htpasswdPath?: string): Promise<RegistryPeer> {
  const place = opts.placement;
  const port = place?.port ?? opts.port ?? (await freePort());
  const host = `${place?.address ?? '127.0.0.1'}:${port}`;
  const url = `http://${host}`;
  const configPath = join(dir, 'config.yml');
  await writeFile(configPath, stringify(buildConfig(dir, host, opts, htpasswdPath)));

  const cmd = place?.command('docker-registry', ['serve', configPath]);
  const daemon: Daemon = cmd
    ? startDaemon(cmd.cmd, cmd.args)
    : startDaemon('docker-registry', ['serve', configPath]);
  // Access log goes to stdout; the logrus application log goes to stderr.
  const entries: AccessLogEntry[] = [];
  const waiters = new Set<{ match: (e: AccessLogEntry) => boolean; resolve: (e: AccessLogEntry) => void }>();
  daemon.onStdoutLine((line) => {
    const entry = parseAccessLogLine(line);
    if (entry === undefined) return;
    entries.push(entry);
    for (const w of waiters) {
      if (w.match(entry)) {
        waiters.delete(w);
        w.resolve(entry);
      }
    }
  });

  try {
    await waitUntil(`docker-registry on ${host}`, () => (place ? probeFrom(place, url) : probe(url)), {
      daemon,
      timeoutMs: opts.startTimeoutMs ?? 20_000,
    });
    if (opts.port !== undefined) {
      // On a fixed port another process may have answered the probe: ours must have logged it.
      await waitUntil(
        `docker-registry on ${host} logging the probe`,
        async () => entries.some((e) => e.path === '/v2/'),
        { daemon, timeoutMs: 5_000 },
      );
    }
  } catch (e) {
    await daemon.stop();
    throw e;
  }

  return {
    url,
    host,
    port,
    storageDir: join(dir, 'storage'),
    configPath,
    accessLog: () => [...entries],
    output: () => daemon.output(),
    waitForAccess(match, timeoutMs = 5_000) {
      const seen = entries.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<AccessLogEntry>((resolve, reject) => {
        const waiter = {
          match,
          resolve: (e: AccessLogEntry) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          const log = entries.map((e) => `${e.method} ${e.path} ${e.status}`).join('\n');
          reject(
            new Error(`registry ${host}: no matching access-log entry after ${timeoutMs} ms; log:\n${log}`),
          );
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    async stop() {
      await daemon.stop();
    },
  };
}

/** Starts docker-registry on a free loopback port (or `opts.port`) and waits until `GET /v2/` answers (200 or 401). */
export async function startRegistry(opts: RegistryOptions = {}): Promise<RegistryPeer> {
  const dir = await tempDir('hoist-registry');
  try {
    let htpasswdPath: string | undefined;
    if (opts.htpasswd !== undefined) {
      htpasswdPath = join(dir, 'htpasswd');
      let lines = '';
      for (const user of [opts.htpasswd, ...(opts.moreUsers ?? [])]) {
        lines += (await run('htpasswd', ['-Bbn', user.username, user.password])).stdout.trim() + '\n';
      }
      await writeFile(htpasswdPath, lines);
    }
    // freePort can race with another process taking the port; retry on that one failure.
    for (let attempt = 1; ; attempt++) {
      try {
        const peer = await launch(dir, opts, htpasswdPath);
        return {
          ...peer,
          async stop() {
            await peer.stop();
            await removeTempDir(dir);
          },
        };
      } catch (e) {
        if (attempt >= 3 || opts.port !== undefined || !/address already in use/.test(String(e))) throw e;
      }
    }
  } catch (e) {
    await removeTempDir(dir);
    throw e;
  }
}

export interface FetchedManifest {
  status: number;
  contentType: string;
  /** Docker-Content-Digest header ('' when absent). */
  digest: string;
  body: string;
}

/** GET /v2/<repo>/manifests/<ref> with the given Accept types (and basic auth when given). */
export async function fetchManifest(
  peer: Pick<RegistryPeer, 'url'>,
  repo: string,
  ref: string,
  accept: string[],
  creds?: { username: string; password: string },
): Promise<FetchedManifest> {
  const headers: Record<string, string> = { accept: accept.join(', ') };
  if (creds !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
  }
  const res = await fetch(`${peer.url}/v2/${repo}/manifests/${ref}`, {
    headers,
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    digest: res.headers.get('docker-content-digest') ?? '',
    body: await res.text(),
  };
}

/** Pushes one blob with a monolithic upload (POST then PUT ?digest=); returns its digest. */
export async function pushBlob(
  peer: Pick<RegistryPeer, 'url'>,
  repo: string,
  data: Buffer,
  creds?: { username: string; password: string },
): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const headers: Record<string, string> = {};
  if (creds !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
  }
  const start = await fetch(`${peer.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  if (start.status !== 202) throw new Error(`upload start answered ${start.status}`);
  const location = new URL(start.headers.get('location') ?? '', peer.url);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: data,
  });
  if (put.status !== 201) throw new Error(`upload answered ${put.status}: ${await put.text()}`);
  return digest;
}
