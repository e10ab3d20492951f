// A private upstream behind real Bearer-token auth (distribution docs/spec/auth/token.md):
// docker-registry (`auth.token`) trusts tokens signed by distribution's own token server
// (contrib/token-server of distribution 2.8.3, built from test/peers/token-server by
// scripts/install-peers.sh), all on 127.0.0.1.
//
// startTokenRegistry(options):
//   users     static users, `{ username, password }`; written bcrypt-hashed (htpasswd -Bbn) to the
//             token server's password file. Required, at least one.
//   service   the `service` the registry names in its challenge and the token's audience
//             (default 'hoist-test-registry').
//   issuer    the token's `iss`, which the registry checks (default 'hoist-test-issuer').
//   registry  extra RegistryOptions for docker-registry (not `htpasswd`; `extraConfig.auth` is
//             replaced by the token config, `extraConfig.storage` may replace the helper's).
//   startTimeoutMs  per process start-up (default 20 s).
//
// The handle: `registry` (the RegistryPeer: url, host, accessLog, waitForAccess), `realm`,
// `service`, `issuer`, `tokenServerUrl`, `storageDir`, `tokenRequests()` and
// `waitForTokenRequest(match)`, `rotateSigningKey()` (new key; the registry restarts on the same
// port and storage trusting only it, so tokens issued before are refused with 401 invalid_token),
// `output()` and `stop()`.
//
// What the token server grants (its fixed policy, no ACL file): a user may do whatever the
// request asks (pull, push) on repositories under `<username>/`, nothing elsewhere: `alice` may
// pull `alice/app`, `bob` may not. A token for a repository the user may not touch is still issued,
// with no access in it, so the registry then answers 401 `insufficient_scope`. Every token request
// needs valid Basic credentials (no anonymous pulls). Tokens live 15 minutes (`expires_in: 900`, not
// configurable), so expiry tests inject a clock into the client instead of waiting.
//
// The signing key is a P-256 key with a self-signed certificate made here with openssl: the token
// server signs with the key (and sends its public JWK in the JWT header), the registry's
// `rootcertbundle` holds the certificate. `tokenRequests()` reads the token server's own log: one
// entry per token request, with the exact scopes asked for, the user, the access granted and the
// status, and the user whose password it refused. The token server speaks plain HTTP here; the
// realm is its `/token/` path.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { goPeerBinary } from './go-peers.js';
import { freePort, removeTempDir, tempDir } from './peers.js';
import { run, startDaemon, waitUntil, type Daemon } from './process.js';
import { startRegistry, type RegistryOptions, type RegistryPeer } from './registry.js';

export interface TokenUser {
  username: string;
  password: string;
}

export interface TokenRegistryOptions {
  users: TokenUser[];
  service?: string;
  issuer?: string;
  registry?: Omit<RegistryOptions, 'htpasswd'>;
  startTimeoutMs?: number;
}

/** One token request, as the token server logged it. */
export interface TokenRequest {
  /** The request URI, e.g. /token/?scope=repository%3Aalice%2Fapp%3Apull&service=... */
  uri: string;
  /** Every `scope` query parameter, decoded, in order. */
  scopes: string[];
  service: string | undefined;
  /** The authenticated user; undefined when authentication failed or was missing. */
  user: string | undefined;
  /** The user whose password the token server refused, when one was sent and refused. */
  refusedUser?: string;
  /** The access the token grants, as the server printed it (e.g. `[{{repository  alice/app} pull}]`). */
  granted: string | undefined;
  status: number;
}

export interface TokenRegistry {
  readonly registry: RegistryPeer;
  /** The token server's base URL, http://127.0.0.1:PORT. */
  tokenServerUrl: string;
  /** The realm the registry sends in its Bearer challenge (`<tokenServerUrl>/token/`). */
  realm: string;
  service: string;
  issuer: string;
  /** The registry's storage (kept across rotateSigningKey). */
  storageDir: string;
  /** Token requests answered so far, oldest first (across rotateSigningKey). */
  tokenRequests(): TokenRequest[];
  /**
   * Waits for a token request matching `match`, which also gets the request's index in
   * tokenRequests() (to look only past an earlier count). The log line is written after the response.
   */
  waitForTokenRequest(
    match: (r: TokenRequest, index: number) => boolean,
    timeoutMs?: number,
  ): Promise<TokenRequest>;
  /**
   * Rotates the token signing key: restarts the token server with a new key and the registry
   * (same ports, same storage) trusting only the new certificate. Tokens issued before are then
   * refused (401 `invalid_token`), as a token the registry no longer accepts is before its
   * `expires_in` runs out. `registry` is the restarted peer afterwards (its access log starts anew).
   */
  rotateSigningKey(): Promise<void>;
  /** Token server and registry logs, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

const DEFAULT_SERVICE = 'hoist-test-registry';
const DEFAULT_ISSUER = 'hoist-test-issuer';
// The log lines that end a token request; each carries http.response.status.
const FINAL_MESSAGES = new Set(['get token complete', 'get token authentication challenge']);

/** Parses one logrus text line (`key=value key="quoted \"value\""`) into its fields. */
export function parseLogrusLine(line: string): Record<string, string> {
  const fields: Record<string, string> = {};
  const re = /([\w.]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) {
    const [, key = '', quoted, bare] = m;
    fields[key] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (bare ?? '');
  }
  return fields;
}

/** The token request a final log line describes, or undefined for any other line. */
export function tokenRequestFromLog(line: string): TokenRequest | undefined {
  const f = parseLogrusLine(line);
  const msg = f.msg;
  const uri = f['http.request.uri'];
  const status = f['http.response.status'];
  if (msg === undefined || !FINAL_MESSAGES.has(msg) || uri === undefined || status === undefined) {
    return undefined;
  }
  const query = new URL(uri, 'http://token.invalid').searchParams;
  return {
    uri,
    scopes: query.getAll('scope'),
    service: query.get('service') ?? undefined,
    user: f.acctSubject,
    granted: f.grantedAccess,
    status: Number(status),
  };
}

function tokenServerBinary(): string {
  const path = goPeerBinary('token-server');
  if (path === undefined) {
    throw new Error('token-server is not built: run scripts/install-peers.sh (see test/helpers/go-peers.ts)');
  }
  return path;
}

/** A P-256 signing key (SEC 1 PEM, which the token server's libtrust loads) and a self-signed certificate for it. */
async function makeSigningKey(
  dir: string,
  generation: number,
): Promise<{ keyFile: string; certFile: string }> {
  const keyFile = join(dir, `signing-${generation}.key`);
  const certFile = join(dir, `signing-${generation}.crt`);
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
  await run('openssl', [
    ...['req', '-x509', '-new', '-key', keyFile, '-out', certFile],
    ...['-days', '2', '-subj', '/CN=hoist-test-token-issuer'],
  ]);
  return { keyFile, certFile };
}

async function probeTokenServer(url: string): Promise<boolean> {
  const res = await fetch(`${url}/token/`, { signal: AbortSignal.timeout(2_000) });
  await res.body?.cancel();
  return res.status === 401; // it asks for Basic credentials
}

interface TokenServer {
  url: string;
  port: number;
  daemon: Daemon;
}

async function launchTokenServer(
  dir: string,
  issuer: string,
  keyFile: string,
  port: number,
  onRequest: (r: TokenRequest) => void,
  timeoutMs: number,
): Promise<TokenServer> {
  const url = `http://127.0.0.1:${port}`;
  // logrus writes its log to stderr; `2>&1` puts it where startDaemon splits lines (stdout).
  const daemon = startDaemon('sh', [
    ...['-c', 'exec "$0" "$@" 2>&1', tokenServerBinary()],
    ...['-addr', `127.0.0.1:${port}`, '-key', keyFile, '-passwd', join(dir, 'htpasswd')],
    ...['-realm', 'hoist-test-token', '-issuer', issuer],
  ]);
  // A refused password is logged on its own line before the request's last one; join by request id.
  const refusedUsers = new Map<string, string>();
  daemon.onStdoutLine((line) => {
    const fields = parseLogrusLine(line);
    const id = fields['http.request.id'] ?? '';
    const refused = /^error authenticating user "(.*)"/.exec(fields.msg ?? '');
    if (refused?.[1] !== undefined) refusedUsers.set(id, refused[1]);
    const request = tokenRequestFromLog(line);
    if (request === undefined) return;
    const refusedUser = refusedUsers.get(id);
    refusedUsers.delete(id);
    onRequest(refusedUser === undefined ? request : { ...request, refusedUser });
  });
  try {
    await waitUntil(`token-server on ${url}`, () => probeTokenServer(url), { daemon, timeoutMs });
  } catch (e) {
    await daemon.stop();
    throw e;
  }
  return { url, port, daemon };
}

/** Starts the token server and a docker-registry that trusts its tokens; see the header for the options. */
export async function startTokenRegistry(options: TokenRegistryOptions): Promise<TokenRegistry> {
  if (options.users.length === 0) throw new Error('startTokenRegistry: give at least one user');
  const service = options.service ?? DEFAULT_SERVICE;
  const issuer = options.issuer ?? DEFAULT_ISSUER;
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  const dir = await tempDir('hoist-token');
  // The registry's storage lives here, not in its own temp dir, so that a restart keeps it.
  const storageDir = join(dir, 'storage');
  const requests: TokenRequest[] = [];
  const waiters = new Set<{
    match: (r: TokenRequest, index: number) => boolean;
    resolve: (r: TokenRequest) => void;
  }>();
  const onRequest = (request: TokenRequest) => {
    requests.push(request);
    for (const w of waiters) {
      if (w.match(request, requests.length - 1)) {
        waiters.delete(w);
        w.resolve(request);
      }
    }
  };
  let server: TokenServer | undefined;
  let registry: RegistryPeer | undefined;
  let generation = 0;
  const startPair = async (tokenPort: number | undefined, registryPort: number | undefined) => {
    const { keyFile, certFile } = await makeSigningKey(dir, generation++);
    // freePort can race with another process taking the port; retry on that one failure.
    for (let attempt = 1; server === undefined; attempt++) {
      try {
        server = await launchTokenServer(
          dir,
          issuer,
          keyFile,
          tokenPort ?? (await freePort()),
          onRequest,
          timeoutMs,
        );
      } catch (e) {
        if (tokenPort !== undefined || attempt >= 3 || !/address already in use/.test(String(e))) throw e;
      }
    }
    registry = await startRegistry({
      ...options.registry,
      ...(registryPort !== undefined ? { port: registryPort } : {}),
      extraConfig: {
        storage: { filesystem: { rootdirectory: storageDir }, delete: { enabled: true } },
        ...options.registry?.extraConfig,
        auth: { token: { realm: `${server.url}/token/`, service, issuer, rootcertbundle: certFile } },
      },
    });
  };
  const stopPair = async () => {
    await registry?.stop();
    registry = undefined;
    await server?.daemon.stop();
    server = undefined;
  };
  try {
    const lines: string[] = [];
    for (const u of options.users) {
      lines.push((await run('htpasswd', ['-Bbn', u.username, u.password])).stdout.trim());
    }
    await writeFile(join(dir, 'htpasswd'), `${lines.join('\n')}\n`);
    await startPair(undefined, undefined);
  } catch (e) {
    await stopPair();
    await removeTempDir(dir);
    throw e;
  }
  const current = () => {
    if (server === undefined || registry === undefined) throw new Error('token registry is stopped');
    return { server, registry };
  };
  const tokenServerUrl = current().server.url;
  return {
    get registry() {
      return current().registry;
    },
    tokenServerUrl,
    realm: `${tokenServerUrl}/token/`,
    service,
    issuer,
    storageDir,
    tokenRequests: () => [...requests],
    waitForTokenRequest(match, waitMs = 5_000) {
      const seen = requests.find((r, i) => match(r, i));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<TokenRequest>((resolve, reject) => {
        const waiter = {
          match,
          resolve: (r: TokenRequest) => {
            clearTimeout(timer);
            resolve(r);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          const log = requests.map((r) => `${r.status} ${r.user ?? '-'} ${r.uri}`).join('\n');
          reject(new Error(`token server: no matching request after ${waitMs} ms; requests:\n${log}`));
        }, waitMs);
        waiters.add(waiter);
      });
    },
    async rotateSigningKey() {
      const { server: s, registry: r } = current();
      await stopPair();
      await startPair(s.port, r.port);
    },
    output: () =>
      `token-server:\n${server?.daemon.output() ?? '(stopped)'}\nregistry:\n${registry?.output() ?? '(stopped)'}`,
    async stop() {
      await stopPair();
      await removeTempDir(dir);
    },
  };
}
