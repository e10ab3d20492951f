import { Option, type Command } from 'commander';
import {
  CriClient,
  CriError,
  resolveRuntimeSocket,
  type PullProgressSnapshot,
  type RegistryAuth,
} from '../cri/index.js';
import {
  AssignmentError,
  DiskGuard,
  normaliseImage,
  parseHighWaterMark,
  type DiskCheck,
  type HighWaterMark,
} from '../agent/index.js';
import {
  authFilePath,
  checkContainerdConfig,
  configureHosts,
  containerdBinaryVersion,
  formatVersion,
  parseContainerdVersion,
  type ContainerdVersion,
  loadAuthFile,
  NodeConfigError,
  parseMirrorUrl,
  parseRegistryList,
  pullImages,
  unconfigureHosts,
  type AuthFile,
  type FileResult,
  type RegistryCredentials,
} from '../node/index.js';
import { formatBytes } from '../analyze/index.js';
import { parseImageReference } from '../oci/index.js';
import { PUBLIC_UPSTREAMS } from '../mirror/index.js';
import { UsageError } from './usage-error.js';

export const DEFAULT_CERTS_DIR = '/etc/containerd/certs.d';
export const DEFAULT_CONTAINERD_CONFIG = '/etc/containerd/config.toml';
const DEFAULT_REGISTRIES = Object.keys(PUBLIC_UPSTREAMS).join(',');

type Output = 'text' | 'json';

function outputFormat(value: string | undefined): Output {
  if (value === undefined || value === 'text') return 'text';
  if (value === 'json') return 'json';
  throw new UsageError(`--output must be text or json, not "${value}"`);
}

/** NodeConfigError / CriError for bad input become usage errors (exit 2). */
export function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof NodeConfigError && err.isInput) throw new UsageError(err.message, { cause: err });
    if (err instanceof CriError && (err.code === 'ENDPOINT_INVALID' || err.code === 'NO_RUNTIME_SOCKET'))
      throw new UsageError(err.message, { cause: err });
    if (err instanceof AssignmentError) throw new UsageError(err.message, { cause: err });
    throw err;
  }
}

export function parseMark(value: string | undefined): HighWaterMark | undefined {
  if (value === undefined) return undefined;
  try {
    return parseHighWaterMark(value);
  } catch (err) {
    throw new UsageError(`--disk-high-water: ${(err as Error).message}`);
  }
}

const RESTART_NOTE =
  'containerd reads config.toml only at start: restart it (e.g. systemctl restart containerd) to apply';

/**
 * The node's containerd version: --containerd-version, else the CRI socket's Version call, else
 * `containerd --version`; undefined when none answers (the config check then assumes the file may
 * be read by 2.x, whose rules are the stricter ones).
 */
export async function detectContainerd(
  flag: string | undefined,
  endpoint: string | undefined,
): Promise<ContainerdVersion | undefined> {
  if (flag !== undefined) {
    const v = parseContainerdVersion(flag, 'flag');
    if (!v) throw new UsageError(`--containerd-version "${flag}": use MAJOR.MINOR, e.g. 1.7 or 2.1`);
    return v;
  }
  let socket: string | undefined;
  try {
    socket = resolveRuntimeSocket(endpoint);
  } catch (err) {
    if (endpoint !== undefined) throw new UsageError((err as Error).message, { cause: err });
  }
  if (socket !== undefined) {
    const cri = new CriClient({ socket, callTimeoutMs: 5_000 });
    try {
      const v = await cri.version();
      if (v.runtimeName === 'containerd') return parseContainerdVersion(v.runtimeVersion, 'cri');
      // Another runtime (CRI-O) answers on this socket: containerd's config is not in play.
    } catch {
      // A socket nobody answers on: fall back to the binary.
    } finally {
      cri.close();
    }
  }
  return containerdBinaryVersion();
}

function printFiles(files: FileResult[], dryRun: boolean): void {
  for (const f of files) {
    if (dryRun && f.content !== undefined) {
      process.stdout.write(
        `# ${f.path} (${f.action === 'unchanged' ? 'unchanged' : `would be ${f.action}`})\n${f.content}\n`,
      );
    } else {
      process.stdout.write(`${dryRun ? 'would be ' : ''}${f.action}: ${f.path}\n`);
    }
  }
}

function parseCreds(creds: string | undefined, auth: string | undefined): RegistryCredentials | undefined {
  const value = creds ?? (auth !== undefined ? Buffer.from(auth, 'base64').toString('utf8') : undefined);
  if (value === undefined) return undefined;
  const colon = value.indexOf(':');
  if (colon <= 0)
    throw new UsageError(
      creds !== undefined
        ? '--creds must be USERNAME:PASSWORD'
        : '--auth must be base64 of USERNAME:PASSWORD',
    );
  return { username: value.slice(0, colon), password: value.slice(colon + 1) };
}

export const AUTH_FILE_HELP =
  'registry credentials, a Docker config.json (auths.<registry>.auth or username/password); default $DOCKER_CONFIG/config.json when DOCKER_CONFIG is set';

/** The two spellings of the credentials file flag: `--authfile`, and the older `--auth-file`. */
export interface AuthfileFlags {
  authfile?: string;
  authFile?: string;
}

/**
 * `--authfile FILE`, spelt as podman and skopeo spell it. Add `authFileAlias()` beside it: the
 * older `--auth-file`, hidden from help, so that existing command lines and manifests go on working.
 */
export const authfileOption = (help: string = AUTH_FILE_HELP): Option =>
  new Option('--authfile <file>', help);
export const authFileAlias = (): Option =>
  new Option('--auth-file <file>', 'the older spelling of --authfile').hideHelp();

/** The credentials file named by either spelling; both at once must agree. */
export function authfileFlag(opts: AuthfileFlags): string | undefined {
  if (opts.authfile !== undefined && opts.authFile !== undefined && opts.authfile !== opts.authFile)
    throw new UsageError('--authfile and --auth-file (its older spelling) name different files: give one');
  return opts.authfile ?? opts.authFile;
}

/** The credentials-file flag as the user spelt it, for error messages. */
export const authfileFlagName = (opts: AuthfileFlags): string =>
  opts.authfile === undefined && opts.authFile !== undefined ? '--auth-file' : '--authfile';

/** The --authfile, or the DOCKER_CONFIG default; a bad file is bad input (exit 2). */
export async function readAuthFile(
  flag: string | undefined,
  flagName = '--authfile',
): Promise<AuthFile | undefined> {
  const path = authFilePath(flag, process.env);
  if (path === undefined) return undefined;
  try {
    return await loadAuthFile(path, flag !== undefined);
  } catch (err) {
    if (err instanceof NodeConfigError) throw new UsageError(`${flagName}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Transfer sizes as containerd and kubectl state them: powers of 1024 (`70.3 MiB`). */
function sizeOf(n: number): string {
  return formatBytes(n, { units: 'iec' });
}

function progressLine(image: string, p: PullProgressSnapshot, elapsedMs: number): string {
  const layers = p.layersSeen > 0 ? `${p.layersDone}/${p.layersSeen} layers, ` : '';
  const bytes = p.totalBytes > 0 ? `${sizeOf(p.bytes)} / ${sizeOf(p.totalBytes)}, ` : '';
  return `${image}: ${layers}${bytes}${(elapsedMs / 1000).toFixed(1)}s`;
}

interface CommonFlags {
  runtimeEndpoint?: string;
  output?: string;
}

export function registerNode(program: Command): void {
  const node = program
    .command('node')
    .description("configure this node's container runtime and pull images into it");

  node
    .command('configure')
    .description(
      'point containerd at a Hoist mirror: one hosts.toml per registry, mirror first, registry as fallback',
    )
    .requiredOption('--mirror <url>', 'the Hoist mirror, e.g. http://127.0.0.1:5000')
    .option(
      '--registries <list>',
      'registries to send through the mirror, comma-separated; NAME=URL sets the origin',
      DEFAULT_REGISTRIES,
    )
    .option('--certs-dir <dir>', "containerd's registry config_path", DEFAULT_CERTS_DIR)
    .option(
      '--containerd-config <file>',
      "containerd's config.toml: its registry config_path is set to --certs-dir when containerd would not read it",
      DEFAULT_CONTAINERD_CONFIG,
    )
    .option(
      '--no-edit-containerd-config',
      'never write --containerd-config; only warn (with the TOML to add) when containerd would ignore --certs-dir',
    )
    .option(
      '--runtime-endpoint <endpoint>',
      "CRI socket asked for containerd's version (default: the first that exists, else `containerd --version`)",
    )
    .option('--containerd-version <version>', "the node's containerd (e.g. 1.7, 2.1), instead of asking it")
    .option('--dry-run', 'print the files instead of writing them')
    .option('--output <format>', 'text or json')
    .action(
      async (opts: {
        mirror: string;
        registries: string;
        certsDir: string;
        containerdConfig: string;
        editContainerdConfig: boolean;
        runtimeEndpoint?: string;
        containerdVersion?: string;
        dryRun?: boolean;
        output?: string;
      }) => {
        const output = outputFormat(opts.output);
        const mirrorUrl = asUsage(() => parseMirrorUrl(opts.mirror));
        const registries = asUsage(() => parseRegistryList(opts.registries));
        const dryRun = opts.dryRun === true;
        const containerd = await detectContainerd(opts.containerdVersion, opts.runtimeEndpoint);
        const check = await checkContainerdConfig(opts.containerdConfig, opts.certsDir, { containerd });
        const edit = opts.editContainerdConfig && check.fixedText !== undefined;
        let files: FileResult[];
        try {
          files = await configureHosts({
            certsDir: opts.certsDir,
            mirrorUrl,
            registries,
            dryRun,
            ...(edit ? { containerdConfig: { path: opts.containerdConfig, content: check.fixedText! } } : {}),
          });
        } catch (err) {
          // An existing hosts.toml that does not parse is bad input: say which, exit 2.
          if (err instanceof NodeConfigError && err.isInput)
            throw new UsageError(err.message, { cause: err });
          throw err;
        }
        const configWritten = files.some((f) => f.kind === 'containerd-config' && f.action !== 'unchanged');
        const { fixedText: _fixed, ...checkReport } = check;
        if (output === 'json') {
          process.stdout.write(
            `${JSON.stringify({
              dryRun,
              mirror: mirrorUrl,
              certsDir: opts.certsDir,
              containerd: containerd
                ? { version: formatVersion(containerd), raw: containerd.raw, source: containerd.source }
                : null,
              files,
              containerdConfig: { ...checkReport, edited: edit },
              restartNeeded: configWritten,
            })}\n`,
          );
        } else {
          printFiles(files, dryRun);
        }
        if (edit) {
          const was =
            check.status === 'no-config-file'
              ? 'created it'
              : check.status === 'not-set'
                ? 'was unset'
                : `was ${JSON.stringify(check.configPath)}, a list that containerd 2.x CRI pulls ignore`;
          if (configWritten)
            process.stderr.write(
              `hoist: ${opts.containerdConfig}: registry config_path ${dryRun ? 'would be set' : 'set'} to "${opts.certsDir}" (${was}); ${RESTART_NOTE}\n`,
            );
        } else if (check.status !== 'ok') {
          process.stderr.write(`hoist: warning: ${check.message}\n`);
          if (check.suggestion && output === 'text') process.stderr.write(`${check.suggestion}\n`);
        }
      },
    );

  node
    .command('unconfigure')
    .description('restore the hosts.toml files that `hoist node configure` replaced, byte for byte')
    .option('--certs-dir <dir>', "containerd's registry config_path", DEFAULT_CERTS_DIR)
    .option('--registries <list>', 'only these registries (default: every one Hoist configured)')
    .option('--dry-run', 'say what would be restored without touching anything')
    .option('--output <format>', 'text or json')
    .action(async (opts: { certsDir: string; registries?: string; dryRun?: boolean; output?: string }) => {
      const output = outputFormat(opts.output);
      const registries = opts.registries
        ? asUsage(() => parseRegistryList(opts.registries!)).map((r) => r.registry)
        : undefined;
      const dryRun = opts.dryRun === true;
      let files: FileResult[];
      try {
        files = await unconfigureHosts({
          certsDir: opts.certsDir,
          dryRun,
          ...(registries ? { registries } : {}),
        });
      } catch (err) {
        if (err instanceof NodeConfigError) throw new UsageError(err.message, { cause: err });
        throw err;
      }
      const configRestored = files.some(
        (f) => f.kind === 'containerd-config' && (f.action === 'restored' || f.action === 'removed'),
      );
      if (output === 'json')
        process.stdout.write(
          `${JSON.stringify({ dryRun, certsDir: opts.certsDir, files, restartNeeded: configRestored })}\n`,
        );
      else if (files.length === 0) process.stdout.write(`nothing to restore in ${opts.certsDir}\n`);
      else
        for (const f of files) process.stdout.write(`${dryRun ? 'would be ' : ''}${f.action}: ${f.path}\n`);
      for (const f of files) if (f.reason) process.stderr.write(`hoist: warning: ${f.reason}\n`);
      if (configRestored && !dryRun) process.stderr.write(`hoist: ${RESTART_NOTE}\n`);
    });

  node
    .command('pull')
    .description('pull images into the container runtime over CRI (skips images already present)')
    .argument('<image...>', 'image references, e.g. docker.io/library/nginx:1.27')
    .option(
      '--runtime-endpoint <endpoint>',
      'CRI socket, e.g. unix:///run/containerd/containerd.sock (default: the first that exists)',
    )
    .option('--always', 'pull even when the image is present')
    .option('--creds <user:password>', 'registry credentials for the pull')
    .option('--auth <base64>', 'registry credentials as base64 of user:password')
    .addOption(authfileOption())
    .addOption(authFileAlias())
    .option(
      '--mirror <url>',
      "the Hoist mirror to report on (default: the first host in the registry's hosts.toml)",
    )
    .option('--certs-dir <dir>', "containerd's registry config_path, to find the mirror", DEFAULT_CERTS_DIR)
    .option(
      '--disk-high-water <mark>',
      "refuse a pull when the image filesystem is at this, or the image's estimated size would take it past (85%, 40GiB)",
    )
    .option('--output <format>', 'text or json')
    .action(
      async (
        images: string[],
        opts: CommonFlags &
          AuthfileFlags & {
            always?: boolean;
            creds?: string;
            auth?: string;
            mirror?: string;
            certsDir: string;
            diskHighWater?: string;
          },
      ) => {
        const output = outputFormat(opts.output);
        const refs = asUsage(() => images.map(normaliseImage));
        const creds = parseCreds(opts.creds, opts.auth);
        const authFile = creds ? undefined : await readAuthFile(authfileFlag(opts), authfileFlagName(opts));
        for (const skipped of authFile?.skipped ?? [])
          process.stderr.write(`hoist: warning: ${authFile?.path}: credentials skipped: ${skipped}\n`);
        const credentialsFor = (registry: string): RegistryCredentials | undefined =>
          creds ?? authFile?.registries.get(registry);
        const mirrorUrl = opts.mirror ? asUsage(() => parseMirrorUrl(opts.mirror!)) : undefined;
        const mark = parseMark(opts.diskHighWater);
        const socket = asUsage(() => resolveRuntimeSocket(opts.runtimeEndpoint));
        const cri = new CriClient({ socket });
        const tty = output === 'text' && process.stderr.isTTY === true;
        try {
          const reports = await pullImages({
            cri,
            images: refs,
            certsDir: opts.certsDir,
            ...(opts.always ? { always: true } : {}),
            authFor: (image): RegistryAuth | undefined => credentialsFor(parseImageReference(image).registry),
            ...(mirrorUrl ? { mirrorUrl } : {}),
            ...(mark
              ? {
                  guard: new DiskGuard({
                    mark,
                    cri,
                    estimator: {
                      certsDir: opts.certsDir,
                      ...(mirrorUrl ? { mirrorUrl } : {}),
                      credentials: credentialsFor,
                    },
                  }).check,
                }
              : {}),
            ...(tty
              ? {
                  onProgress: (image, p, ms) =>
                    process.stderr.write(`\r\x1b[2K${progressLine(image, p, ms)}`),
                }
              : {}),
          });
          if (tty) process.stderr.write('\r\x1b[2K');
          if (output === 'json')
            process.stdout.write(`${JSON.stringify({ endpoint: cri.endpoint, images: reports })}\n`);
          for (const r of reports) {
            const estimateError = (r.disk as DiskCheck | undefined)?.estimateError;
            if (estimateError) process.stderr.write(`hoist: warning: ${r.image}: ${estimateError}\n`);
            if (!r.ok) {
              process.stderr.write(`hoist: ${r.image}: ${r.error?.message ?? 'pull failed'}\n`);
              continue;
            }
            if (output === 'json') continue;
            if (r.alreadyPresent) {
              process.stdout.write(`${r.image}: already present (${sizeOf(r.sizeBytes ?? 0)}), not pulled\n`);
              continue;
            }
            const layers = r.downloaded
              ? `, downloaded ${r.downloaded.layers} layers (${sizeOf(r.downloaded.bytes)} in ${r.downloaded.blobs} blobs)`
              : '';
            const mirror = r.mirror
              ? r.mirror.served
                ? `, mirror ${r.mirror.url} served ${sizeOf(r.mirror.servedBytes)}`
                : `, NOT served by mirror ${r.mirror.url}`
              : ', mirror unknown';
            process.stdout.write(
              `${r.image}: pulled ${sizeOf(r.sizeBytes ?? 0)} in ${(r.seconds ?? 0).toFixed(1)}s${layers}${mirror}\n`,
            );
          }
          if (reports.some((r) => !r.ok)) process.exitCode = 1; // the work failed (main.ts EXIT_FAILED)
        } finally {
          cri.close();
        }
      },
    );
}
