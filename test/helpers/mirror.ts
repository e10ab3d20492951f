// Starts Hoist's mirror in-process on an ephemeral loopback port, with its JSON log lines kept
// in memory for assertions; or as its own process (startMirrorProcess), also in a network namespace.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Mirror, resolveMirrorConfig, type MirrorConfig } from '../../src/mirror/index.js';
import type { CommandWrapper, HostPlacement } from './netns.js';
import { removeTempDir, tempDir } from './peers.js';

export interface MirrorHandle {
  mirror: Mirror;
  url: string;
  host: string;
  storage: string;
  config: MirrorConfig;
  /** Parsed JSON log lines so far. */
  logs(): Array<Record<string, unknown>>;
  /** The value of one Prometheus sample, e.g. metric('hoist_mirror_upstream_bytes_total', {upstream: 'x'}). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export async function startMirror(
  upstreams: Record<string, string>,
  options: { defaultUpstream?: string; file?: Record<string, unknown>; storage?: string } = {},
): Promise<MirrorHandle> {
  const storage = options.storage ?? (await tempDir('hoist-mirror-'));
  const config = await resolveMirrorConfig(
    { listen: '127.0.0.1:0', logLevel: 'info', ...options.file },
    {
      storage,
      upstream: Object.entries(upstreams).map(([name, url]) => `${name}=${url}`),
      ...(options.defaultUpstream ? { defaultUpstream: options.defaultUpstream } : {}),
    },
  );
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      cb();
    },
  });
  const mirror = new Mirror({ config, logger: pino({ level: 'info' }, sink) });
  const address = await mirror.listen();
  const host = `127.0.0.1:${address.port}`;
  return {
    mirror,
    url: `http://${host}`,
    host,
    storage,
    config,
    logs: () => lines,
    metric: async (name, labels = {}) => {
      const metric = mirror.metrics.registry.getSingleMetric(name);
      if (!metric) throw new Error(`no metric ${name}`);
      const { values } = await metric.get();
      let sum = 0;
      for (const v of values) {
        if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
      }
      return sum;
    },
    close: async () => {
      await mirror.close(1000);
      if (!options.storage) await removeTempDir(storage);
    },
  };
}

export interface MirrorProcess {
  /** http://ADDRESS:PORT as the mirror printed it. */
  url: string;
  /** ADDRESS:PORT */
  host: string;
  storage: string;
  /** Its JSON log (stderr) so far. */
  stderr(): string;
  /** Sends a signal (e.g. SIGKILL for a mirror killed mid-transfer); stop() still cleans up. */
  kill(signal: NodeJS.Signals): void;
  /** Stops it (SIGTERM) and deletes its storage unless the caller gave one. */
  stop(): Promise<void>;
}

/**
 * Hoist's mirror as users run it (`node bin/hoist.js mirror`, dist/ must be built), in its own
 * process: optionally on another host (`placement`, test/helpers/netns.ts), where the in-process
 * startMirror cannot go.
 */
export async function startMirrorProcess(
  upstreams: Record<string, string>,
  options: {
    defaultUpstream?: string;
    storage?: string;
    placement?: HostPlacement;
    args?: string[];
    /** How to run it on this host, e.g. as another user (test/helpers/setpriv.ts). */
    command?: CommandWrapper;
  } = {},
): Promise<MirrorProcess> {
  const storage = options.storage ?? (await tempDir('hoist-mirror-'));
  const listen = options.placement ? `${options.placement.address}:${options.placement.port}` : '127.0.0.1:0';
  const args = ['mirror', '--listen', listen, '--storage', storage];
  for (const [name, url] of Object.entries(upstreams)) args.push('--upstream', `${name}=${url}`);
  if (options.defaultUpstream) args.push('--default-upstream', options.defaultUpstream);
  args.push(...(options.args ?? []));
  // Loaded here so that in-process mirror tests do not load cri.ts's gRPC client.
  const { startHoist } = await import('./cri.js');
  const command = options.placement?.command ?? options.command;
  const proc = startHoist(args, command ? { command } : {});
  const cleanup = async () => {
    await proc.stop();
    if (!options.storage) await removeTempDir(storage);
  };
  let url: string;
  try {
    url = await proc.url;
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    url,
    host: new URL(url).host,
    storage,
    stderr: proc.stderr,
    kill: (signal) => void proc.child.kill(signal),
    stop: cleanup,
  };
}
