import type { Command } from 'commander';
import { pino } from 'pino';
import { ConfigError, loadMirrorConfig, Mirror, MIRROR_DEFAULTS, type MirrorFlags } from '../mirror/index.js';
import { UsageError } from './usage-error.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerMirror(program: Command): void {
  program
    .command('mirror')
    .description('run the read-only OCI pull-through mirror for many upstream registries')
    .option('--listen <host:port>', `address to serve on (default ${MIRROR_DEFAULTS.listen})`)
    .option(
      '--storage <dir>',
      `where blobs, manifests and tags are kept (default ${MIRROR_DEFAULTS.storage})`,
    )
    .option(
      '--upstream <name=url>',
      'an upstream registry: NAME is the host as clients name it (docker.io, 127.0.0.1:6000); repeatable',
      collect,
    )
    .option('--default-upstream <name>', 'upstream for requests that name none (default docker.io)')
    .option('--config <file>', 'YAML configuration file; flags win over it')
    .addHelpText(
      'after',
      `
With no upstream configured it mirrors docker.io, ghcr.io, quay.io, registry.k8s.io, gcr.io,
nvcr.io and public.ecr.aws. Logs are JSON lines on stderr; stdout gets one line,
"listening on http://HOST:PORT", once requests are accepted.`,
    )
    .action(async (opts: MirrorFlags) => {
      let config;
      try {
        config = await loadMirrorConfig(opts);
      } catch (err) {
        if (err instanceof ConfigError) throw new UsageError(err.message, { cause: err });
        throw err;
      }
      const logger = pino({ level: config.logLevel }, pino.destination({ fd: 2, sync: false }));
      const mirror = new Mirror({ config, logger });
      let address;
      try {
        address = await mirror.listen();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
          throw new UsageError(
            `cannot listen on ${config.listen.host}:${config.listen.port}: ${code}; choose another --listen`,
          );
        }
        throw err;
      }
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      process.stdout.write(`listening on http://${host}:${address.port}\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'shutting down');
          mirror.close().then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
