import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  checkImage,
  EstargzError,
  ESTARGZ_DEFAULTS,
  ImageConverter,
  parseDockerConfig,
  parsePlatform,
  parsePriorityList,
  resolveEndpoint,
  type ConvertImageResult,
  type ImageCheck,
  type ProgressEvent,
  type RegistryAuthSources,
  type RepoRef,
} from '../estargz/index.js';
import { ConfigError, loadMirrorConfig } from '../mirror/index.js';
import { formatPlatform, OciParseError, parseImageReference, type ImageReference } from '../oci/index.js';
import { RegistryClient, type Credentials } from '../registry-client/index.js';
import { authFileAlias, authfileFlag, authfileFlagName, type AuthfileFlags } from './node.js';
import { UsageError } from './usage-error.js';

interface ConvertFlags extends AuthfileFlags {
  check?: boolean;
  plainHttp?: string[];
  prioritize?: string;
  chunkSize?: string;
  gzipLevel?: string;
  config?: string;
  output?: string;
  platform?: string[];
}

/** EstargzError codes that mean the input was bad (exit 2) rather than the work failing (exit 1). */
const BAD_INPUT = new Set([
  'UNSUPPORTED_COMPRESSION',
  'UNSUPPORTED_MEDIA_TYPE',
  'PRIORITY_LIST_INVALID',
  'TAR_INVALID',
  'PLATFORM_INVALID',
  'PLATFORM_NOT_FOUND',
]);

function parseRef(input: string, what: string): ImageReference {
  try {
    return parseImageReference(input);
  } catch (err) {
    if (err instanceof OciParseError) throw new UsageError(`${what}: ${err.message}`);
    throw err;
  }
}

function parseIntFlag(
  value: string | undefined,
  flag: string,
  min: number,
  max: number,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}, not "${value}"`);
  }
  return Number(value);
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

/** Credentials: the mirror's YAML (`--config`) first, then Docker's config.json. */
async function authSources(flags: ConvertFlags): Promise<RegistryAuthSources> {
  const sources: RegistryAuthSources = {};
  if (flags.config) {
    try {
      const config = await loadMirrorConfig({ config: flags.config });
      sources.upstreams = new Map(
        config.upstreams.map((u) => {
          const credentials: Credentials | undefined =
            u.username !== undefined ? { username: u.username, password: u.password ?? '' } : undefined;
          return [u.name, { url: u.url, ...(credentials ? { credentials } : {}) }];
        }),
      );
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(err.message);
      throw err;
    }
  }
  const explicit = authfileFlag(flags);
  const path = explicit ?? join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  let text: string | undefined;
  if (explicit) text = await readText(explicit, authfileFlagName(flags));
  else text = await readFile(path, 'utf8').catch(() => undefined); // the default file is optional
  if (text !== undefined) {
    try {
      sources.docker = parseDockerConfig(text, path);
    } catch (err) {
      throw new UsageError(`${(err as Error).message}; fix it or point --authfile elsewhere`);
    }
  }
  return sources;
}

/**
 * `--plain-http REGISTRY`, as in `analyze images` and `controller`: one registry (host[:port]) per
 * flag. A value with a slash is an image reference that the flag swallowed (the flag once took no
 * value): say so rather than convert the wrong image.
 */
export function parsePlainHttp(value: string, previous: string[] = []): string[] {
  if (!/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:]+\](:\d+)?$/.test(value)) {
    throw new UsageError(
      `--plain-http takes a registry, host[:port], not "${value}" (e.g. --plain-http registry.local:5000; repeatable)`,
    );
  }
  return [...previous, value];
}

function repoRef(ref: ImageReference, sources: RegistryAuthSources, plainHttp: string[]): RepoRef {
  const endpoint = resolveEndpoint(ref.registry, sources, plainHttp.includes(ref.registry));
  const client = new RegistryClient({
    name: endpoint.name,
    url: endpoint.url,
    ...(endpoint.credentials ? { credentials: endpoint.credentials } : {}),
    userAgent: 'hoist-convert',
  });
  return { client, repo: ref.repository };
}

/** One line on a terminal, rewritten in place: which layer, how much read and written. */
function progressPrinter(): ((e: ProgressEvent) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (e) => {
    const now = Date.now();
    if (now - last < 200 && e.readBytes < e.layerSize) return;
    last = now;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    process.stderr.write(
      `\r${e.layer.slice(7, 19)}: ${mb(e.readBytes)}/${mb(e.layerSize)} MB read, ${mb(e.writtenBytes)} MB written   `,
    );
  };
}

function printConversion(result: ConvertImageResult, dst: string, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ destination: dst, ...result })}\n`);
    return;
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  for (const m of result.manifests) {
    const p = m.platform ? formatPlatform(m.platform) : 'image';
    process.stdout.write(`${p}: ${m.digest}\n`);
    for (const l of m.layers) {
      if (l.action === 'converted') {
        const missed =
          l.missedPrioritized.length > 0
            ? ` (${l.missedPrioritized.length} prioritized paths not in this layer)`
            : '';
        process.stdout.write(`  ${l.source} -> ${l.digest} ${l.size} bytes, toc ${l.tocDigest}${missed}\n`);
      } else {
        process.stdout.write(`  ${l.source} kept (${l.reason})\n`);
      }
    }
  }
  for (const o of result.others) {
    const p = o.platform ? `${formatPlatform(o.platform)} ` : '';
    if (o.action === 'dropped') {
      process.stdout.write(`${p}${o.digest} dropped (${o.reason})\n`);
      continue;
    }
    process.stdout.write(`${p}${o.digest} copied unchanged (${o.reason})\n`);
    if (o.reference) {
      // The statements inside still name the source manifest: say so rather than let it surprise.
      process.stdout.write(
        `  now refers to ${o.reference.destination}; the attestation's own subject is still the source manifest ${o.reference.source}\n`,
      );
    }
  }
  process.stdout.write(`pushed ${dst}@${result.digest}\n`);
}

function printCheck(check: ImageCheck, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(check)}\n`);
    return;
  }
  for (const m of check.manifests) {
    const p = m.platform ? formatPlatform(m.platform) : 'image';
    process.stdout.write(`${p} ${m.digest}\n`);
    for (const l of m.layers) {
      process.stdout.write(
        l.valid
          ? `  ${l.digest} valid eStargz (${l.entries} entries, ${l.chunksVerified} chunks verified)\n`
          : `  ${l.digest} NOT valid eStargz: ${l.error}\n`,
      );
    }
  }
  for (const s of check.skipped)
    process.stdout.write(`${s.digest} not an image, not checked (${s.reason})\n`);
  process.stdout.write(
    check.valid ? 'every layer is valid eStargz\n' : 'some layers are not valid eStargz\n',
  );
}

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('convert an image to eStargz (lazy pulling), registry to registry; or --check one')
    .argument('<src>', 'source image reference (with --check: the image to check)')
    .argument('[dst]', 'destination image reference (a tag)')
    .option('--check', 'check that every layer of SRC is valid eStargz instead of converting')
    .option(
      '--plain-http <registry>',
      'reach this registry over http (loopback ones always are); repeatable',
      parsePlainHttp,
    )
    .option(
      '--platform <os/arch[/variant]>',
      'convert only this platform of an index (repeatable; default every platform)',
      (value: string, all: string[] = []) => [...all, value],
    )
    .option('--prioritize <file>', 'paths to put first (one per line, or a ctr-remote --record-out file)')
    .option(
      '--chunk-size <bytes>',
      `largest payload per gzip member (default ${ESTARGZ_DEFAULTS.chunkSizeBytes})`,
    )
    .option('--gzip-level <0-9>', `gzip level (default ${ESTARGZ_DEFAULTS.gzipLevel}, as ctr-remote)`)
    .option(
      '--authfile <file>',
      'Docker config.json with credentials (default $DOCKER_CONFIG/config.json or ~/.docker/config.json)',
    )
    .addOption(authFileAlias())
    .option('--config <file>', "the mirror's YAML configuration: upstream URLs and credentials")
    .option('--output <format>', 'text or json', 'text')
    .action(async (srcArg: string, dstArg: string | undefined, flags: ConvertFlags) => {
      const json = flags.output === 'json';
      if (flags.output !== 'text' && !json)
        throw new UsageError(`--output must be text or json, not "${flags.output}"`);
      const src = parseRef(srcArg, 'source');
      const sources = await authSources(flags);
      const plainHttp = flags.plainHttp ?? [];
      const srcRepo = repoRef(src, sources, plainHttp);
      const srcReference = src.digest?.value ?? src.tag ?? 'latest';
      try {
        if (flags.check) {
          if (dstArg !== undefined) throw new UsageError('--check takes one image reference, not two');
          if ((flags.platform ?? []).length > 0)
            throw new UsageError('--platform applies to conversion, not --check');
          const check = await checkImage(srcRepo, srcReference);
          printCheck(check, json);
          if (!check.valid) process.exitCode = 1;
          return;
        }
        if (dstArg === undefined) throw new UsageError('convert needs a destination: hoist convert SRC DST');
        const dst = parseRef(dstArg, 'destination');
        if (dst.digest) throw new UsageError('the destination must be a tag, not a digest');
        const prioritizedFiles = flags.prioritize
          ? parsePriorityList(await readText(flags.prioritize, '--prioritize file'), flags.prioritize)
          : [];
        const platforms = (flags.platform ?? []).map(parsePlatform);
        const onProgress = progressPrinter();
        const converter = new ImageConverter(srcRepo, repoRef(dst, sources, plainHttp), {
          prioritizedFiles,
          platforms,
          chunkSizeBytes: parseIntFlag(
            flags.chunkSize,
            '--chunk-size',
            4096,
            1 << 30,
            ESTARGZ_DEFAULTS.chunkSizeBytes,
          ),
          gzipLevel: parseIntFlag(flags.gzipLevel, '--gzip-level', 0, 9, ESTARGZ_DEFAULTS.gzipLevel),
          ...(onProgress ? { onProgress } : {}),
        });
        const result = await converter.convert(srcReference, dst.tag ?? 'latest');
        printConversion(result, `${dst.registry}/${dst.repository}:${dst.tag ?? 'latest'}`, json);
      } catch (err) {
        if (err instanceof EstargzError && BAD_INPUT.has(err.code))
          throw new UsageError(err.message, { cause: err });
        throw err;
      }
    });
}
