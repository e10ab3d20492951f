// Starts Hoist's mirror in-process on an ephemeral loopback port, with its JSON log lines kept
// in memory for assertions.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Mirror, resolveMirrorConfig, type MirrorConfig } from '../../src/mirror/index.js';
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
