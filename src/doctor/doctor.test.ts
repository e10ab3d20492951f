import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'smol-toml';
import { checkContainerdConfig, parseContainerdConfig } from './containerd-config.js';
import { DoctorError } from './errors.js';
import { checkKubeletConfig, parseKubeletConfig } from './kubelet-config.js';
import {
  CONTAINERD_RENDER_DEFAULTS,
  KUBELET_RENDER_DEFAULTS,
  renderContainerdConfig,
  renderKubeletConfig,
} from './render.js';

const KUBELET_HEAD = 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n';

const kubeletCases: Array<[string, string, string[]]> = [
  [
    "the guide's example (parallel pulls, GC 85/80)",
    'maxParallelImagePulls: 10\nserializeImagePulls: false\nimageGCHighThresholdPercent: 85\nimageGCLowThresholdPercent: 80\n',
    ['pre-pull-gc'],
  ],
  [
    'maxParallelImagePulls with the default serializeImagePulls',
    'maxParallelImagePulls: 10\n',
    ['parallel-pulls-invalid', 'pre-pull-gc'],
  ],
  [
    'explicit serializeImagePulls: true with parallel pulls',
    'serializeImagePulls: true\nmaxParallelImagePulls: 3\n',
    ['parallel-pulls-invalid', 'pre-pull-gc'],
  ],
  ['empty configuration: serial pulls by default', '', ['serial-pulls', 'pre-pull-gc']],
  [
    'unbounded parallel pulls, kept images',
    'serializeImagePulls: false\nimageMinimumGCAge: 24h\n',
    ['unbounded-parallel-pulls', 'registry-qps-throttles'],
  ],
  [
    'maxParallelImagePulls: 0',
    'serializeImagePulls: false\nmaxParallelImagePulls: 0\nimageMinimumGCAge: 2h\n',
    ['max-parallel-invalid'],
  ],
  [
    'GC low not below high',
    'serializeImagePulls: false\nmaxParallelImagePulls: 5\nimageGCHighThresholdPercent: 80\nimageGCLowThresholdPercent: 80\nimageMinimumGCAge: 2h\n',
    ['gc-thresholds-invalid'],
  ],
  [
    'GC high above the eviction threshold',
    'serializeImagePulls: false\nmaxParallelImagePulls: 5\nimageGCHighThresholdPercent: 95\nimageGCLowThresholdPercent: 90\nimageMinimumGCAge: 2h\nevictionHard:\n  imagefs.available: 10%\n',
    ['gc-after-eviction'],
  ],
  [
    'GC disabled',
    'serializeImagePulls: false\nmaxParallelImagePulls: 5\nimageGCHighThresholdPercent: 100\nimageMinimumGCAge: 2h\n',
    ['gc-disabled'],
  ],
  [
    'imageMaximumGCAge not above imageMinimumGCAge',
    'serializeImagePulls: false\nmaxParallelImagePulls: 5\nimageMinimumGCAge: 2h\nimageMaximumGCAge: 1h\n',
    ['gc-ages-invalid', 'max-gc-age-feature-gate'],
  ],
  [
    'short imageMaximumGCAge with the feature gate',
    'serializeImagePulls: false\nmaxParallelImagePulls: 5\nimageMinimumGCAge: 2h\nimageMaximumGCAge: 12h\nfeatureGates:\n  ImageMaximumGCAge: true\n',
    ['max-gc-age-short'],
  ],
  [
    'bad duration',
    'serializeImagePulls: false\nmaxParallelImagePulls: 5\nimageMinimumGCAge: two minutes\n',
    ['duration-invalid'],
  ],
  [
    'registryBurst below the parallel pulls',
    'serializeImagePulls: false\nmaxParallelImagePulls: 20\nregistryPullQPS: 5\nregistryBurst: 10\nimageMinimumGCAge: 2h\n',
    ['registry-qps-throttles'],
  ],
  [
    'registryPullQPS 0 means no limit',
    'serializeImagePulls: false\nmaxParallelImagePulls: 20\nregistryPullQPS: 0\nimageMinimumGCAge: 2h\n',
    [],
  ],
  [
    'negative QPS',
    'serializeImagePulls: false\nmaxParallelImagePulls: 5\nregistryPullQPS: -1\nimageMinimumGCAge: 2h\n',
    ['registry-qps-invalid'],
  ],
];

describe('doctor kubelet-config', () => {
  for (const [name, body, rules] of kubeletCases) {
    it(name, () => {
      const findings = checkKubeletConfig(parseKubeletConfig(KUBELET_HEAD + body, 'kubelet.yaml'));
      assert.deepEqual(
        findings.map((f) => f.rule).sort(),
        [...rules].sort(),
        JSON.stringify(findings, null, 1),
      );
    });
  }
  it('finds the KubeletConfiguration in a multi-document file', () => {
    const text = `apiVersion: v1\nkind: ConfigMap\n---\n${KUBELET_HEAD}serializeImagePulls: false\nmaxParallelImagePulls: 0\n`;
    assert.ok(
      checkKubeletConfig(parseKubeletConfig(text, 'k.yaml')).some((f) => f.rule === 'max-parallel-invalid'),
    );
  });
  it('rejects YAML errors and other kinds with a one-line message', () => {
    for (const [text, re] of [
      ['kind: [\n', /not valid YAML/],
      ['apiVersion: v1\nkind: Pod\n', /no "kind: KubeletConfiguration"/],
    ] as const) {
      assert.throws(
        () => parseKubeletConfig(text, 'k.yaml'),
        (e: unknown) => e instanceof DoctorError && re.test(e.message) && !e.message.includes('\n'),
      );
    }
  });
});

const GUIDE_MIRRORS = `version = 2
[plugins."io.containerd.grpc.v1.cri".registry.mirrors]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["https://mirror.example.com", "https://registry-1.docker.io"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."registry.example.com"]
    endpoint = ["https://registry-cache.local:5000", "https://registry.example.com"]
`;

const containerdCases: Array<[string, string, string[]]> = [
  [
    "the guide's deprecated registry.mirrors",
    GUIDE_MIRRORS,
    ['registry-mirrors-deprecated', 'no-lazy-pulling', 'max-concurrent-downloads'],
  ],
  [
    'mirrors together with config_path',
    `${GUIDE_MIRRORS}[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n`.replace(
      'version = 2\n',
      'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  max_concurrent_downloads = 10\n',
    ),
    ['mirrors-with-config-path', 'no-lazy-pulling'],
  ],
  ['empty file (version 1 defaults)', '', ['no-config-path', 'no-lazy-pulling', 'max-concurrent-downloads']],
  [
    'stargz done right (version 2)',
    `version = 2
[plugins."io.containerd.grpc.v1.cri"]
  max_concurrent_downloads = 8
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "stargz"
  disable_snapshot_annotations = false
[proxy_plugins.stargz]
  type = "snapshot"
  address = "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock"
`,
    [],
  ],
  [
    'stargz proxy but the CRI plugin uses overlayfs',
    `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n[proxy_plugins.stargz]\n  type = "snapshot"\n  address = "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock"\n`,
    ['stargz-not-used', 'max-concurrent-downloads'],
  ],
  [
    'stargz with snapshot annotations disabled by default',
    `version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "stargz"\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n[proxy_plugins.stargz]\n  type = "snapshot"\n  address = "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock"\n`,
    ['stargz-annotations-disabled', 'max-concurrent-downloads'],
  ],
  [
    'snapshotter with no proxy plugin',
    `version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "stargz"\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n`,
    ['snapshotter-missing', 'max-concurrent-downloads'],
  ],
  [
    'version 3 with mirrors (ignored by containerd 2.x) and 1 download at a time',
    `version = 3\n[plugins."io.containerd.cri.v1.images"]\n  max_concurrent_downloads = 1\n[plugins."io.containerd.cri.v1.images".registry.mirrors."docker.io"]\n  endpoint = ["http://127.0.0.1:5000"]\n`,
    [
      'registry-mirrors-deprecated',
      'no-lazy-pulling',
      'max-concurrent-downloads',
      'max-concurrent-downloads-moved',
    ],
  ],
  [
    'registry.configs auth is deprecated',
    `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n[plugins."io.containerd.grpc.v1.cri".registry.configs."ghcr.io".auth]\n  username = "u"\n`,
    ['registry-configs-deprecated', 'no-lazy-pulling', 'max-concurrent-downloads'],
  ],
  ['unknown version', 'version = 7\n', ['config-version']],
];

describe('doctor containerd-config', () => {
  for (const [name, text, rules] of containerdCases) {
    it(name, () => {
      const findings = checkContainerdConfig(parseContainerdConfig(text, 'config.toml'));
      assert.deepEqual(
        findings.map((f) => f.rule).sort(),
        [...rules].sort(),
        JSON.stringify(findings, null, 1),
      );
    });
  }

  it('turns the deprecated mirrors into hosts.toml files that containerd reads', () => {
    const [finding] = checkContainerdConfig(parseContainerdConfig(GUIDE_MIRRORS, 'c.toml'));
    assert.equal(finding?.rule, 'registry-mirrors-deprecated');
    const files = finding?.files ?? [];
    assert.deepEqual(
      files.map((f) => f.path),
      [
        '/etc/containerd/certs.d/docker.io/hosts.toml',
        '/etc/containerd/certs.d/registry.example.com/hosts.toml',
      ],
    );
    const hub = parse(files[0]?.content ?? '') as {
      server: string;
      host: Record<string, { capabilities: string[] }>;
    };
    assert.equal(hub.server, 'https://registry-1.docker.io');
    assert.deepEqual(Object.keys(hub.host), ['https://mirror.example.com']);
    assert.deepEqual(hub.host['https://mirror.example.com']?.capabilities, ['pull', 'resolve']);
  });

  it('rejects invalid TOML with a one-line message', () => {
    assert.throws(
      () => parseContainerdConfig('version = \n[[[', 'c.toml'),
      (e: unknown) =>
        e instanceof DoctorError && /c\.toml is not valid TOML/.test(e.message) && !e.message.includes('\n'),
    );
  });
});

describe('render', () => {
  it('renders a kubelet configuration the doctor finds nothing wrong with', () => {
    const file = renderKubeletConfig(KUBELET_RENDER_DEFAULTS);
    assert.deepEqual(checkKubeletConfig(parseKubeletConfig(file.content, 'rendered')), []);
    assert.match(file.content, /serializeImagePulls: false/);
  });

  it('refuses kubelet settings that do not work together', () => {
    assert.throws(
      () => renderKubeletConfig({ ...KUBELET_RENDER_DEFAULTS, imageGCLowThresholdPercent: 90 }),
      (e: unknown) => e instanceof DoctorError && e.code === 'RENDER_INVALID',
    );
  });

  for (const version of [2, 3] as const) {
    it(`renders containerd version ${version} with stargz and mirrors, clean under the doctor`, () => {
      const files = renderContainerdConfig({
        ...CONTAINERD_RENDER_DEFAULTS,
        version,
        stargz: true,
        mirrors: { 'docker.io': 'http://127.0.0.1:5000', 'ghcr.io': 'http://127.0.0.1:5000/' },
      });
      const [config, hub, ghcr] = files;
      assert.deepEqual(checkContainerdConfig(parseContainerdConfig(config?.content ?? '', 'rendered')), []);
      assert.equal(hub?.path, '/etc/containerd/certs.d/docker.io/hosts.toml');
      const parsed = parse(ghcr?.content ?? '') as { server: string; host: Record<string, unknown> };
      assert.equal(parsed.server, 'https://ghcr.io');
      assert.deepEqual(Object.keys(parsed.host), ['http://127.0.0.1:5000']);
    });
  }

  it('without stargz only suggests lazy pulling (info)', () => {
    const [config] = renderContainerdConfig(CONTAINERD_RENDER_DEFAULTS);
    assert.deepEqual(
      checkContainerdConfig(parseContainerdConfig(config?.content ?? '', 'r')).map(
        (f) => `${f.rule}:${f.severity}`,
      ),
      ['no-lazy-pulling:info'],
    );
  });
});
