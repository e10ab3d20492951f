// The peers built from the pinned Go modules under test/peers/ (scripts/install-peers.sh) work as
// the other tests use them: the API server with TLS, token auth, RBAC and TokenRequest; kubectl;
// helm; containerd 2.x's CRI, which reports pinned images and pulls through hosts.toml.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startContainerd, writeHostsToml } from './helpers/containerd.js';
import { criClient } from './helpers/cri.js';
import { goPeerBinary, requireGoPeer } from './helpers/go-peers.js';
import { buildImage, pushImage } from './helpers/images.js';
import { shareKubeApiServer } from './helpers/kube.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { run } from './helpers/process.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };

/** The version a wrapper module's go.mod pins for `module`. */
function pinned(peerModule: string, module: string): string {
  const goMod = readFileSync(fileURLToPath(new URL(`./peers/${peerModule}/go.mod`, import.meta.url)), 'utf8');
  const m = new RegExp(`^\\s*(?:require\\s+)?${module.replaceAll('.', '\\.')} (v\\S+)`, 'm').exec(goMod);
  assert.ok(m?.[1], `${module} pinned in test/peers/${peerModule}/go.mod`);
  return m[1];
}

/** Local addresses of the TCP sockets `pid` listens on (`ss -ltnp`). */
async function listeningAddresses(pid: number): Promise<string[]> {
  const { stdout } = await run('ss', ['-Hltnp']);
  return stdout
    .split('\n')
    .filter((line) => line.includes(`pid=${pid},`))
    .map((line) => line.trim().split(/\s+/)[3] ?? '');
}

/** GET over TLS trusting only `ca` (undefined: the system roots); the status, or the TLS error. */
function getWithCa(url: string, ca: string | undefined, token: string): Promise<number | Error> {
  return new Promise((resolve) => {
    const req = request(url, { ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (e) => resolve(e));
    req.end();
  });
}

describe('Kubernetes API server, etcd and kubectl from test/peers/kube', () => {
  // One control plane for the suite, as other test files share it.
  const kube = shareKubeApiServer();
  const peers = (t: TestContext) => requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl');

  it('serves /version over TLS that verifies against caFile only', TIMEOUT, async (t) => {
    if (!peers(t)) return;
    t.diagnostic(`etcd + kube-apiserver were ready in ${kube().startupMs} ms`);
    // kubectl trusts only the kubeconfig's certificate-authority-data.
    const version = await kube().kubectl(['get', '--raw', '/version']);
    assert.equal(version.code, 0, version.stderr);
    const info = JSON.parse(version.stdout) as { gitVersion: string };
    assert.equal(info.gitVersion, pinned('kube', 'k8s.io/kubernetes'));
    assert.equal(await getWithCa(`${kube().url}/version`, kube().caPem, kube().adminToken), 200);
    const untrusted = await getWithCa(`${kube().url}/version`, undefined, kube().adminToken);
    assert.ok(untrusted instanceof Error, 'a client without the CA refuses the certificate');
  });

  it('lists namespaces with kubectl and the admin kubeconfig', TIMEOUT, async (t) => {
    if (!peers(t)) return;
    const ns = await kube().kubectl(['get', 'ns', '-o', 'name']);
    assert.equal(ns.code, 0, ns.stderr);
    assert.match(ns.stdout, /^namespace\/default$/m);
    assert.match(ns.stdout, /^namespace\/kube-system$/m);
  });

  it('authenticates a TokenRequest service account that RBAC forbids to list secrets', TIMEOUT, async (t) => {
    if (!peers(t)) return;
    const sa = await kube().serviceAccountKubeconfig('hoist-test', 'agent');
    const whoami = await kube().kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], {
      kubeconfig: sa,
    });
    assert.equal(whoami.code, 0, whoami.stderr);
    assert.equal(whoami.stdout, 'system:serviceaccount:hoist-test:agent');
    const secrets = await kube().kubectl(['get', 'secrets', '--all-namespaces'], { kubeconfig: sa });
    assert.notEqual(secrets.code, 0);
    assert.match(secrets.stderr, /forbidden/i);
    assert.match(secrets.stderr, /cannot list resource "secrets"/);
    const adminSecrets = await kube().kubectl(['get', 'secrets', '--all-namespaces']);
    assert.equal(adminSecrets.code, 0, adminSecrets.stderr);
    // Idempotent: the namespace and service account exist now; a second token still works.
    const again = await kube().serviceAccountKubeconfig('hoist-test', 'agent');
    assert.equal((await kube().kubectl(['auth', 'whoami'], { kubeconfig: again })).code, 0);
  });

  it('listens on loopback only', TIMEOUT, async (t) => {
    if (!peers(t)) return;
    for (const [name, pid] of Object.entries(kube().pids)) {
      const addresses = await listeningAddresses(pid);
      assert.ok(addresses.length > 0, `${name} listens somewhere`);
      for (const a of addresses)
        assert.match(a, /^(127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):\d+$/, `${name}: ${a}`);
    }
  });
});

describe('helm from test/peers/helm', () => {
  it('runs and reports the pinned version', async (t) => {
    if (!requireGoPeer(t, 'helm')) return;
    const work = await testTempDir(t, 'hoist-helm');
    const helm = goPeerBinary('helm');
    assert.ok(helm);
    const env = {
      ...process.env,
      HELM_CACHE_HOME: join(work, 'cache'),
      HELM_CONFIG_HOME: join(work, 'config'),
    };
    const { stdout } = await run(helm, ['version', '--template', '{{.Version}}'], { env });
    assert.equal(stdout.trim(), pinned('helm', 'helm.sh/helm/v3'));
  });
});

describe('containerd 2.x from test/peers/containerd2', () => {
  it(
    'answers CRI Version, pulls through hosts.toml and reports a labelled image as pinned',
    TIMEOUT,
    async (t) => {
      if (!requireGoPeer(t, 'containerd2', 'ctr2', 'containerd-shim-runc-v2')) return;
      if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
      if (!requireRoot(t, 'containerd mounts snapshots')) return;
      const work = await testTempDir(t, 'hoist-ctd2');
      const registry = await startRegistry();
      t.after(() => registry.stop());
      const image = await buildImage(join(work, 'app'), {
        tag: 'v1',
        layers: [{ files: [{ path: 'a.bin', size: 100_000, seed: 'ctd2-a' }] }],
      });
      await pushImage(image.dir, 'v1', `${registry.host}/team/app:v1`);

      const ctd = await startContainerd({ flavor: '2.x' });
      t.after(() => ctd.stop());
      const cri = criClient(ctd.socket);
      t.after(() => cri.close());

      const version = await cri.version();
      assert.equal(version.runtimeName, 'containerd');
      assert.equal(version.runtimeVersion, pinned('containerd2', 'github.com/containerd/containerd/v2'));
      assert.equal(version.runtimeApiVersion, 'v1');

      // The name resolves nowhere: the pull succeeds only through the hosts.toml mirror entry.
      const ref = 'hoist-test.invalid/team/app:v1';
      await writeHostsToml(ctd.hostsDir, 'hoist-test.invalid', 'https://hoist-test.invalid', [registry.url]);
      const imageId = await cri.pullImage(ref);
      assert.equal(imageId, image.manifests[0]?.config.digest);
      const viaMirror = await registry.waitForAccess(
        (e) => e.userAgent.startsWith('containerd/') && e.path.startsWith('/v2/team/app/manifests/'),
      );
      assert.match(viaMirror.query, /(^|&)ns=hoist-test\.invalid(&|$)/);

      assert.equal((await cri.imageStatus(ref))?.pinned, false);
      await ctd.ctr(['images', 'label', ref, 'io.cri-containerd.pinned=pinned'], { namespace: 'k8s.io' });
      assert.equal((await cri.imageStatus(ref))?.pinned, true, 'ImageStatus reports the label as pinned');
      const listed = (await cri.listImages()).find((i) => i.repoTags.includes(ref));
      assert.equal(listed?.pinned, true, 'ListImages reports the label as pinned');
    },
  );
});
