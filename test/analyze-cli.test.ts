// `hoist analyze dockerfile|events`, `hoist doctor ...` and `hoist render ...` as users run them:
// output formats (the JSON shapes are fixed contracts), --fail-on exit codes, and exit 2 with one
// line on bad input.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { hoist } from './analyze-helpers.js';
import { testTempDir } from './helpers/peers.js';

const TIMEOUT = { timeout: 60_000 };
const BAD = 'FROM python:3.12-slim\nCOPY . /app\nRUN pip install -r /app/requirements.txt\n';
const PIN = `@sha256:${'b'.repeat(64)}`;

function oneLine(stderr: string) {
  assert.match(stderr, /^hoist: [^\n]+\n$/);
}

describe('hoist analyze dockerfile', () => {
  it('prints the fixed JSON shape, with the build context read', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-df-');
    await writeFile(join(dir, 'Dockerfile'), BAD);
    await writeFile(join(dir, 'requirements.txt'), 'flask\n');
    await mkdir(join(dir, '.ssh'));
    await writeFile(join(dir, '.ssh', 'id_ed25519'), 'key');
    const res = await hoist([
      'analyze',
      'dockerfile',
      '--output',
      'json',
      '--fail-on',
      'none',
      join(dir, 'Dockerfile'),
    ]);
    assert.equal(res.code, 0, res.stderr);
    const doc = JSON.parse(res.stdout) as {
      files: Array<{ path: string; findings: Array<Record<string, unknown>> }>;
    };
    assert.equal(doc.files.length, 1);
    assert.equal(doc.files[0]?.path, join(dir, 'Dockerfile'));
    const findings = doc.files[0]?.findings ?? [];
    for (const f of findings)
      assert.deepEqual(Object.keys(f).sort(), ['fix', 'line', 'message', 'rule', 'severity']);
    assert.deepEqual(
      findings.map((f) => `${String(f.rule)}@${String(f.line)}:${String(f.severity)}`).sort(),
      [
        'base-image-unpinned@1:info',
        'missing-dockerignore@2:warning',
        'pip-cache-left@3:warning',
        'secret-copied@2:error',
        'source-before-dependencies@2:error',
      ],
    );
    // A .dockerignore that leaves out the key removes two findings.
    await writeFile(join(dir, '.dockerignore'), '.ssh\n');
    const again = await hoist([
      'analyze',
      'dockerfile',
      '--output',
      'json',
      '--fail-on',
      'none',
      join(dir, 'Dockerfile'),
    ]);
    const rules = (JSON.parse(again.stdout) as typeof doc).files[0]?.findings.map((f) => f.rule);
    assert.ok(!rules?.includes('secret-copied') && !rules?.includes('missing-dockerignore'), String(rules));
  });

  it('exits 1 at the chosen severity, 0 below it', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-df-');
    const warnOnly = join(dir, 'warn.Dockerfile');
    await writeFile(warnOnly, `FROM alpine:3.20${PIN}\nRUN apk add curl\n`);
    const infoOnly = join(dir, 'info.Dockerfile');
    await writeFile(infoOnly, 'FROM alpine:3.20\nRUN apk add --no-cache curl\n');
    const cases: Array<[string, string, number]> = [
      [warnOnly, 'error', 0],
      [warnOnly, 'warning', 1],
      [warnOnly, 'info', 1],
      [infoOnly, 'warning', 0],
      [infoOnly, 'info', 1],
      [infoOnly, 'none', 0],
    ];
    for (const [file, level, code] of cases) {
      const res = await hoist(['analyze', 'dockerfile', '--skip-context', '--fail-on', level, file]);
      assert.equal(res.code, code, `${file} --fail-on ${level}: ${res.stdout}${res.stderr}`);
    }
    const text = await hoist(['analyze', 'dockerfile', '--skip-context', warnOnly]);
    assert.match(text.stdout, /^\s+2 {2}warning apk-cache-left: /m);
    assert.match(text.stdout, /fix: use "apk add --no-cache"/);
  });

  it('writes SARIF 2.1.0 with rules and locations', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-df-');
    await writeFile(join(dir, 'Dockerfile'), BAD);
    const res = await hoist([
      'analyze',
      'dockerfile',
      '--output',
      'sarif',
      '--skip-context',
      join(dir, 'Dockerfile'),
    ]);
    assert.equal(res.code, 1);
    const sarif = JSON.parse(res.stdout) as {
      version: string;
      runs: Array<{
        tool: { driver: { name: string; rules: Array<{ id: string }> } };
        results: Array<{
          ruleId: string;
          ruleIndex: number;
          level: string;
          locations: Array<{ physicalLocation: { region: { startLine: number } } }>;
        }>;
      }>;
    };
    assert.equal(sarif.version, '2.1.0');
    const run = sarif.runs[0];
    assert.equal(run?.tool.driver.name, 'hoist');
    const result = run?.results.find((r) => r.ruleId === 'source-before-dependencies');
    assert.equal(result?.level, 'error');
    assert.equal(result?.locations[0]?.physicalLocation.region.startLine, 2);
    assert.equal(run?.tool.driver.rules[result?.ruleIndex ?? -1]?.id, 'source-before-dependencies');
  });

  it('exits 2 with one line on unparsable input or bad flags', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-df-');
    const bad = join(dir, 'Dockerfile');
    await writeFile(bad, 'FROM alpine\nRUN <<EOF\necho never ends\n');
    const cases: Array<[string[], RegExp]> = [
      [['analyze', 'dockerfile', bad], /Dockerfile:2: heredoc <<EOF is not terminated/],
      [['analyze', 'dockerfile', join(dir, 'missing')], /cannot read .*missing: no such file/],
      [
        ['analyze', 'dockerfile', '--fail-on', 'sometimes', bad],
        /--fail-on "sometimes": use error, warning, info or none/,
      ],
      [['analyze', 'dockerfile', '--output', 'xml', bad], /--output "xml": use text, json or sarif/],
    ];
    for (const [args, re] of cases) {
      const res = await hoist(args);
      assert.equal(res.code, 2, args.join(' '));
      oneLine(res.stderr);
      assert.match(res.stderr, re);
    }
  });
});

// Issue 11 item 7: one unparsable or unreadable Dockerfile does not lose the others' findings.
describe('hoist analyze dockerfile with a bad file among good ones', () => {
  async function threeFiles(t: Parameters<typeof testTempDir>[0]) {
    const dir = await testTempDir(t, 'hoist-df-');
    const first = join(dir, 'a.Dockerfile');
    await writeFile(first, `FROM alpine:3.20${PIN}\nRUN apk add curl\n`);
    const bad = join(dir, 'bad.Dockerfile');
    await writeFile(bad, 'FROM alpine\nRUN <<EOF\necho never ends\n');
    const last = join(dir, 'c.Dockerfile');
    await writeFile(last, BAD);
    return { dir, files: [first, bad, last] };
  }

  it('json: every file in its place, the bad one with its error; exit 2', TIMEOUT, async (t) => {
    const { files } = await threeFiles(t);
    const res = await hoist(['analyze', 'dockerfile', '--skip-context', '--output', 'json', ...files]);
    assert.equal(res.code, 2, res.stderr);
    oneLine(res.stderr);
    assert.match(res.stderr, /bad\.Dockerfile:2: heredoc <<EOF is not terminated/);
    const doc = JSON.parse(res.stdout) as {
      files: Array<{
        path: string;
        findings: Array<{ rule: string }>;
        error?: { code: string; message: string };
      }>;
    };
    assert.deepEqual(
      doc.files.map((f) => f.path),
      files,
    );
    assert.deepEqual(
      doc.files[0]?.findings.map((f) => f.rule),
      ['apk-cache-left'],
    );
    assert.equal(doc.files[0]?.error, undefined);
    assert.equal(doc.files[1]?.error?.code, 'DOCKERFILE_INVALID');
    assert.deepEqual(doc.files[1]?.findings, []);
    assert.ok(doc.files[2]?.findings.some((f) => f.rule === 'source-before-dependencies'));
  });

  it('text: the error printed where the file would be, the others analyzed; exit 2', TIMEOUT, async (t) => {
    const { dir, files } = await threeFiles(t);
    const missing = join(dir, 'missing.Dockerfile');
    // --fail-on none does not hide a file that could not be analyzed.
    const res = await hoist([
      'analyze',
      'dockerfile',
      '--skip-context',
      '--fail-on',
      'none',
      ...files,
      missing,
    ]);
    assert.equal(res.code, 2, res.stderr);
    assert.equal(res.stderr.split('\n').filter(Boolean).length, 2, res.stderr);
    const a = res.stdout.indexOf('apk-cache-left');
    const err = res.stdout.indexOf('heredoc <<EOF is not terminated');
    const c = res.stdout.indexOf('source-before-dependencies');
    const gone = res.stdout.indexOf('missing.Dockerfile: no such file');
    assert.ok(a >= 0 && err > a && c > err && gone > c, res.stdout);
    assert.match(res.stdout, /2 files could not be analyzed/);
  });

  it('sarif: results for the good files, a notification for the bad one; exit 2', TIMEOUT, async (t) => {
    const { files } = await threeFiles(t);
    const res = await hoist(['analyze', 'dockerfile', '--skip-context', '--output', 'sarif', ...files]);
    assert.equal(res.code, 2, res.stderr);
    const sarif = JSON.parse(res.stdout) as {
      runs: Array<{
        results: Array<{
          ruleId: string;
          locations: Array<{ physicalLocation: { artifactLocation: { uri: string } } }>;
        }>;
        invocations: Array<{
          executionSuccessful: boolean;
          toolExecutionNotifications: Array<{
            level: string;
            message: { text: string };
            locations: Array<{
              physicalLocation: { artifactLocation: { uri: string }; region?: { startLine: number } };
            }>;
          }>;
        }>;
      }>;
    };
    const run = sarif.runs[0];
    const uris = new Set(run?.results.map((r) => r.locations[0]?.physicalLocation.artifactLocation.uri));
    assert.deepEqual([...uris].sort(), [files[0], files[2]].sort());
    assert.equal(run?.invocations[0]?.executionSuccessful, false);
    const [note] = run?.invocations[0]?.toolExecutionNotifications ?? [];
    assert.equal(note?.level, 'error');
    assert.equal(note?.locations[0]?.physicalLocation.artifactLocation.uri, files[1]);
    assert.equal(note?.locations[0]?.physicalLocation.region?.startLine, 2);
    assert.match(note?.message.text ?? '', /heredoc <<EOF is not terminated/);
  });
});

// Every fixture under test/fixtures/dockerfiles in one run: each names the public file it stands
// for and the findings it must give (`# expect: rule@line ...`) or its error (`# expect-error:`).
// A rule change that adds a false positive on any of them fails here.
describe('hoist analyze dockerfile over the fixtures', () => {
  it('gives exactly the expected findings per fixture, and the broken one its error', TIMEOUT, async () => {
    const dir = fileURLToPath(new URL('./fixtures/dockerfiles/', import.meta.url));
    const files = (await readdir(dir))
      .filter((f) => f.endsWith('Dockerfile'))
      .sort()
      .map((f) => join(dir, f));
    assert.ok(files.length >= 5, String(files));
    const res = await hoist(['analyze', 'dockerfile', '--skip-context', '--output', 'json', ...files]);
    const doc = JSON.parse(res.stdout) as {
      files: Array<{
        path: string;
        findings: Array<{ rule: string; line: number }>;
        error?: { code: string };
      }>;
    };
    let broken = 0;
    for (const file of files) {
      const text = await readFile(file, 'utf8');
      const report = doc.files.find((f) => f.path === file);
      const error = /^# expect-error: (\S+)$/m.exec(text)?.[1];
      if (error !== undefined) {
        broken++;
        assert.equal(report?.error?.code, error, file);
        continue;
      }
      const expected = (/^# expect:(.*)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
      assert.deepEqual(
        report?.findings.map((f) => `${f.rule}@${f.line}`).sort(),
        expected.sort(),
        `${file}: ${JSON.stringify(report)}`,
      );
    }
    assert.equal(res.code, broken > 0 ? 2 : 1, res.stderr);
  });
});

describe('hoist analyze events', () => {
  const events = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        reason: 'Pulled',
        message:
          'Successfully pulled image "nginx:1.27" in 3.385s (4.5s including waiting). Image size: 70993397 bytes.',
        source: { host: 'n1' },
        involvedObject: { kind: 'Pod', namespace: 'd', name: 'a' },
      },
      {
        reason: 'Pulled',
        message: 'Successfully pulled image "busybox" in 1m2.5s',
        source: { host: 'n2' },
        involvedObject: { kind: 'Pod', namespace: 'd', name: 'b' },
      },
      {
        reason: 'Failed',
        message:
          'Failed to pull image "gone:1": rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/gone:1": not found',
        source: { host: 'n2' },
        count: 2,
        involvedObject: { kind: 'Pod', namespace: 'd', name: 'c' },
      },
    ],
  };

  it('reads stdin and prints the fixed JSON shape', TIMEOUT, async () => {
    const res = await hoist(['analyze', 'events', '--output', 'json'], { input: JSON.stringify(events) });
    assert.equal(res.code, 0, res.stderr);
    const doc = JSON.parse(res.stdout) as {
      pulls: Array<Record<string, unknown>>;
      failures: Array<Record<string, unknown>>;
    };
    assert.deepEqual(
      doc.pulls.map((p) => [p.image, p.node, p.seconds, p.secondsIncludingWaiting, p.bytes]),
      [
        ['nginx:1.27', 'n1', 3.385, 4.5, 70993397],
        ['busybox', 'n2', 62.5, null, null],
      ],
    );
    assert.deepEqual(
      doc.failures.map((f) => [f.image, f.node, f.cause, f.count]),
      [['gone:1', 'n2', 'not-found', 2]],
    );
  });

  it('exits 2 with one line on input that is neither events nor metrics', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-ev-');
    const notEvents = join(dir, 'pod.json');
    await writeFile(notEvents, '{"kind":"Pod","metadata":{}}');
    const notMetrics = join(dir, 'm.txt');
    await writeFile(notMetrics, 'hello there, this is prose\n');
    for (const [file, re] of [
      [notEvents, /pod\.json: not a list of Kubernetes events/],
      [notMetrics, /m\.txt:1: not a Prometheus sample line/],
    ] as const) {
      const res = await hoist(['analyze', 'events', file]);
      assert.equal(res.code, 2, res.stdout);
      oneLine(res.stderr);
      assert.match(res.stderr, re);
    }
  });
});

describe('hoist doctor and hoist render', () => {
  it('doctor prints the fixed JSON shape and exits 1 on an error finding', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-doc-');
    const file = join(dir, 'kubelet.yaml');
    await writeFile(
      file,
      'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxParallelImagePulls: 10\n',
    );
    const res = await hoist(['doctor', 'kubelet-config', '--output', 'json', file]);
    assert.equal(res.code, 1);
    const doc = JSON.parse(res.stdout) as { findings: Array<Record<string, unknown>> };
    const invalid = doc.findings.find((f) => f.rule === 'parallel-pulls-invalid');
    assert.equal(invalid?.severity, 'error');
    assert.deepEqual(Object.keys(invalid ?? {}).sort(), ['fix', 'message', 'rule', 'severity']);
  });

  it(
    'render output passes doctor (kubelet and containerd, with the hosts.toml files)',
    TIMEOUT,
    async (t) => {
      const dir = await testTempDir(t, 'hoist-render-');
      const kubelet = await hoist([
        'render',
        'kubelet-config',
        '--output',
        'json',
        '--max-parallel-image-pulls',
        '8',
      ]);
      assert.equal(kubelet.code, 0, kubelet.stderr);
      const [kfile] = (JSON.parse(kubelet.stdout) as { files: Array<{ path: string; content: string }> })
        .files;
      await writeFile(join(dir, 'kubelet.yaml'), kfile?.content ?? '');
      const kcheck = await hoist([
        'doctor',
        'kubelet-config',
        '--fail-on',
        'info',
        join(dir, 'kubelet.yaml'),
      ]);
      assert.equal(kcheck.code, 0, kcheck.stdout);

      const containerd = await hoist([
        'render',
        'containerd-config',
        '--output',
        'json',
        '--stargz',
        '--mirror',
        'docker.io=http://127.0.0.1:5000',
      ]);
      assert.equal(containerd.code, 0, containerd.stderr);
      const files = (JSON.parse(containerd.stdout) as { files: Array<{ path: string; content: string }> })
        .files;
      assert.deepEqual(
        files.map((f) => f.path),
        ['/etc/containerd/config.toml', '/etc/containerd/certs.d/docker.io/hosts.toml'],
      );
      await writeFile(join(dir, 'config.toml'), files[0]?.content ?? '');
      const ccheck = await hoist([
        'doctor',
        'containerd-config',
        '--fail-on',
        'info',
        join(dir, 'config.toml'),
      ]);
      assert.equal(ccheck.code, 0, ccheck.stdout);
      assert.match(files[1]?.content ?? '', /\[host\."http:\/\/127\.0\.0\.1:5000"\]/);
    },
  );

  it('exits 2 with one line on bad files and bad render flags', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-doc-');
    const toml = join(dir, 'bad.toml');
    await writeFile(toml, '[plugins\n');
    const cases: Array<[string[], RegExp]> = [
      [['doctor', 'containerd-config', toml], /bad\.toml is not valid TOML/],
      [['doctor', 'kubelet-config', toml], /not valid YAML|no "kind: KubeletConfiguration"/],
      [['doctor', 'kubelet-config', join(dir, 'none.yaml')], /cannot read .*none\.yaml: no such file/],
      [
        ['render', 'kubelet-config', '--image-gc-low', '90'],
        /do not work together: imageGCLowThresholdPercent \(90\)/,
      ],
      [
        ['render', 'containerd-config', '--mirror', 'docker.io=ftp://x'],
        /must be an http:\/\/ or https:\/\/ URL/,
      ],
      [
        ['render', 'containerd-config', '--config-version', '4'],
        /--config-version "4": expected an integer from 2 to 3/,
      ],
    ];
    for (const [args, re] of cases) {
      const res = await hoist(args);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stdout}`);
      oneLine(res.stderr);
      assert.match(res.stderr, re);
    }
  });
});
