// containerd's config.toml for `hoist node configure`: which containerd reads it (1.6/1.7 vs 2.x),
// where config_path lives per config version, the ':' list containerd 2.x's transfer service
// ignores (containerd#12415), the one-key text edit that keeps every other byte, and the
// backup/restore of the file. Also the doctor's matching finding. No containerd needed here;
// test/node-containerd2.test.ts runs the same configurations under real ones.
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'smol-toml';
import { checkContainerdConfig, parseContainerdConfig } from '../src/doctor/index.js';
import {
  checkConfigPath,
  configureHosts,
  NodeConfigError,
  parseContainerdVersion,
  parseRegistryList,
  setTomlString,
  unconfigureHosts,
  type ContainerdVersion,
} from '../src/node/index.js';
import { runHoist } from './helpers/cri.js';
import { testTempDir } from './helpers/peers.js';

const CERTS = '/etc/containerd/certs.d';
const V2 = ['plugins', 'io.containerd.grpc.v1.cri', 'registry'];
const V3 = ['plugins', 'io.containerd.cri.v1.images', 'registry'];
const v = (s: string): ContainerdVersion => parseContainerdVersion(s, 'flag')!;

function tableAt(doc: unknown, keys: string[]): Record<string, unknown> | undefined {
  let node = doc as Record<string, unknown> | undefined;
  for (const k of keys) node = node?.[k] as Record<string, unknown> | undefined;
  return node;
}

describe('containerd version', () => {
  it('reads the CRI answer, `containerd --version` lines and flags', () => {
    const cases: Array<[string, number, number]> = [
      ['v2.4.2', 2, 4],
      ['1.6.20~ds1', 1, 6],
      ['containerd github.com/containerd/containerd/v2 v2.4.2 ', 2, 4],
      ['containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3', 1, 6],
      ['2.1', 2, 1],
    ];
    for (const [text, major, minor] of cases) {
      const got = parseContainerdVersion(text, 'binary');
      assert.deepEqual([got?.major, got?.minor], [major, minor], text);
    }
    assert.equal(parseContainerdVersion('containerd', 'binary'), undefined);
  });
});

describe('config_path text edit', () => {
  it('changes one line and keeps comments, spacing, quoting and CRLF', () => {
    const text =
      "# mine\r\nversion = 3\r\n\r\n[plugins.'io.containerd.cri.v1.images'.registry]   # registry\r\n    config_path = '/etc/containerd/certs.d:/etc/docker/certs.d'\r\n\r\n[plugins.'io.containerd.cri.v1.images'.pinned_images]\r\n  sandbox = 'x'\r\n";
    const out = setTomlString(text, V3, 'config_path', CERTS);
    assert.equal(out, text.replace(`'/etc/containerd/certs.d:/etc/docker/certs.d'`, `"${CERTS}"`));
  });

  it('adds the key to an existing table, or the table at the end', () => {
    const inTable = `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  # hosts\n[plugins."io.containerd.grpc.v1.cri".registry.headers]\n  X = ["y"]\n`;
    const out = setTomlString(inTable, V2, 'config_path', CERTS);
    assert.equal(tableAt(parse(out ?? ''), V2)?.config_path, CERTS);
    assert.ok(
      out?.startsWith(`version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path =`),
    );
    const noTable = 'version = 3\nroot = "/var/lib/containerd"';
    assert.equal(
      setTomlString(noTable, V3, 'config_path', CERTS),
      `${noTable}\n\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "${CERTS}"\n`,
    );
  });

  it('refuses layouts a line edit cannot change safely', () => {
    for (const text of [
      // The table is defined inline: a new [header] would redefine it.
      `version = 3\n[plugins."io.containerd.cri.v1.images"]\n  registry = { config_path = "/x:/y" }\n`,
      'version = = 3',
    ]) {
      assert.equal(setTomlString(text, V3, 'config_path', CERTS), undefined, text);
    }
  });
});

describe('config_path check by containerd version', () => {
  const list = `${CERTS}:/etc/docker/certs.d`;
  const cases: Array<{
    name: string;
    text: string | undefined;
    containerd?: string;
    status: string;
    table?: string[];
    version?: number;
  }> = [
    {
      name: '1.7 reads a list from a version 2 file',
      text: `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${list}"\n`,
      containerd: '1.7',
      status: 'ok',
    },
    {
      name: 'the same file on 2.1: the transfer service ignores the list',
      text: `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${list}"\n`,
      containerd: '2.1',
      status: 'list-ignored',
      table: V2,
    },
    {
      name: 'version 2 without config_path on 2.x: set in the old table, which 2.x migrates',
      text: `version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "x"\n`,
      containerd: 'v2.4.2',
      status: 'not-set',
      table: V2,
    },
    {
      name: 'version 3, list, a setting that forces the local pull: still fixed',
      text: `version = 3\n[plugins."io.containerd.cri.v1.images"]\n  max_concurrent_downloads = 10\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "${list}"\n`,
      status: 'list-ignored',
      table: V3,
    },
    {
      name: 'a version 3 file on 1.7, which refuses it',
      text: `version = 3\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "${CERTS}"\n`,
      containerd: '1.7',
      status: 'wrong-version',
    },
    {
      name: 'no file on 2.x: a version 3 file',
      text: undefined,
      containerd: '2.4',
      status: 'no-config-file',
      table: V3,
      version: 3,
    },
    {
      name: 'no file, containerd unknown: version 2, read by every version',
      text: undefined,
      status: 'no-config-file',
      table: V2,
      version: 2,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const check = checkConfigPath(c.text, '/etc/containerd/config.toml', CERTS, {
        ...(c.containerd ? { containerd: v(c.containerd) } : {}),
      });
      assert.equal(check.status, c.status, check.message);
      if (c.status === 'ok') return;
      assert.ok(check.message && !check.message.includes('\n'), 'one line');
      if (c.status === 'list-ignored') assert.match(check.message ?? '', /containerd#12415/);
      if (c.table) {
        const fixed = parse(check.fixedText ?? '');
        assert.equal(tableAt(fixed, c.table)?.config_path, CERTS);
        if (c.version) assert.equal((fixed as { version?: number }).version, c.version);
      }
    });
  }
});

describe('doctor containerd-config: config_path and containerd 2.x', () => {
  const rules = (text: string, containerdMajor?: number) =>
    checkContainerdConfig(
      parseContainerdConfig(text, 'c.toml'),
      containerdMajor === undefined ? {} : { containerdMajor },
    )
      .filter((f) => f.rule.startsWith('config-path') || f.rule === 'no-config-path')
      .map((f) => `${f.rule}:${f.severity}`);
  const v3 = (registry: string, images = '') =>
    `version = 3\n[plugins."io.containerd.cri.v1.images"]\n${images}[plugins."io.containerd.cri.v1.images".registry]\n${registry}`;
  const v2list = `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/a:/b"\n`;

  it('one error for a list or an unset config_path on version 3, with the fix', () => {
    assert.deepEqual(rules(v3('  config_path = "/a:/b"\n')), ['config-path-list:error']);
    assert.deepEqual(rules(v3('')), ['config-path-list:error'], "unset is 2.x's default list");
    const [finding] = checkContainerdConfig(parseContainerdConfig(v3(''), 'c.toml')).filter(
      (f) => f.rule === 'config-path-list',
    );
    assert.match(finding?.fix ?? '', /config_path = "\/etc\/containerd\/certs\.d"/);
  });

  it('no finding for one folder, or a list with use_local_image_pull', () => {
    assert.deepEqual(rules(v3('  config_path = "/etc/containerd/certs.d"\n')), []);
    assert.deepEqual(rules(v3('  config_path = "/a:/b"\n', '  use_local_image_pull = true\n')), []);
  });

  it('version 2: a warning when the containerd is unknown, an error on 2.x, nothing on 1.7', () => {
    assert.deepEqual(rules(v2list), ['config-path-list:warning']);
    assert.deepEqual(rules(v2list, 2), ['config-path-list:error']);
    assert.deepEqual(rules(v2list, 1), []);
    assert.deepEqual(rules('version = 2\n', 2), ['config-path-list:error']);
    assert.deepEqual(rules('version = 2\n', 1), ['no-config-path:info']);
  });
});

describe('configure and unconfigure containerd config.toml', () => {
  const registries = parseRegistryList('docker.io');
  const original = '# my containerd\nversion = 3\n\n[plugins."io.containerd.cri.v1.images".registry]\n';

  it('backs the file up before changing it and restores it byte for byte with the last registry', async (t) => {
    const dir = await testTempDir(t, 'hoist-ctdcfg-');
    const certsDir = join(dir, 'certs.d');
    const config = join(dir, 'config.toml');
    await writeFile(config, original, { mode: 0o600 });
    const content = setTomlString(original, V3, 'config_path', certsDir)!;
    const opts = {
      certsDir,
      mirrorUrl: 'http://127.0.0.1:5000',
      containerdConfig: { path: config, content },
    };
    const dry = await configureHosts({ ...opts, registries, dryRun: true });
    assert.deepEqual(
      dry.filter((f) => f.kind === 'containerd-config').map((f) => f.action),
      ['updated'],
    );
    assert.equal(await readFile(config, 'utf8'), original, '--dry-run writes nothing');
    await configureHosts({ ...opts, registries: parseRegistryList('docker.io,ghcr.io') });
    assert.equal(await readFile(config, 'utf8'), content);
    assert.equal((await stat(config)).mode & 0o777, 0o600, 'mode kept');
    const again = await configureHosts({ ...opts, registries });
    assert.deepEqual(
      again.filter((f) => f.kind === 'containerd-config').map((f) => f.action),
      ['unchanged'],
    );

    const first = await unconfigureHosts({ certsDir, registries: ['ghcr.io'] });
    assert.ok(
      first.every((f) => f.kind === 'hosts.toml'),
      'config_path stays while a registry is configured',
    );
    const last = await unconfigureHosts({ certsDir });
    assert.deepEqual(
      last.map((f) => [f.kind, f.action]),
      [
        ['hosts.toml', 'removed'],
        ['containerd-config', 'restored'],
      ],
    );
    assert.equal(await readFile(config, 'utf8'), original);
    assert.equal((await stat(config)).mode & 0o777, 0o600);
  });

  it('leaves a config file changed since configure as it is, and says so', async (t) => {
    const dir = await testTempDir(t, 'hoist-ctdcfg-');
    const certsDir = join(dir, 'certs.d');
    const config = join(dir, 'config.toml');
    await writeFile(config, original);
    const content = setTomlString(original, V3, 'config_path', certsDir)!;
    await configureHosts({
      certsDir,
      mirrorUrl: 'http://127.0.0.1:5000',
      registries,
      containerdConfig: { path: config, content },
    });
    const edited = `${content}\n[plugins."io.containerd.transfer.v1.local"]\n  max_concurrent_downloads = 8\n`;
    await writeFile(config, edited);
    const res = await unconfigureHosts({ certsDir });
    const cfg = res.find((f) => f.kind === 'containerd-config');
    assert.equal(cfg?.action, 'kept');
    assert.match(cfg?.reason ?? '', /changed since hoist configure/);
    assert.equal(await readFile(config, 'utf8'), edited);
  });

  it('refuses a second config file for the same certs dir, keeping the first backup', async (t) => {
    const dir = await testTempDir(t, 'hoist-ctdcfg-');
    const certsDir = join(dir, 'certs.d');
    const [a, b] = [join(dir, 'a.toml'), join(dir, 'b.toml')];
    for (const f of [a, b]) await writeFile(f, original);
    const content = setTomlString(original, V3, 'config_path', certsDir)!;
    const mirrorUrl = 'http://127.0.0.1:5000';
    await configureHosts({ certsDir, mirrorUrl, registries, containerdConfig: { path: a, content } });
    await assert.rejects(
      configureHosts({ certsDir, mirrorUrl, registries, containerdConfig: { path: b, content } }),
      (e: unknown) => e instanceof NodeConfigError && e.code === 'INVALID_CONTAINERD_CONFIG',
    );
    assert.equal(await readFile(b, 'utf8'), original);
    await unconfigureHosts({ certsDir });
    assert.equal(await readFile(a, 'utf8'), original);
  });

  it('removes a config file it created', async (t) => {
    const dir = await testTempDir(t, 'hoist-ctdcfg-');
    const certsDir = join(dir, 'certs.d');
    const config = join(dir, 'etc', 'config.toml');
    const check = checkConfigPath(undefined, config, certsDir);
    await configureHosts({
      certsDir,
      mirrorUrl: 'http://127.0.0.1:5000',
      registries,
      containerdConfig: { path: config, content: check.fixedText! },
    });
    assert.equal(tableAt(parse(await readFile(config, 'utf8')), V2)?.config_path, certsDir);
    await unconfigureHosts({ certsDir });
    await assert.rejects(stat(config), { code: 'ENOENT' });
  });
});

describe('CLI: doctor and render containerd-config by containerd version', () => {
  it('doctor --containerd-version decides whether a version 2 list is broken; bad input exits 2', async (t) => {
    const dir = await testTempDir(t, 'hoist-ctdcli-');
    const file = join(dir, 'config.toml');
    await writeFile(
      file,
      `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${CERTS}:/etc/docker/certs.d"\n`,
    );
    const doctor = (...extra: string[]) =>
      runHoist(['doctor', 'containerd-config', file, '--output', 'json', ...extra], { fromSource: true });
    const rulesOf = (stdout: string) =>
      (JSON.parse(stdout) as { findings: Array<{ rule: string; severity: string }> }).findings
        .filter((f) => f.rule === 'config-path-list')
        .map((f) => f.severity);
    const on2 = await doctor('--containerd-version', 'v2.1.5');
    assert.equal(on2.code, 1, on2.stderr);
    assert.deepEqual(rulesOf(on2.stdout), ['error']);
    const on17 = await doctor('--containerd-version', '1.7');
    assert.equal(on17.code, 0, on17.stderr);
    assert.deepEqual(rulesOf(on17.stdout), []);
    const bad = await doctor('--containerd-version', 'latest');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--containerd-version "latest"/);
  });

  it('render refuses a config_path list, which containerd 2.x would ignore', async () => {
    const res = await runHoist(
      ['render', 'containerd-config', '--config-version', '3', '--config-path', '/a:/b'],
      { fromSource: true },
    );
    assert.equal(res.code, 2);
    assert.match(res.stderr, /containerd#12415/);
    assert.equal(res.stderr.trim().split('\n').length, 1, 'one line');
  });
});
