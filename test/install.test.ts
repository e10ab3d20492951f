// The install: the Helm chart (deploy/helm/hoist) and `hoist render install` render the same
// objects; the real helm lints and templates the chart; the real API server accepts every object
// (server-side dry-run, with the CRDs applied for real) and the RBAC grants what each part needs
// and nothing more; deploy/hoist.yaml is current; the Dockerfile has no analysis findings.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { resolveMirrorConfig } from '../src/mirror/index.js';
import { parseRegistryList } from '../src/node/index.js';
import {
  DEFAULT_VALUES,
  grafanaDashboard,
  HOIST_VERSION,
  valuesJsonSchema,
  type KubeObject,
} from '../src/install/index.js';
import { requireGoPeer } from './helpers/go-peers.js';
import {
  CHART,
  docs,
  find,
  hoist,
  keyOf,
  NS,
  renderInstall,
  ROOT,
  runHelm,
  type Loose,
} from './helpers/install.js';
import { shareKubeApiServer } from './helpers/kube.js';
import { removeTempDir, tempDir, testTempDir } from './helpers/peers.js';

const TIMEOUT = { timeout: 180_000 };

function byKey(objects: KubeObject[]): Map<string, KubeObject> {
  const map = new Map(objects.map((o) => [keyOf(o), o]));
  assert.equal(map.size, objects.length, 'object keys are unique');
  return map;
}

// Zone mode with most knobs turned: a private upstream with a credentials Secret, a digest, a
// PodMonitor, a large pin budget (Helm's float64 numbers), affinity and annotations, the Grafana
// dashboard in the monitoring namespace.
const ZONE_VALUES = `
image: { digest: sha256:${'ab'.repeat(32)} }
imagePullSecrets: [{ name: regcred }]
mirror:
  mode: zone
  credentialsSecret: hoist-upstreams
  podAnnotations: { team: platform }
  config:
    upstreams:
      registry.internal:5000: { url: 'http://registry.internal:5000/?x=<1>&y=2', username: robot, passwordFile: /var/run/secrets/hoist/internal }
      nvcr.io: null
    gc: { maxBytes: 500000000000, highWatermarkPercent: null, lowWatermarkPercent: null }
  zone: { replicas: 4, topologyAwareRouting: true, tolerations: [{ key: pool, value: infra, operator: Equal, effect: NoSchedule }] }
agent: { pinBudgetBytes: 107374182400, nodeSelector: { kubernetes.io/os: linux }, maxUnavailable: 3 }
controller:
  replicas: 3
  leaseName: hoist-leader
  podAnnotations: { a: b }
  affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: kubernetes.io/arch, operator: In, values: [amd64, arm64] }] }] } } }
metrics: { podMonitor: { enabled: true, labels: { release: prom } } }
grafana: { dashboard: { enabled: true, namespace: monitoring, labels: { team: obs }, annotations: { grafana_folder: Hoist } } }
`;

// Node mode with an emptyDir store: a non-root mirror, the metrics socket shared through a group
// (test/install-metrics-socket.test.ts checks the pod specs and runs them).
const EMPTY_DIR_VALUES = `
mirror: { node: { storage: { type: emptyDir, sizeLimit: 50Gi }, metricsSocketGroup: 4242 } }
`;

describe('install: chart files and hoist render install', () => {
  let work = '';
  let zoneFile = '';
  let emptyDirFile = '';
  before(async () => {
    work = await tempDir('hoist-install');
    zoneFile = join(work, 'zone.yaml');
    await writeFile(zoneFile, ZONE_VALUES);
    emptyDirFile = join(work, 'empty-dir.yaml');
    await writeFile(emptyDirFile, EMPTY_DIR_VALUES);
  });
  after(() => removeTempDir(work));

  it('values.yaml holds the defaults of src/install/values.ts', async () => {
    assert.deepEqual(parse(await readFile(join(CHART, 'values.yaml'), 'utf8')), DEFAULT_VALUES);
  });

  it('values.schema.json is the values schema', async () => {
    const file = JSON.parse(await readFile(join(CHART, 'values.schema.json'), 'utf8')) as unknown;
    assert.deepEqual(
      file,
      valuesJsonSchema(),
      'stale: run `npm run build && node bin/hoist.js render values-schema > deploy/helm/hoist/values.schema.json && npx prettier --write deploy/helm/hoist/values.schema.json`',
    );
  });

  it("the chart's files/grafana-dashboard.json is src/install/grafana-dashboard.ts's dashboard", async () => {
    const file = JSON.parse(await readFile(join(CHART, 'files/grafana-dashboard.json'), 'utf8')) as unknown;
    assert.deepEqual(
      file,
      grafanaDashboard(),
      'stale: run `npm run build && node -e "import(\'./dist/install/index.js\').then((m) => process.stdout.write(JSON.stringify(m.grafanaDashboard(), null, 2)))" > deploy/helm/hoist/files/grafana-dashboard.json && npx prettier --write deploy/helm/hoist/files/grafana-dashboard.json`',
    );
  });

  it("Chart.yaml is apiVersion v2 with package.json's version as appVersion", async () => {
    const chart = parse(await readFile(join(CHART, 'Chart.yaml'), 'utf8')) as Record<string, string>;
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.deepEqual([chart.apiVersion, chart.name, chart.appVersion], ['v2', 'hoist', pkg.version]);
    assert.equal(HOIST_VERSION, pkg.version);
  });

  it("the chart's crds/ are deploy/crds, byte for byte", async () => {
    const names = (await readdir(join(ROOT, 'deploy/crds'))).sort();
    assert.ok(names.length >= 2);
    assert.deepEqual((await readdir(join(CHART, 'crds'))).sort(), names);
    for (const name of names) {
      assert.equal(
        await readFile(join(CHART, 'crds', name), 'utf8'),
        await readFile(join(ROOT, 'deploy/crds', name), 'utf8'),
        `stale: run \`cp deploy/crds/*.yaml deploy/helm/hoist/crds/\``,
      );
    }
  });

  it('deploy/hoist.yaml is the default rendering', TIMEOUT, async () => {
    assert.equal(
      await readFile(join(ROOT, 'deploy/hoist.yaml'), 'utf8'),
      await renderInstall(),
      'stale: run `npm run build && node bin/hoist.js render install > deploy/hoist.yaml`',
    );
  });

  it('prints the same objects as one v1 List with --output json', TIMEOUT, async () => {
    const list = JSON.parse(await renderInstall(['--output', 'json', '--namespace', 'x'])) as {
      kind: string;
      items: KubeObject[];
    };
    assert.equal(list.kind, 'List');
    assert.deepEqual(list.items, docs(await renderInstall(['--namespace', 'x'])));
  });

  describe('bad values exit 2 naming the key', { concurrency: true }, () => {
    for (const [values, message] of [
      ['mirror: { mode: cluster }', /^hoist: mirror\.mode: .*"node"\|"zone"/],
      [
        'mirror: { config: { upstreams: { ghcr.io: { url: ftp://x } } } }',
        /mirror\.config\.upstreams\.ghcr\.io\.url: /,
      ],
      ['agent: { concurrency: 0 }', /agent\.concurrency: /],
      ['controller: { replicaz: 2 }', /controller: Unrecognized key: "replicaz"/],
      ['agent: { maxUnavailable: 10 percent }', /agent\.maxUnavailable: /],
      ['agent: { diskHighWater: lots }', /agent\.diskHighWater: .*"lots"/],
    ] as const) {
      it(values, TIMEOUT, async (t) => {
        const file = join(await testTempDir(t, 'hoist-values'), 'values.yaml');
        await writeFile(file, values);
        const res = await hoist(['render', 'install', '-f', file]);
        assert.equal(res.code, 2, res.stderr);
        assert.match(res.stderr.trim(), message);
        assert.equal(res.stderr.trim().split('\n').length, 1);
      });
    }
  });

  it('renders the node mirror, the agent and the controller with least privilege', TIMEOUT, async () => {
    const objects = docs(await renderInstall());
    const mirror = find(objects, 'DaemonSet', 'hoist-mirror').spec.template.spec;
    assert.equal(mirror.hostNetwork, true);
    assert.deepEqual(mirror.tolerations, [{ operator: 'Exists' }]);
    assert.equal(mirror.containers[0].readinessProbe.httpGet.host, '127.0.0.1');
    assert.ok(mirror.containers[0].args.join(' ').includes('--listen 127.0.0.1:5000'));

    const config = find(objects, 'ConfigMap', 'hoist-mirror').data['mirror.json'];
    const loaded = await resolveMirrorConfig(parse(config), {});
    assert.equal(loaded.upstreams.length, 7, "the real mirror's loader takes the rendered config");

    const agent = find(objects, 'DaemonSet', 'hoist-agent').spec.template.spec;
    const container = agent.containers[0];
    const args: string[] = container.args;
    const flag = (name: string) => args[args.indexOf(name) + 1];
    assert.equal(flag('--mirror'), 'http://127.0.0.1:5000');
    assert.equal(parseRegistryList(flag('--registries') ?? '').length, 7);
    assert.equal(flag('--node-name'), '$(NODE_NAME)');
    assert.equal(container.env[0].valueFrom.fieldRef.fieldPath, 'spec.nodeName');
    assert.equal(agent.hostNetwork, undefined, 'the agent stays off the host network');
    assert.equal(container.securityContext.privileged, undefined);
    assert.deepEqual(container.securityContext.capabilities, { drop: ['ALL'] });
    assert.deepEqual(
      agent.volumes.map((v: { hostPath?: { path: string; type: string } }) => v.hostPath),
      [
        { path: '/run/containerd/containerd.sock', type: 'Socket' },
        { path: '/etc/containerd', type: 'DirectoryOrCreate' },
        { path: '/etc/containerd/certs.d', type: 'DirectoryOrCreate' },
        undefined,
        { path: '/run/hoist/mirror', type: 'DirectoryOrCreate' },
      ],
    );
    // The node mirror's figures reach the agent (pod network) through a socket in a node
    // directory, mounted read-only, since the mirror listens on the node's 127.0.0.1.
    const mirrorArgs: string[] = mirror.containers[0].args;
    const socket = mirrorArgs[mirrorArgs.indexOf('--metrics-socket') + 1];
    assert.equal(socket, '/run/hoist/mirror/metrics.sock');
    assert.equal(flag('--mirror-metrics'), `unix://${socket}`);
    assert.deepEqual(
      container.volumeMounts.find((m: { name: string }) => m.name === 'mirror-metrics'),
      { name: 'mirror-metrics', mountPath: '/run/hoist/mirror', readOnly: true },
    );

    const controller = find(objects, 'Deployment', 'hoist-controller').spec;
    assert.equal(controller.replicas, 2);
    const ctl = controller.template.spec.containers[0];
    assert.deepEqual(
      [ctl.securityContext.runAsNonRoot, ctl.securityContext.readOnlyRootFilesystem],
      [true, true],
    );
    assert.deepEqual(
      [ctl.livenessProbe.httpGet.path, ctl.readinessProbe.httpGet.path],
      ['/healthz', '/readyz'],
    );

    for (const role of objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
      for (const rule of (role as Loose).rules as Array<Record<string, string[]>>) {
        for (const list of Object.values(rule)) assert.ok(!list.includes('*'), `${keyOf(role)}: no wildcard`);
      }
    }
    for (const b of objects.filter((o) => o.kind.endsWith('Binding'))) {
      assert.notEqual((b as Loose).roleRef.name, 'cluster-admin');
    }
  });

  it('zone mode: a Deployment spread over zones behind a zone-local Service', TIMEOUT, async () => {
    const objects = docs(await renderInstall(['-f', zoneFile]));
    const deployment = find(objects, 'Deployment', 'hoist-mirror').spec;
    // A zone mirror is not the node's: no metrics socket, and the controller reads it directly.
    assert.ok(!deployment.template.spec.containers[0].args.includes('--metrics-socket'));
    const zoneAgent = find(objects, 'DaemonSet', 'hoist-agent').spec.template.spec.containers[0];
    assert.ok(!zoneAgent.args.includes('--mirror-metrics'));
    assert.equal(deployment.replicas, 4);
    assert.equal(
      deployment.template.spec.topologySpreadConstraints[0].topologyKey,
      'topology.kubernetes.io/zone',
    );
    const service = find(objects, 'Service', 'hoist-mirror');
    assert.equal(service.spec.trafficDistribution, 'PreferClose');
    assert.equal(service.metadata.annotations['service.kubernetes.io/topology-mode'], 'Auto');
    const agent = find(objects, 'DaemonSet', 'hoist-agent').spec.template.spec;
    assert.equal(agent.enableServiceLinks, true);
    const args: string[] = agent.containers[0].args;
    assert.equal(
      args[args.indexOf('--mirror') + 1],
      'http://$(HOIST_MIRROR_SERVICE_HOST):$(HOIST_MIRROR_SERVICE_PORT)',
    );
    assert.equal(args[args.indexOf('--pin-budget-bytes') + 1], '107374182400');
    assert.ok(objects.some((o) => o.kind === 'PodMonitor'));
  });

  it('the Dockerfile passes hoist analyze dockerfile with no findings', TIMEOUT, async () => {
    const res = await hoist(['analyze', 'dockerfile', '--output', 'json', '--fail-on', 'info', 'Dockerfile']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.deepEqual(JSON.parse(res.stdout), { files: [{ path: 'Dockerfile', findings: [] }] });
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const final = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    assert.match(final, /^FROM \$\{RUNTIME_IMAGE\}$/m);
    assert.match(dockerfile, /^ARG RUNTIME_IMAGE=gcr\.io\/distroless\/nodejs20-debian12:nonroot@sha256:/m);
    assert.match(final, /^USER 65532:65532$/m);
    assert.doesNotMatch(final, /^RUN /m, 'nothing runs in the runtime stage (it has no shell)');
  });

  describe('helm', () => {
    const helm = (args: string[]) => runHelm(join(work, 'helm-home'), args);
    const template = (values: string[]) =>
      helm([
        'template',
        'hoist',
        CHART,
        '--namespace',
        NS,
        '--include-crds',
        ...values.flatMap((v) => ['-f', v]),
      ]);

    it('helm lint passes, defaults, zone mode and an emptyDir node store', TIMEOUT, async (t) => {
      if (!requireGoPeer(t, 'helm')) return;
      for (const values of [[], ['-f', zoneFile], ['-f', emptyDirFile]]) {
        const res = await helm(['lint', '--strict', CHART, ...values]);
        assert.equal(res.code, 0, res.stdout + res.stderr);
        assert.match(res.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      }
    });

    for (const [mode, files] of [
      ['default values', () => []],
      ['zone-mode values', () => [zoneFile]],
      ['emptyDir node store', () => [emptyDirFile]],
    ] as const) {
      it(`helm template and hoist render install give the same objects (${mode})`, TIMEOUT, async (t) => {
        if (!requireGoPeer(t, 'helm')) return;
        const helmOut = await template(files());
        assert.equal(helmOut.code, 0, helmOut.stderr);
        const fromHelm = byKey(docs(helmOut.stdout));
        const fromHoist = byKey(docs(await renderInstall(files().flatMap((f) => ['-f', f]))));
        assert.deepEqual([...fromHelm.keys()].sort(), [...fromHoist.keys()].sort());
        for (const [key, object] of fromHoist) assert.deepEqual(fromHelm.get(key), object, key);
      });
    }

    it("helm refuses a bad value through the chart's values.schema.json", TIMEOUT, async (t) => {
      if (!requireGoPeer(t, 'helm')) return;
      const bad = join(await testTempDir(t, 'hoist-helm'), 'bad.yaml');
      await writeFile(bad, 'mirror: { mode: cluster }\ncontroller: { replicaz: 2 }\n');
      const res = await template([bad]);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /values don't meet the specifications of the schema/);
      assert.match(res.stderr, /mode/);
    });
  });

  describe('against the real API server', () => {
    const kube = shareKubeApiServer();

    it(
      'accepts every rendered object (server-side dry-run) once the CRDs are applied',
      TIMEOUT,
      async (t) => {
        if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
        const api = kube();
        const must = async (args: string[], input?: string) => {
          const r = await api.kubectl(args, input === undefined ? {} : { input });
          assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
          return r.stdout;
        };
        await must(['apply', '--server-side', '-f', join(ROOT, 'deploy/crds')]);
        await must(['apply', '--server-side', '-f', '-'], JSON.stringify(POD_MONITOR_CRD));
        await must(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
        await must(['create', 'namespace', NS]);
        await must(['create', 'namespace', 'monitoring']); // the zone values' Grafana dashboard
        const renderings = [
          await renderInstall(),
          await renderInstall(['-f', zoneFile]),
          await renderInstall(['-f', emptyDirFile]),
          (await hoist(['render', 'prepull-daemonset', '--image', 'busybox:1.36', '--tolerate-all'])).stdout,
        ];
        for (const yaml of renderings) {
          const out = await must(['apply', '--dry-run=server', '-f', '-'], yaml);
          assert.equal(out.match(/\(server dry run\)/g)?.length, docs(yaml).length, out);
        }
        // The check can fail: a value the API refuses is refused.
        const broken = (await renderInstall(['-f', zoneFile])).replace(
          /trafficDistribution: PreferClose/,
          'trafficDistribution: Anywhere',
        );
        const refused = await api.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: broken });
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /trafficDistribution/);
      },
    );

    it('grants each service account what it needs and nothing more', TIMEOUT, async (t) => {
      if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
      const api = kube();
      await api.kubectl(['create', 'namespace', NS]); // may exist from the test above
      const rbac = docs(await renderInstall()).filter((o) =>
        ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind),
      );
      const applied = await api.kubectl(['apply', '--server-side', '-f', '-'], {
        input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }),
      });
      assert.equal(applied.code, 0, applied.stderr);
      const can = async (sa: string, args: string[]) => {
        const r = await api.kubectl(['auth', 'can-i', '--as', `system:serviceaccount:${NS}:${sa}`, ...args]);
        return r.stdout.trim() === 'yes';
      };
      const expect: Array<[string, string[], boolean]> = [
        ['hoist-controller', ['watch', 'prepulls.prepull.hoist.dev', '-A'], true],
        [
          'hoist-controller',
          ['patch', 'prepulls.prepull.hoist.dev', '--subresource=status', '-n', 'ml'],
          true,
        ],
        ['hoist-controller', ['update', 'prepulls.prepull.hoist.dev', '-n', 'ml'], false],
        ['hoist-controller', ['delete', 'nodepulls.prepull.hoist.dev'], true],
        ['hoist-controller', ['get', 'secrets', '-n', 'ml'], true],
        ['hoist-controller', ['list', 'secrets', '-n', 'ml'], false],
        ['hoist-controller', ['create', 'secrets', '-n', NS], true],
        ['hoist-controller', ['create', 'secrets', '-n', 'ml'], false],
        ['hoist-controller', ['update', 'leases', '-n', NS], true],
        ['hoist-controller', ['update', 'leases', '-n', 'ml'], false],
        ['hoist-controller', ['delete', 'nodes'], false],
        ['hoist-controller', ['watch', 'events', '-A'], true],
        ['hoist-controller', ['create', 'events', '-n', 'ml'], false],
        ['hoist-controller', ['delete', 'events', '-n', 'ml'], false],
        ['hoist-agent', ['watch', 'nodepulls.prepull.hoist.dev'], true],
        ['hoist-agent', ['patch', 'nodepulls.prepull.hoist.dev', '--subresource=status'], true],
        ['hoist-agent', ['update', 'nodepulls.prepull.hoist.dev'], false],
        ['hoist-agent', ['get', 'secrets', '-n', NS], true],
        ['hoist-agent', ['get', 'secrets', '-n', 'ml'], false],
        ['hoist-agent', ['get', 'nodes'], false],
        ['hoist-agent', ['patch', 'nodes'], true],
        ['hoist-agent', ['delete', 'nodes'], false],
        ['hoist-agent', ['list', 'pods', '-A'], false],
        ['hoist-mirror', ['get', 'secrets', '-n', NS], false],
      ];
      for (const [sa, args, allowed] of expect) {
        assert.equal(await can(sa, args), allowed, `${sa} can-i ${args.join(' ')}`);
      }
    });
  });
});

// The Prometheus operator's PodMonitor, only as far as a server-side dry-run needs it.
const POD_MONITOR_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'podmonitors.monitoring.coreos.com' },
  spec: {
    group: 'monitoring.coreos.com',
    names: { kind: 'PodMonitor', listKind: 'PodMonitorList', plural: 'podmonitors', singular: 'podmonitor' },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
};
