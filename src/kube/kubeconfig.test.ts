import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeConfigError, type KubeConfigErrorCode } from './errors.js';
import { resolveKubeConfig } from './kubeconfig.js';
import { inClusterConfig, loadKubeConfig } from './load-config.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const b64 = (s: string) => Buffer.from(s).toString('base64');

const MAIN = `
apiVersion: v1
kind: Config
current-context: dev
clusters:
  - name: dev
    cluster:
      server: https://127.0.0.1:6443/
      certificate-authority-data: ${b64(CA)}
  - name: rel
    cluster:
      server: https://10.0.0.1
      certificate-authority: certs/ca.pem
      tls-server-name: kubernetes
  - name: open
    cluster: { server: "http://127.0.0.1:8080", insecure-skip-tls-verify: true }
users:
  - name: admin
    user: { token: s3cret }
  - name: certs
    user:
      client-certificate: certs/client.pem
      client-key: /abs/client-key.pem
      tokenFile: tok
  - name: sso
    user:
      exec: { command: aws, apiVersion: client.authentication.k8s.io/v1 }
  - name: halfcert
    user: { client-certificate-data: ${b64(CA)} }
contexts:
  - name: dev
    context: { cluster: dev, user: admin, namespace: team }
  - name: rel
    context: { cluster: rel, user: certs }
  - name: open
    context: { cluster: open }
  - name: sso
    context: { cluster: dev, user: sso }
  - name: half
    context: { cluster: dev, user: halfcert }
  - name: ghost
    context: { cluster: nowhere, user: admin }
`;

function rejectsWith(code: KubeConfigErrorCode, fn: () => unknown, includes?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof KubeConfigError, String(err));
    assert.equal(err.code, code, err.message);
    if (includes) assert.match(err.message, includes);
    return true;
  });
}

describe('resolveKubeConfig', () => {
  const file = { path: '/home/u/.kube/config', text: MAIN };

  it('uses current-context: server, inline CA, token, namespace', () => {
    assert.deepEqual(resolveKubeConfig([file]), {
      context: 'dev',
      server: 'https://127.0.0.1:6443',
      ca: { pem: CA },
      token: 's3cret',
      namespace: 'team',
    });
  });

  it('resolves relative paths against the kubeconfig directory; namespace defaults to "default"', () => {
    assert.deepEqual(resolveKubeConfig([file], { context: 'rel' }), {
      context: 'rel',
      server: 'https://10.0.0.1',
      ca: { file: '/home/u/.kube/certs/ca.pem' },
      tlsServerName: 'kubernetes',
      clientCert: { file: '/home/u/.kube/certs/client.pem' },
      clientKey: { file: '/abs/client-key.pem' },
      tokenFile: '/home/u/.kube/tok',
      namespace: 'default',
    });
  });

  it('allows a context without a user, and insecure-skip-tls-verify', () => {
    const plan = resolveKubeConfig([file], { context: 'open' });
    assert.equal(plan.insecureSkipTlsVerify, true);
    assert.equal(plan.server, 'http://127.0.0.1:8080');
    assert.equal(plan.token, undefined);
  });

  it('refuses exec plugins with what to do instead', () => {
    rejectsWith(
      'KUBECONFIG_UNSUPPORTED',
      () => resolveKubeConfig([file], { context: 'sso' }),
      /exec.*kubectl create token/,
    );
  });

  it('refuses impersonation and basic auth rather than ignore them', () => {
    for (const user of ['{ token: t, as: root }', '{ username: a, password: b }']) {
      const text = `current-context: c\nclusters: [{name: k, cluster: {server: "https://h"}}]\nusers: [{name: u, user: ${user}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n`;
      rejectsWith('KUBECONFIG_UNSUPPORTED', () => resolveKubeConfig([{ path: '/k', text }]));
    }
  });

  it('names the contexts when the one asked for is missing', () => {
    rejectsWith(
      'KUBECONFIG_CONTEXT_NOT_FOUND',
      () => resolveKubeConfig([file], { context: 'prod' }),
      /'prod'.*dev, rel/,
    );
    rejectsWith(
      'KUBECONFIG_CONTEXT_NOT_FOUND',
      () => resolveKubeConfig([{ path: '/k', text: 'contexts: []' }]),
      /--context/,
    );
  });

  it('refuses broken references and broken files', () => {
    rejectsWith(
      'KUBECONFIG_INVALID',
      () => resolveKubeConfig([file], { context: 'ghost' }),
      /cluster 'nowhere'/,
    );
    rejectsWith(
      'KUBECONFIG_INVALID',
      () => resolveKubeConfig([file], { context: 'half' }),
      /certificate without a key/,
    );
    rejectsWith(
      'KUBECONFIG_INVALID',
      () => resolveKubeConfig([{ path: '/k', text: 'clusters: [' }]),
      /^\/k: not valid YAML/,
    );
    rejectsWith('KUBECONFIG_INVALID', () => resolveKubeConfig([{ path: '/k', text: '- a' }]));
    const badData = MAIN.replace(b64(CA), 'bm90IHBlbQ==');
    rejectsWith(
      'KUBECONFIG_INVALID',
      () => resolveKubeConfig([{ path: '/k', text: badData }]),
      /base64-encoded PEM/,
    );
  });

  it('merges several files: the first file to name an entry wins', () => {
    const first = {
      path: '/a/one',
      text: 'clusters: [{name: dev, cluster: {server: "https://first", certificate-authority: ca.pem}}]\n',
    };
    const plan = resolveKubeConfig([first, file]);
    assert.equal(plan.context, 'dev'); // from the second file: the first has none
    assert.equal(plan.server, 'https://first');
    assert.deepEqual(plan.ca, { file: '/a/ca.pem' }); // relative to the file that named it
    assert.equal(plan.token, 's3cret');
  });
});

describe('loadKubeConfig', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoist-kubeconfig-'));
    await mkdir(join(dir, 'certs'));
    await writeFile(join(dir, 'certs', 'ca.pem'), CA);
    await writeFile(join(dir, 'tok'), 'file-token\n');
    const text = `current-context: c
clusters: [{name: k, cluster: {server: "https://127.0.0.1:1", certificate-authority: certs/ca.pem}}]
users: [{name: u, user: {tokenFile: tok}}]
contexts: [{name: c, context: {cluster: k, user: u, namespace: ns1}}]
`;
    await writeFile(join(dir, 'config'), text);
    await mkdir(join(dir, 'home', '.kube'), { recursive: true });
    const home = text
      .replace('ns1', 'fromhome')
      .replace('certs/ca.pem', join(dir, 'certs', 'ca.pem'))
      .replace('tokenFile: tok', `tokenFile: ${join(dir, 'tok')}`);
    await writeFile(join(dir, 'home', '.kube', 'config'), home);
    await mkdir(join(dir, 'sa'));
    await writeFile(join(dir, 'sa', 'token'), 'sa-token');
    await writeFile(join(dir, 'sa', 'ca.crt'), CA);
    await writeFile(join(dir, 'sa', 'namespace'), 'hoist-system\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const envOf = (env: Record<string, string>, home = join(dir, 'nohome')) => ({
    env,
    homeDir: home,
    serviceAccountDir: join(dir, 'sa'),
  });

  it('reads an explicit file and the files it names', async () => {
    const config = await loadKubeConfig({ kubeconfig: join(dir, 'config') }, envOf({}));
    assert.deepEqual(config, {
      server: 'https://127.0.0.1:1',
      namespace: 'ns1',
      caPem: CA,
      tokenFile: join(dir, 'tok'),
    });
  });

  it('fails clearly on a missing explicit file', async () => {
    await assert.rejects(loadKubeConfig({ kubeconfig: join(dir, 'nope') }, envOf({})), {
      code: 'KUBECONFIG_NOT_FOUND',
    });
  });

  it('searches $KUBECONFIG (skipping missing files), then ~/.kube/config, then in-cluster', async () => {
    const viaEnv = await loadKubeConfig(
      {},
      envOf({ KUBECONFIG: `${join(dir, 'missing')}:${join(dir, 'config')}` }),
    );
    assert.equal(viaEnv.namespace, 'ns1');
    const viaHome = await loadKubeConfig({}, envOf({}, join(dir, 'home')));
    assert.equal(viaHome.namespace, 'fromhome');
    const viaPod = await loadKubeConfig(
      {},
      envOf({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }),
    );
    assert.equal(viaPod.server, 'https://10.96.0.1:443');
    await assert.rejects(loadKubeConfig({}, envOf({})), { code: 'NO_KUBECONFIG', message: /--kubeconfig/ });
  });

  it('in-cluster: service account token file, CA, namespace; IPv6 host in brackets', async () => {
    const config = await inClusterConfig(
      envOf({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }),
    );
    assert.deepEqual(config, {
      server: 'https://[fd00::1]:6443',
      tokenFile: join(dir, 'sa', 'token'),
      caPem: CA,
      namespace: 'hoist-system',
    });
    await assert.rejects(loadKubeConfig({ inCluster: true }, envOf({})), { code: 'IN_CLUSTER_UNAVAILABLE' });
    await assert.rejects(
      inClusterConfig({
        ...envOf({ KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' }),
        serviceAccountDir: '/nonexistent',
      }),
      { code: 'IN_CLUSTER_UNAVAILABLE', message: /token/ },
    );
  });
});
