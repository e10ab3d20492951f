// A real Kubernetes control plane for tests: etcd and kube-apiserver built from test/peers/kube
// (scripts/install-peers.sh), on 127.0.0.1 only, with TLS from a CA made here, token auth, RBAC and
// service-account tokens (TokenRequest, signed by a key made here). No controller-manager and no
// kubelet: namespaces get no `default` service account and no pod ever runs.
import { after, before } from 'node:test';
import { request } from 'node:https';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, removeTempDir, tempDir } from './peers.js';
import { goPeerBinary, type GoPeer } from './go-peers.js';
import { CommandError, run, startDaemon, waitUntil, type Daemon } from './process.js';

export interface KubeApiServerOptions {
  /** Extra kube-apiserver flags, appended after the helper's own (a later flag wins). */
  extraArgs?: string[];
  /** Etcd and API server start-up, each; default 90 s (2 slow cores under a parallel suite). */
  startTimeoutMs?: number;
}

export interface ApiResponse {
  status: number;
  body: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface KubeApiServer {
  /** https://127.0.0.1:PORT */
  url: string;
  caFile: string;
  caPem: string;
  /** A bearer token for user `hoist-admin` in group `system:masters`. */
  adminToken: string;
  /** Kubeconfig file for the admin token (certificate-authority-data embedded). */
  adminKubeconfig: string;
  /** How long start-up took: certificates, etcd, API server ready, bootstrap objects present. */
  startupMs: number;
  /** Process ids of kube-apiserver and etcd (e.g. to check what they listen on). */
  pids: { apiserver: number; etcd: number };
  /** Creates the namespace and service account if missing, gets a token through the TokenRequest API, writes a kubeconfig for it. */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /**
   * Runs the real kubectl with --kubeconfig admin (or the given one); a non-zero exit is returned,
   * not thrown. `plugin: true` passes the kubeconfig as $KUBECONFIG instead: kubectl refuses flags
   * before a plugin's name and hands its plugins the environment, not its flags. `env` adds
   * variables (PATH, for plugin discovery).
   */
  kubectl(
    args: string[],
    opts?: { kubeconfig?: string; input?: string; plugin?: boolean; env?: Record<string, string> },
  ): Promise<KubectlResult>;
  /** One request to the API with TLS verified against the CA; the admin token unless `token` is given. */
  request(method: string, path: string, opts?: { body?: unknown; token?: string }): Promise<ApiResponse>;
  /** API server and etcd logs so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

const DEFAULT_START_TIMEOUT_MS = 90_000;
const SERVICE_CLUSTER_IP_RANGE = '10.96.0.0/24';
const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
// TokenRequest's minimum is 10 minutes; an hour outlives any test.
const TOKEN_EXPIRATION_SECONDS = 3600;

function binary(name: GoPeer): string {
  const path = goPeerBinary(name);
  if (path === undefined) {
    throw new Error(`${name} is not built: run scripts/install-peers.sh (see test/helpers/go-peers.ts)`);
  }
  return path;
}

/** A CA, a serving certificate for 127.0.0.1 signed by it, and a service-account key pair. */
async function makeCertificates(dir: string): Promise<{
  caFile: string;
  certFile: string;
  keyFile: string;
  saPublic: string;
  saPrivate: string;
}> {
  const p = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    ...['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=hoist-test-ca'],
    ...['-keyout', p('ca.key'), '-out', p('ca.crt')],
    ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  ]);
  await run('openssl', [
    ...['req', '-new', ...ec, '-subj', '/CN=kube-apiserver'],
    ...['-keyout', p('apiserver.key'), '-out', p('apiserver.csr')],
  ]);
  // The names a client may dial: loopback, and the in-cluster service names for completeness.
  await writeFile(
    p('apiserver.ext'),
    [
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,' +
        'DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  await run('openssl', [
    ...['x509', '-req', '-in', p('apiserver.csr'), '-out', p('apiserver.crt'), '-days', '2'],
    ...['-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-extfile', p('apiserver.ext')],
  ]);
  const sa = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  await run('openssl', ['genpkey', ...sa, '-out', p('sa.key')]);
  await run('openssl', ['pkey', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub')]);
  return {
    caFile: p('ca.crt'),
    certFile: p('apiserver.crt'),
    keyFile: p('apiserver.key'),
    saPublic: p('sa.pub'),
    saPrivate: p('sa.key'),
  };
}

/** A kubeconfig (JSON, which is YAML) for one server and one bearer token. */
function kubeconfig(url: string, caPem: string, user: string, token: string): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'hoist-test',
          cluster: { server: url, 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
        },
      ],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: user, context: { cluster: 'hoist-test', user } }],
      'current-context': user,
    },
    null,
    2,
  );
}

function apiRequest(
  url: string,
  caPem: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiResponse> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, url),
      {
        method,
        ca: caPem,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

async function startEtcd(dir: string, timeoutMs: number): Promise<{ daemon: Daemon; url: string }> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const url = `http://127.0.0.1:${clientPort}`;
  const daemon = startDaemon(binary('etcd'), [
    '--data-dir',
    join(dir, 'etcd'),
    '--listen-client-urls',
    url,
    '--listen-peer-urls',
    `http://127.0.0.1:${peerPort}`,
  ]);
  try {
    await waitUntil(
      `etcd on ${url}`,
      async () => {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      },
      { daemon, timeoutMs, intervalMs: 50 },
    );
  } catch (e) {
    await daemon.stop();
    throw e;
  }
  return { daemon, url };
}

/**
 * Starts etcd and kube-apiserver on free loopback ports and waits until the API server is ready
 * (`/readyz`), the `default` namespace exists and the `system:` RBAC bootstrap roles are in place.
 */
export async function startKubeApiServer(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  // freePort can race with another process taking the port; retry on that one failure.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      if (attempt >= 3 || !/address already in use/.test(String(e))) throw e;
    }
  }
}

async function startOnce(opts: KubeApiServerOptions): Promise<KubeApiServer> {
  const startedAt = Date.now();
  const timeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const apiserverBin = binary('kube-apiserver');
  const kubectlBin = binary('kubectl');
  const dir = await tempDir('hoist-kube');
  const daemons: Daemon[] = [];
  const stop = async () => {
    for (const d of [...daemons].reverse()) await d.stop();
    await removeTempDir(dir);
  };

  try {
    const certs = await makeCertificates(dir);
    const caPem = await readFile(certs.caFile, 'utf8');
    const adminToken = randomBytes(24).toString('hex');
    const tokenFile = join(dir, 'tokens.csv');
    // token,user,uid,"group,..." (kube-apiserver --token-auth-file format)
    await writeFile(tokenFile, `${adminToken},hoist-admin,hoist-admin,"system:masters"\n`, { mode: 0o600 });

    const etcd = await startEtcd(dir, timeoutMs);
    daemons.push(etcd.daemon);

    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    const apiserver = startDaemon(apiserverBin, [
      `--etcd-servers=${etcd.url}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      '--advertise-address=127.0.0.1',
      // Endpoints may not hold a loopback address, and nothing in-cluster dials the API here.
      '--endpoint-reconciler-type=none',
      `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${certs.certFile}`,
      `--tls-private-key-file=${certs.keyFile}`,
      `--client-ca-file=${certs.caFile}`,
      `--token-auth-file=${tokenFile}`,
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${certs.saPublic}`,
      `--service-account-signing-key-file=${certs.saPrivate}`,
      '--authorization-mode=Node,RBAC',
      // The recommended set is on by default; NodeRestriction pairs with the Node authorizer.
      '--enable-admission-plugins=NodeRestriction',
      // Agents run privileged on a node; their manifests must pass validation (as with kubeadm).
      '--allow-privileged=true',
      '--profiling=false',
      ...(opts.extraArgs ?? []),
    ]);
    daemons.push(apiserver);

    const api: KubeApiServer['request'] = (method, path, o = {}) =>
      apiRequest(url, caPem, o.token ?? adminToken, method, path, o.body);
    const ready = async (path: string) => (await api('GET', path)).status === 200;
    await waitUntil(`kube-apiserver ${url}/readyz`, () => ready('/readyz'), {
      daemon: apiserver,
      timeoutMs,
      intervalMs: 100,
    });
    // /readyz covers the RBAC bootstrap hook; the default namespace comes a moment later.
    await waitUntil(
      'default namespace and system: RBAC roles',
      async () =>
        (await ready('/api/v1/namespaces/default')) &&
        (await ready('/apis/rbac.authorization.k8s.io/v1/clusterroles/system:node')) &&
        (await ready('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:discovery')),
      { daemon: apiserver, timeoutMs, intervalMs: 100 },
    );

    const adminKubeconfig = join(dir, 'admin.kubeconfig');
    await writeFile(adminKubeconfig, kubeconfig(url, caPem, 'hoist-admin', adminToken), { mode: 0o600 });

    const createIfMissing = async (path: string, body: unknown) => {
      const res = await api('POST', path, { body });
      if (res.status !== 201 && res.status !== 409) {
        throw new Error(`POST ${path} answered ${res.status}: ${res.body}`);
      }
    };

    const serviceAccountKubeconfig: KubeApiServer['serviceAccountKubeconfig'] = async (namespace, name) => {
      await createIfMissing('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: namespace },
      });
      const sas = `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts`;
      await createIfMissing(sas, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
      const tokenPath = `${sas}/${encodeURIComponent(name)}/token`;
      const res = await api('POST', tokenPath, {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: TOKEN_EXPIRATION_SECONDS },
        },
      });
      const token = (res.json as { status?: { token?: string } } | undefined)?.status?.token;
      if (res.status !== 201 || token === undefined) {
        throw new Error(`POST ${tokenPath} answered ${res.status}: ${res.body}`);
      }
      const path = join(dir, `sa-${namespace}-${name}.kubeconfig`);
      const user = `system:serviceaccount:${namespace}:${name}`;
      await writeFile(path, kubeconfig(url, caPem, user, token), { mode: 0o600 });
      return path;
    };

    const kubectl: KubeApiServer['kubectl'] = async (args, o = {}) => {
      // HOME under the temp dir: kubectl's discovery cache stays out of the real ~/.kube.
      const config = o.kubeconfig ?? adminKubeconfig;
      const env = { ...process.env, HOME: dir, KUBECONFIG: o.plugin ? config : '', ...o.env };
      const argv = o.plugin ? args : ['--kubeconfig', config, ...args];
      try {
        const r = await run(kubectlBin, argv, { env, timeoutMs: 60_000, input: o.input });
        return { ...r, code: 0 };
      } catch (e) {
        if (e instanceof CommandError && e.exitCode !== null) {
          return { stdout: e.stdout, stderr: e.stderr, code: e.exitCode };
        }
        throw e;
      }
    };

    return {
      url,
      caFile: certs.caFile,
      caPem,
      adminToken,
      adminKubeconfig,
      startupMs: Date.now() - startedAt,
      pids: { apiserver: apiserver.pid, etcd: etcd.daemon.pid },
      serviceAccountKubeconfig,
      kubectl,
      request: api,
      output: () => `--- kube-apiserver ---\n${apiserver.output()}\n--- etcd ---\n${etcd.daemon.output()}`,
      stop,
    };
  } catch (e) {
    const logs = daemons.map((d) => d.output()).join('\n');
    await stop();
    if (e instanceof Error && !e.message.includes('output:')) e.message += `\n${logs}`;
    throw e;
  }
}

/**
 * One API server for every test in the enclosing `describe`: call it in the describe body; it
 * starts the server in a before() hook (when the peers are built; tests still call requireGoPeer)
 * and stops it in after(). Start-up costs seconds, so share it where tests can use separate
 * namespaces.
 */
export function shareKubeApiServer(opts: KubeApiServerOptions = {}): () => KubeApiServer {
  let server: KubeApiServer | undefined;
  before(async () => {
    if (goPeerBinary('kube-apiserver') === undefined || goPeerBinary('etcd') === undefined) return;
    if (goPeerBinary('kubectl') === undefined) return;
    server = await startKubeApiServer(opts);
  });
  after(async () => {
    await server?.stop();
  });
  return () => {
    if (server === undefined) throw new Error('shareKubeApiServer: the API server did not start');
    return server;
  };
}
