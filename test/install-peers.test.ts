// Peer sharing in the install (issue 13): `mirror.peers` turns the node mirrors into one
// cluster-wide cache. The chart and `hoist render install` render the same objects; the token
// Secret is the user's, the value's, or (helm only) generated and kept across upgrades with
// `lookup`; the mirror's Role lets its ServiceAccount watch EndpointSlices in Hoist's namespace and
// nothing more, and the real `hoist mirror`, started with the rendered flags under that
// ServiceAccount's token, finds its peers through it on the real kube-apiserver.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { resolveMirrorConfig } from '../src/mirror/index.js';
import { startHoist } from './helpers/cri.js';
import { requireGoPeer } from './helpers/go-peers.js';
import {
  CHART,
  docs,
  find,
  hoist,
  keyOf,
  NS,
  renderInstall as render,
  runHelm,
  type Loose,
} from './helpers/install.js';
import { shareKubeApiServer } from './helpers/kube.js';
import { freePort, removeTempDir, tempDir, testTempDir } from './helpers/peers.js';

const TIMEOUT = { timeout: 180_000 };
const TOKEN = 'a-cluster-token-0123456789';
const PEERS_VALUES = `mirror: { peers: { enabled: true, token: ${TOKEN}, fanout: 2 } }\n`;
const SECRET_VALUES = 'mirror: { peers: { enabled: true, tokenSecret: my-peer-token } }\n';
const GENERATED_VALUES = 'mirror: { peers: { enabled: true } }\n';

const renderInstall = (args: string[]) => render(['--skip-crds', ...args]);

const flag = (args: string[], name: string) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};

describe('install: peer sharing (mirror.peers)', () => {
  let work = '';
  const files: Record<string, string> = {};
  before(async () => {
    work = await tempDir('hoist-install-peers');
    for (const [name, text] of Object.entries({
      peers: PEERS_VALUES,
      secret: SECRET_VALUES,
      generated: GENERATED_VALUES,
    })) {
      files[name] = join(work, `${name}.yaml`);
      await writeFile(files[name], text);
    }
  });
  after(() => removeTempDir(work));

  it(
    'renders the token Secret, the flags, POD_IP, the token mount, a reachable listener and the Role',
    TIMEOUT,
    async () => {
      const objects = docs(await renderInstall(['-f', files.peers as string]));
      const secret = find(objects, 'Secret', 'hoist-mirror-peer-token');
      assert.equal(Buffer.from(secret.data.token, 'base64').toString(), TOKEN);

      const sa = find(objects, 'ServiceAccount', 'hoist-mirror');
      assert.equal(sa.automountServiceAccountToken, true);
      const pod = find(objects, 'DaemonSet', 'hoist-mirror').spec.template.spec;
      assert.equal(pod.automountServiceAccountToken, true);
      assert.equal(pod.serviceAccountName, 'hoist-mirror');
      const c = pod.containers[0];
      assert.equal(flag(c.args, '--peer-service'), `${NS}/hoist-mirror-peers`);
      assert.equal(flag(c.args, '--peer-token-file'), '/var/run/secrets/hoist-peers/token');
      // Other nodes reach this mirror at its node IP: it listens on every address, and the kubelet
      // probes the pod IP (no loopback host).
      assert.equal(flag(c.args, '--listen'), '0.0.0.0:5000');
      assert.equal(c.readinessProbe.httpGet.path, '/readyz');
      assert.equal(c.readinessProbe.httpGet.host, undefined);
      assert.deepEqual(c.env, [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }]);
      assert.deepEqual(
        c.volumeMounts.find((m: { name: string }) => m.name === 'peer-token'),
        { name: 'peer-token', mountPath: '/var/run/secrets/hoist-peers', readOnly: true },
      );
      assert.deepEqual(
        pod.volumes.find((v: { name: string }) => v.name === 'peer-token'),
        {
          name: 'peer-token',
          secret: { secretName: 'hoist-mirror-peer-token', items: [{ key: 'token', path: 'token' }] },
        },
      );

      // Only ready pods are peers: the headless Service leaves not-ready addresses out.
      const peersService = find(objects, 'Service', 'hoist-mirror-peers');
      assert.equal(peersService.spec.clusterIP, 'None');
      assert.equal(peersService.spec.publishNotReadyAddresses, undefined);
      // The mirrors now listen on the pod network: the controller's dashboard reads their metrics.
      const ctl = find(objects, 'Deployment', 'hoist-controller').spec.template.spec.containers[0];
      assert.equal(flag(ctl.args, '--mirror-service'), 'hoist-mirror-peers');

      const config = parse(find(objects, 'ConfigMap', 'hoist-mirror').data['mirror.json']) as Loose;
      assert.deepEqual(config.peers, { fanout: 2 });
      const loaded = await resolveMirrorConfig(config, {});
      assert.equal(loaded.peers, undefined, 'fanout alone starts nothing: the flags give the members');

      assert.deepEqual(find(objects, 'Role', 'hoist-mirror').rules, [
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      ]);
      const binding = find(objects, 'RoleBinding', 'hoist-mirror');
      assert.deepEqual(binding.roleRef, {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: 'hoist-mirror',
      });
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'hoist-mirror', namespace: NS }]);
      assert.ok(!objects.some((o) => o.kind === 'ClusterRole' && o.metadata.name === 'hoist-mirror'));
    },
  );

  it("tokenSecret: the user's Secret is mounted, none is made", TIMEOUT, async () => {
    const objects = docs(await renderInstall(['-f', files.secret as string]));
    assert.ok(!objects.some((o) => o.kind === 'Secret'));
    const pod = find(objects, 'DaemonSet', 'hoist-mirror').spec.template.spec;
    const volume = pod.volumes.find((v: { name: string }) => v.name === 'peer-token');
    assert.equal(volume.secret.secretName, 'my-peer-token');
  });

  it('off by default: no API token, no Role, loopback only, no peer flags', TIMEOUT, async () => {
    const objects = docs(await renderInstall([]));
    assert.equal(find(objects, 'ServiceAccount', 'hoist-mirror').automountServiceAccountToken, false);
    const pod = find(objects, 'DaemonSet', 'hoist-mirror').spec.template.spec;
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(flag(pod.containers[0].args, '--listen'), '127.0.0.1:5000');
    assert.equal(flag(pod.containers[0].args, '--peer-service'), undefined);
    assert.ok(!objects.some((o) => o.kind === 'Role' && o.metadata.name === 'hoist-mirror'));
  });

  describe('bad values exit 2 with one line naming the key', { concurrency: true }, () => {
    for (const [values, message] of [
      [
        GENERATED_VALUES,
        /^hoist: mirror\.peers: hoist render install cannot generate a token .*mirror\.peers\.tokenSecret/,
      ],
      [
        'mirror: { mode: zone, peers: { enabled: true, token: 0123456789abcdef } }',
        /^hoist: mirror\.peers\.enabled: peer sharing needs mirror\.mode node/,
      ],
      [
        'mirror: { peers: { enabled: true, token: 0123456789abcdef, tokenSecret: x } }',
        /^hoist: mirror\.peers: give tokenSecret .* or token, not both/,
      ],
      ['mirror: { peers: { enabled: true, token: short } }', /^hoist: mirror\.peers\.token: .*16/],
      [
        'mirror: { peers: { enabled: true, token: 0123456789abcdef, fanout: 0 } }',
        /^hoist: mirror\.peers\.fanout: /,
      ],
    ] as const) {
      it(values, TIMEOUT, async (t) => {
        const file = join(await testTempDir(t, 'hoist-peers-values'), 'values.yaml');
        await writeFile(file, values);
        const res = await hoist(['render', 'install', '-f', file]);
        assert.equal(res.code, 2, res.stderr);
        assert.match(res.stderr.trim(), message);
        assert.equal(res.stderr.trim().split('\n').length, 1);
      });
    }
  });

  describe('helm', () => {
    const helm = (args: string[]) => runHelm(join(work, 'helm-home'), args);
    const template = (file: string, extra: string[] = []) =>
      helm(['template', 'hoist', CHART, '--namespace', NS, '-f', file, ...extra]);

    it('helm lint --strict passes with peer sharing', TIMEOUT, async (t) => {
      if (!requireGoPeer(t, 'helm')) return;
      for (const name of ['peers', 'secret', 'generated']) {
        const res = await helm(['lint', '--strict', CHART, '-f', files[name] as string]);
        assert.equal(res.code, 0, res.stdout + res.stderr);
      }
    });

    for (const name of ['peers', 'secret']) {
      it(`helm template and hoist render install give the same objects (${name})`, TIMEOUT, async (t) => {
        if (!requireGoPeer(t, 'helm')) return;
        const out = await template(files[name] as string);
        assert.equal(out.code, 0, out.stderr);
        const fromHelm = new Map(docs(out.stdout).map((o) => [keyOf(o), o]));
        const fromHoist = new Map(
          docs(await renderInstall(['-f', files[name] as string])).map((o) => [keyOf(o), o]),
        );
        assert.deepEqual([...fromHelm.keys()].sort(), [...fromHoist.keys()].sort());
        for (const [key, object] of fromHoist) assert.deepEqual(fromHelm.get(key), object, key);
      });
    }

    it('helm generates a 48-character token when none is given', TIMEOUT, async (t) => {
      if (!requireGoPeer(t, 'helm')) return;
      const out = await template(files.generated as string);
      assert.equal(out.code, 0, out.stderr);
      const secret = find(docs(out.stdout), 'Secret', 'hoist-mirror-peer-token');
      assert.match(Buffer.from(secret.data.token, 'base64').toString(), /^[A-Za-z0-9]{48}$/);
    });

    it('helm refuses zone mode with peers, with the same message', TIMEOUT, async (t) => {
      if (!requireGoPeer(t, 'helm')) return;
      const file = join(await testTempDir(t, 'hoist-helm-peers'), 'zone.yaml');
      await writeFile(file, 'mirror: { mode: zone, peers: { enabled: true } }\n');
      const res = await template(file);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /mirror\.peers\.enabled: peer sharing needs mirror\.mode node/);
    });

    describe('against the real API server', () => {
      const kube = shareKubeApiServer();

      it('an upgrade keeps the token of the Secret already there (lookup)', TIMEOUT, async (t) => {
        if (!requireGoPeer(t, 'helm', 'kube-apiserver', 'etcd', 'kubectl')) return;
        const api = kube();
        await api.kubectl(['create', 'namespace', NS]);
        const kept = 'kept-across-upgrades-0123456789';
        const created = await api.kubectl([
          '-n',
          NS,
          'create',
          'secret',
          'generic',
          'hoist-mirror-peer-token',
          `--from-literal=token=${kept}`,
        ]);
        assert.equal(created.code, 0, created.stderr);
        const out = await template(files.generated as string, [
          '--dry-run=server',
          '--kubeconfig',
          api.adminKubeconfig,
        ]);
        assert.equal(out.code, 0, out.stderr);
        const secret = find(docs(out.stdout), 'Secret', 'hoist-mirror-peer-token');
        assert.equal(Buffer.from(secret.data.token, 'base64').toString(), kept);
      });
    });
  });

  describe('against the real API server', () => {
    const kube = shareKubeApiServer();

    it('accepts every rendered object (server-side dry-run)', TIMEOUT, async (t) => {
      if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
      const api = kube();
      await api.kubectl(['create', 'namespace', NS]);
      for (const file of [files.peers as string, files.secret as string]) {
        const yaml = await renderInstall(['-f', file]);
        const out = await api.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: yaml });
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout.match(/\(server dry run\)/g)?.length, docs(yaml).length, out.stdout);
      }
    });

    it(
      "the mirror's Role: EndpointSlices in Hoist's namespace, read-only, nothing more",
      TIMEOUT,
      async (t) => {
        if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
        const api = kube();
        await api.kubectl(['create', 'namespace', NS]);
        const rbac = docs(await renderInstall(['-f', files.peers as string])).filter((o) =>
          ['ServiceAccount', 'Role', 'RoleBinding'].includes(o.kind),
        );
        const applied = await api.kubectl(['apply', '--server-side', '-f', '-'], {
          input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }),
        });
        assert.equal(applied.code, 0, applied.stderr);
        const as = ['--as', `system:serviceaccount:${NS}:hoist-mirror`];
        const can = async (args: string[]) =>
          (await api.kubectl(['auth', 'can-i', ...as, ...args])).stdout.trim() === 'yes';
        const expect: Array<[string[], boolean]> = [
          [['get', 'endpointslices.discovery.k8s.io', '-n', NS], true],
          [['list', 'endpointslices.discovery.k8s.io', '-n', NS], true],
          [['watch', 'endpointslices.discovery.k8s.io', '-n', NS], true],
          [['list', 'endpointslices.discovery.k8s.io', '-n', 'default'], false],
          [['watch', 'endpointslices.discovery.k8s.io', '-A'], false],
          [['create', 'endpointslices.discovery.k8s.io', '-n', NS], false],
          [['update', 'endpointslices.discovery.k8s.io', '-n', NS], false],
          [['delete', 'endpointslices.discovery.k8s.io', '-n', NS], false],
          [['list', 'endpoints', '-n', NS], false],
          [['list', 'pods', '-n', NS], false],
          [['get', 'secrets', '-n', NS], false],
          [['get', 'services', '-n', NS], false],
        ];
        for (const [args, allowed] of expect) {
          assert.equal(await can(args), allowed, `hoist-mirror can-i ${args.join(' ')}`);
        }
        // Nothing more: beside what every service account may do (a ServiceAccount bound to
        // nothing, the baseline), its rules in the namespace are the Role's.
        const rules = async (who: string) => {
          const list = await api.kubectl(['auth', 'can-i', '--list', '--as', who, '-n', NS]);
          assert.equal(list.code, 0, list.stderr);
          return list.stdout
            .split('\n')
            .slice(1)
            .filter((line) => /^\S/.test(line) && !line.startsWith('['))
            .map((line) => `${line.split(/\s+/)[0]} ${line.slice(line.lastIndexOf('['))}`);
        };
        const baseline = new Set(await rules(`system:serviceaccount:${NS}:nobody`));
        assert.ok(baseline.size > 0, 'the baseline is read');
        assert.deepEqual(
          (await rules(`system:serviceaccount:${NS}:hoist-mirror`)).filter((r) => !baseline.has(r)),
          ['endpointslices.discovery.k8s.io [get list watch]'],
        );
      },
    );

    it(
      'the real mirror, with the rendered flags and the ServiceAccount token, finds its peers',
      TIMEOUT,
      async (t) => {
        if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
        const api = kube();
        await api.kubectl(['create', 'namespace', NS]);
        const objects = docs(await renderInstall(['-f', files.peers as string]));
        const rbac = objects.filter((o) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(o.kind));
        const applied = await api.kubectl(['apply', '--server-side', '-f', '-'], {
          input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }),
        });
        assert.equal(applied.code, 0, applied.stderr);
        const kubeconfig = await api.serviceAccountKubeconfig(NS, 'hoist-mirror');

        // The pod's files, where this test can write them: the ConfigMap, the token Secret, the store.
        const dir = await testTempDir(t, 'hoist-peers-pod');
        const configFile = join(dir, 'mirror.json');
        await writeFile(configFile, find(objects, 'ConfigMap', 'hoist-mirror').data['mirror.json']);
        const tokenFile = join(dir, 'token');
        await writeFile(
          tokenFile,
          Buffer.from(find(objects, 'Secret', 'hoist-mirror-peer-token').data.token, 'base64'),
        );
        const port = await freePort();
        const container = find(objects, 'DaemonSet', 'hoist-mirror').spec.template.spec.containers[0];
        const local: Record<string, string> = {
          '/etc/hoist/mirror.json': configFile,
          '/var/run/secrets/hoist-peers/token': tokenFile,
          '/var/lib/hoist/mirror': join(dir, 'store'),
          '/run/hoist/mirror/metrics.sock': join(dir, 'metrics.sock'),
          '0.0.0.0:5000': `127.0.0.1:${port}`, // loopback only in tests
        };
        const args = (container.args as string[]).map((a) => local[a] ?? a);
        assert.equal(args.length, container.args.length);

        // The Service's slice: this pod (POD_IP 10.0.0.1: it listens on loopback here, and the API
        // refuses loopback endpoints), a ready peer and a starting one.
        const slice = {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: {
            name: 'hoist-mirror-peers-x1',
            namespace: NS,
            labels: { 'kubernetes.io/service-name': 'hoist-mirror-peers' },
          },
          addressType: 'IPv4',
          ports: [{ name: 'http', port, protocol: 'TCP' }],
          endpoints: [
            { addresses: ['10.0.0.1'], conditions: { ready: true } },
            { addresses: ['10.0.0.2'], conditions: { ready: true } },
            { addresses: ['10.0.0.3'], conditions: { ready: false } },
          ],
        };
        const posted = await api.request(
          'POST',
          `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`,
          { body: slice },
        );
        assert.equal(posted.status, 201, posted.body);

        const mirror = startHoist(args, {
          // The pod's environment: POD_IP from the downward API, the API from the mounted token.
          command: (cmd, a) => ({
            cmd: 'env',
            args: [`KUBECONFIG=${kubeconfig}`, 'POD_IP=10.0.0.1', cmd, ...a],
          }),
        });
        t.after(() => mirror.stop());
        const url = await mirror.url;
        const token = Buffer.from(find(objects, 'Secret', 'hoist-mirror-peer-token').data.token, 'base64');
        const view = async () => {
          // What `hoist mirror peers --output json` reads: this node's view of the cluster.
          const res = await fetch(`${url}/peer/v1/status`, {
            headers: { authorization: `Bearer ${token.toString()}` },
          });
          assert.equal(res.status, 200);
          return (await res.json()) as { self: string; fanout: number; members: Array<{ url: string }> };
        };
        // Polls the mirror's own status (no event to await from outside its process).
        const members = async (count: number) => {
          let seen = await view();
          for (let i = 0; i < 400 && seen.members.length !== count; i++) {
            await new Promise((r) => setTimeout(r, 50));
            seen = await view();
          }
          return seen;
        };
        const first = await members(1);
        assert.equal(first.self, `http://10.0.0.1:${port}`);
        assert.equal(first.fanout, 2, 'mirror.peers.fanout reaches the mirror through its ConfigMap');
        assert.deepEqual(
          first.members.map((m) => m.url),
          [`http://10.0.0.2:${port}`],
          mirror.stderr(),
        );
        // The starting pod becomes ready: the change arrives through the watch, no restart.
        slice.endpoints[2] = { addresses: ['10.0.0.3'], conditions: { ready: true } };
        const put = await api.request(
          'PUT',
          `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices/${slice.metadata.name}`,
          { body: slice },
        );
        assert.equal(put.status, 200, put.body);
        assert.deepEqual(
          (await members(2)).members.map((m) => m.url).sort(),
          [`http://10.0.0.2:${port}`, `http://10.0.0.3:${port}`],
          mirror.stderr(),
        );
      },
    );
  });
});
