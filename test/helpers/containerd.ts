// Launches a real containerd 1.6 (`containerd --config FILE`) with every path under one temp dir,
// its CRI plugin enabled (registry hosts from a hosts dir, CNI conflist so the runtime is ready).
// With `flavor: '2.x'`, the containerd 2.x built from test/peers/containerd2 instead, with a
// version 3 config. Needs root: containerd mounts snapshots and creates its state.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { goPeerBinary } from './go-peers.js';
import { removeTempDir, tempDir } from './peers.js';
import type { RunResult } from './process.js';
import { run, startDaemon, waitUntil } from './process.js';

export interface ContainerdOptions {
  /** Extra TOML appended to the generated config.toml (e.g. more plugin sections). */
  extraToml?: string;
  startTimeoutMs?: number;
  /**
   * The CRI plugin's stats_collect_period: how often it re-measures snapshot usage, which is what
   * ImageFsInfo reports (containerd's default is 10 s).
   */
  criStatsCollectPeriodSeconds?: number;
  /**
   * '1.6' (default): Debian's containerd. '2.x': containerd 2.x from the Go peers cache
   * (scripts/install-peers.sh; check with requireGoPeer(t, 'containerd2', 'ctr2')), config
   * version 3, whose CRI reports images labelled io.cri-containerd.pinned=pinned as pinned.
   */
  flavor?: '1.6' | '2.x';
  /**
   * The CRI registry config_path written to config.toml: default the instance's hosts dir; a
   * string (or a function of the hosts dir) writes that value instead (e.g. a ':' list); null
   * writes none (containerd's default).
   */
  registryConfigPath?: string | null | ((hostsDir: string) => string);
  /** The config version to write: default 2 for '1.6' and 3 for '2.x' (2.x migrates 2 at start). */
  configVersion?: 2 | 3;
  /**
   * Rewrites the generated config.toml (after extraToml) before containerd starts, e.g. to merge
   * in a rendered config; gets the instance's hosts dir.
   */
  transformConfig?: (toml: string, paths: { hostsDir: string }) => string | Promise<string>;
}

export interface ContainerdPeer {
  /** The gRPC unix socket (CRI runtime.v1 is served on it too). */
  socket: string;
  /** Every path of this instance lives under this dir; removed by stop(). */
  dir: string;
  root: string;
  state: string;
  /** The CRI registry config_path: one folder per registry host holding hosts.toml. */
  hostsDir: string;
  cniConfDir: string;
  configPath: string;
  flavor: '1.6' | '2.x';
  /** `ctr --address SOCK [--namespace NS] ...args`; rejects with ctr's stderr on failure. */
  ctr(args: string[], opts?: { namespace?: string; timeoutMs?: number }): Promise<RunResult>;
  /** containerd's own log so far (its stderr and stdout). */
  output(): string;
  /** Stops containerd and starts it again on the same config, root and socket (config.toml is read at start). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

// The CRI plugin's default CNI paths (/opt/cni/bin, /etc/cni/net.d) are not where Debian puts them.
const CNI_BIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];

function cniBinDir(): string {
  return CNI_BIN_DIRS.find((d) => existsSync(join(d, 'bridge'))) ?? CNI_BIN_DIRS[0]!;
}

function tomlString(s: string): string {
  return JSON.stringify(s);
}

function renderConfig(p: {
  root: string;
  state: string;
  socket: string;
  hostsDir: string;
  cniConfDir: string;
  optDir: string;
  statsCollectPeriodSeconds?: number;
  /** null: no config_path line. */
  registryConfigPath: string | null;
  /** Plugins to disable besides the snapshotters (containerd 2.x: NRI). */
  extraDisabled?: string[];
}) {
  return `version = 2
root = ${tomlString(p.root)}
state = ${tomlString(p.state)}
# Snapshotters that need a special filesystem or device only log errors here.
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",${(p.extraDisabled ?? []).map((d) => `\n  ${tomlString(d)},`).join('')}
]

[grpc]
  address = ${tomlString(p.socket)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${tomlString(p.optDir)}

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"${p.statsCollectPeriodSeconds !== undefined ? `\n  stats_collect_period = ${p.statsCollectPeriodSeconds}` : ''}

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = ${tomlString(cniBinDir())}
  conf_dir = ${tomlString(p.cniConfDir)}

${registryTable('[plugins."io.containerd.grpc.v1.cri".registry]', p.registryConfigPath)}`;
}

function registryTable(header: string, configPath: string | null): string {
  return configPath === null ? '' : `\n${header}\n  config_path = ${tomlString(configPath)}\n`;
}

// containerd 2.x, config version 3: the CRI plugin is split into io.containerd.cri.v1.images
// (registry, snapshotter, pulls) and io.containerd.cri.v1.runtime (runtimes, CNI); the gRPC
// plugin keeps only the server settings. CRI pulls go through the transfer service, which takes
// the images plugin's registry config_path as ONE directory: a ':' list (the 2.x default when
// unset, "/etc/containerd/certs.d:/etc/docker/certs.d") silently disables hosts.toml for CRI pulls
// (containerd#12415) unless use_local_image_pull = true. Hence one directory here.
function renderConfigV3(p: Parameters<typeof renderConfig>[0]) {
  const period = p.statsCollectPeriodSeconds;
  const stats = period !== undefined ? `\n  stats_collect_period = ${period}` : '';
  return `version = 3
root = ${tomlString(p.root)}
state = ${tomlString(p.state)}
# Snapshotters that need a special filesystem or device only log errors here; NRI would listen on
# the one global /var/run/nri/nri.sock that parallel instances share.
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.nri.v1.nri",
]

[grpc]
  address = ${tomlString(p.socket)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${tomlString(p.optDir)}

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.cri.v1.images"]${stats}
${registryTable('[plugins."io.containerd.cri.v1.images".registry]', p.registryConfigPath)}
[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = [${tomlString(cniBinDir())}]
  conf_dir = ${tomlString(p.cniConfDir)}
`;
}

// A bridge + loopback network: the CRI plugin reports NetworkReady once a conflist loads.
const CNI_CONFLIST = {
  cniVersion: '1.0.0',
  name: 'hoist-test',
  plugins: [
    {
      type: 'bridge',
      bridge: 'hoist-cni0',
      isGateway: true,
      ipMasq: false,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.88.0.0/16' }]] },
    },
    { type: 'loopback' },
  ],
};

/** Unmounts whatever containerd left mounted under `dir` (snapshots of containers never removed). */
async function unmountUnder(dir: string): Promise<void> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of points) await run('umount', ['-l', point]).catch(() => undefined);
}

/**
 * Starts containerd on a socket under /tmp/hoist-ctd-XXXXXX (unix socket paths are limited to
 * 107 bytes, so the OS temp dir may be too deep) and waits until `ctr version` answers.
 */
export async function startContainerd(opts: ContainerdOptions = {}): Promise<ContainerdPeer> {
  const flavor = opts.flavor ?? '1.6';
  let containerdBin = 'containerd';
  let ctrBin = 'ctr';
  let env: NodeJS.ProcessEnv | undefined;
  if (flavor === '2.x') {
    const built = goPeerBinary('containerd2');
    const builtCtr = goPeerBinary('ctr2');
    if (built === undefined || builtCtr === undefined) {
      throw new Error('containerd 2.x is not built: run scripts/install-peers.sh');
    }
    containerdBin = built;
    ctrBin = builtCtr;
    // Its own containerd-shim-runc-v2 sits beside it; first on PATH so Debian's 1.6 shim is not used.
    env = { ...process.env, PATH: [dirname(built), process.env.PATH ?? ''].join(delimiter) };
  }
  const dir = await tempDir('hoist-ctd', '/tmp');
  const paths = {
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    socket: join(dir, 'c.sock'),
    hostsDir: join(dir, 'hosts'),
    cniConfDir: join(dir, 'cni'),
    optDir: join(dir, 'opt'),
  };
  const configPath = join(dir, 'config.toml');
  try {
    for (const d of [paths.root, paths.state, paths.hostsDir, paths.cniConfDir])
      await mkdir(d, { recursive: true });
    await writeFile(join(paths.cniConfDir, '10-hoist-test.conflist'), JSON.stringify(CNI_CONFLIST, null, 2));
    const statsPeriod = opts.criStatsCollectPeriodSeconds;
    const version = opts.configVersion ?? (flavor === '2.x' ? 3 : 2);
    const render = version === 3 ? renderConfigV3 : renderConfig;
    const text =
      render({
        ...paths,
        ...(statsPeriod !== undefined ? { statsCollectPeriodSeconds: statsPeriod } : {}),
        registryConfigPath:
          opts.registryConfigPath === undefined
            ? paths.hostsDir
            : typeof opts.registryConfigPath === 'function'
              ? opts.registryConfigPath(paths.hostsDir)
              : opts.registryConfigPath,
        // containerd 2.x's NRI would listen on the one global /var/run/nri/nri.sock.
        ...(flavor === '2.x' ? { extraDisabled: ['io.containerd.nri.v1.nri'] } : {}),
      }) + (opts.extraToml ?? '');
    await writeFile(
      configPath,
      opts.transformConfig ? await opts.transformConfig(text, { hostsDir: paths.hostsDir }) : text,
    );
  } catch (e) {
    await removeTempDir(dir);
    throw e;
  }

  const launch = () => startDaemon(containerdBin, ['--config', configPath], env !== undefined ? { env } : {});
  let daemon = launch();
  let earlier = '';
  const ctr: ContainerdPeer['ctr'] = (args, o = {}) =>
    run(ctrBin, ['--address', paths.socket, ...(o.namespace ? ['--namespace', o.namespace] : []), ...args], {
      timeoutMs: o.timeoutMs ?? 120_000,
    });
  const stop = async () => {
    await daemon.stop();
    await unmountUnder(dir);
    await removeTempDir(dir);
  };
  const ready = () =>
    waitUntil(
      `containerd on ${paths.socket}`,
      async () => {
        if (!existsSync(paths.socket)) return false;
        await ctr(['version'], { timeoutMs: 5_000 });
        return true;
      },
      { daemon, timeoutMs: opts.startTimeoutMs ?? 30_000 },
    );
  const restart = async () => {
    await daemon.stop();
    earlier += daemon.output();
    daemon = launch();
    await ready();
  };

  try {
    await ready();
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    ...paths,
    dir,
    configPath,
    flavor,
    ctr,
    output: () => earlier + daemon.output(),
    restart,
    stop,
  };
}

export interface HostsTomlOptions {
  /** Mirror URLs carry the full API path (e.g. http://host/v2/ns); sets override_path = true. */
  overridePath?: boolean;
  /** Capabilities of each mirror; default ["pull", "resolve"]. */
  capabilities?: string[];
}

/**
 * Writes `<hostsDir>/<registryHost>/hosts.toml` (containerd's registry host config, docs/hosts.md):
 * containerd tries each mirror in order, then `serverUrl`. Returns the file's path.
 */
export async function writeHostsToml(
  hostsDir: string,
  registryHost: string,
  serverUrl: string,
  mirrorUrls: string[],
  opts: HostsTomlOptions = {},
): Promise<string> {
  const capabilities = opts.capabilities ?? ['pull', 'resolve'];
  const lines = [`server = ${tomlString(serverUrl)}`, ''];
  for (const mirror of mirrorUrls) {
    lines.push(`[host.${tomlString(mirror)}]`);
    lines.push(`  capabilities = [${capabilities.map(tomlString).join(', ')}]`);
    if (opts.overridePath === true) lines.push('  override_path = true');
    lines.push('');
  }
  const folder = join(hostsDir, registryHost);
  await mkdir(folder, { recursive: true });
  const path = join(folder, 'hosts.toml');
  await writeFile(path, lines.join('\n'));
  return path;
}
