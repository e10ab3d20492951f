import { posix } from 'node:path';
import { parseImageReference } from '../oci/index.js';
import type { BuildContext } from './build-context.js';
import { RULES_BY_ID } from './dockerfile-catalog.js';
import {
  declaredPairs,
  runScript,
  shippedStages,
  type Dockerfile,
  type Instruction,
} from './dockerfile-parser.js';
import { cleanPath, globToRegExp } from './dockerignore.js';
import { formatBytes } from './format-bytes.js';
import { sortFindings, type Finding, type Severity } from './findings.js';
import { dependencyInstalls, packageManagerFindings } from './package-manager-rules.js';

/** Pure: findings for a parsed Dockerfile and (optionally) what its build context holds. */

export interface LintOptions {
  /** Stage that is built (`--target`); default the last. */
  target?: string;
  /** Files from this size up count as large (bytes). */
  largeFileBytes?: number;
}

export const DEFAULT_LARGE_FILE_BYTES = 50 * 1024 * 1024;

const ARCHIVE = /\.(tar|tar\.(gz|bz2|xz|zst)|tgz|tbz2?|txz|tzst)$/i;
const REMOTE = /^(https?:\/\/|git@|git:\/\/)|\.git(#.*)?$/;
const SECRET_NAME =
  /^(\.env(\.(?!example$|sample$|template$|dist$)[\w.-]+)?|id_(rsa|dsa|ecdsa|ed25519)|\.npmrc|\.pypirc|\.netrc|\.git-credentials|\.htpasswd|credentials(\.json)?|kubeconfig|.*\.(pem|key|p12|pfx|jks|keystore))$/i;
const SECRET_PATH = /(^|\/)(\.ssh|\.aws|\.gnupg)\/|(^|\/)\.docker\/config\.json$|(^|\/)\.kube\/config$/;
const SECRET_LOCATION_VAR = /_(FILE|PATH|DIR)$/i;
const SECRET_VAR = /(^|_)(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)($|_)/i;

export function isSecretPath(path: string): boolean {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return SECRET_NAME.test(base) || SECRET_PATH.test(path);
}

/** `gcr.io/distroless/static:latest` → `gcr.io/distroless/static` (a registry port is not a tag). */
function withoutTag(image: string): string {
  const colon = image.lastIndexOf(':');
  return colon > image.lastIndexOf('/') ? image.slice(0, colon) : image;
}

/** File sizes in findings: `99.9 KB`, `100 KB` (three significant figures read well in a sentence). */
function sizeOf(n: number): string {
  return formatBytes(n, { wholeFrom100: true });
}

/** Sources and destination of a COPY/ADD from the build context; undefined for --from or heredocs. */
function contextSources(inst: Instruction): string[] | undefined {
  if (inst.keyword !== 'COPY' && inst.keyword !== 'ADD') return undefined;
  if (inst.flags.from) return undefined;
  const sources = inst.words.slice(0, -1);
  const heredocNames = new Set(inst.heredocs.map((h) => h.name));
  return sources.filter((s) => !/^\d*<<-?["']?/.test(s) && !heredocNames.has(s));
}

const isWholeContext = (src: string) => cleanPath(src) === '' || /^(\.\/)?\*$/.test(src);

/** Files that only declare dependencies: a directory of nothing else is not source. */
const MANIFEST_FILE =
  /(^|\/)(requirements[\w.-]*\.(txt|in)|constraints[\w.-]*\.txt|package(-lock)?\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-(lock|workspace)\.yaml|bun\.lockb?|pyproject\.toml|poetry\.lock|uv\.lock|Pipfile(\.lock)?|setup\.cfg|go\.(mod|sum)|Gemfile(\.lock)?|composer\.(json|lock)|Cargo\.(toml|lock)|pom\.xml|[^/]*\.csproj|mix\.(exs|lock)|environment\.ya?ml|\.npmrc|\.yarnrc(\.yml)?)$/i;
const MANIFEST_DIR = /^(requirements|reqs?|deps|dependencies|constraints|locks?|lockfiles?|manifests?)$/i;
/** Files without an extension that are files, not directories, when there is no context to ask. */
const EXTENSIONLESS_FILE =
  /^(Gemfile|Pipfile|Makefile|Dockerfile|Containerfile|Procfile|Rakefile|Brewfile|Justfile|Vagrantfile|LICENSE|README|VERSION|NOTICE|AUTHORS|CHANGELOG)$/i;

/**
 * Whether a COPY source is a directory of source (`server`, `src/`): from the build context when
 * it was read, else from the name. Globs and directories of manifests only are not.
 */
function isSourceDirectory(src: string, ctx: BuildContext | undefined): boolean {
  const clean = cleanPath(src);
  if (clean === '' || /[*?[]/.test(clean)) return false;
  const base = clean.slice(clean.lastIndexOf('/') + 1);
  if (MANIFEST_DIR.test(base)) return false;
  if (ctx) {
    if (ctx.files.some((f) => f.path === clean)) return false;
    const under = ctx.files.filter((f) => f.path.startsWith(`${clean}/`));
    return under.length > 0 && !under.every((f) => MANIFEST_FILE.test(f.path));
  }
  return src.endsWith('/') || (!base.includes('.') && !EXTENSIONLESS_FILE.test(base));
}

function filesUnder(src: string, ctx: BuildContext): BuildContext['files'] {
  const clean = cleanPath(src);
  if (clean === '' || /^\*$/.test(clean)) return ctx.files;
  if (/[*?[]/.test(clean)) {
    const re = globToRegExp(clean);
    return ctx.files.filter((f) => {
      const parts = f.path.split('/');
      return parts.some((_, i) => re.test(parts.slice(0, i + 1).join('/')));
    });
  }
  return ctx.files.filter((f) => f.path === clean || f.path.startsWith(`${clean}/`));
}

export function lintDockerfile(df: Dockerfile, ctx?: BuildContext, opts: LintOptions = {}): Finding[] {
  const shipped = shippedStages(df, opts.target);
  const largeBytes = opts.largeFileBytes ?? DEFAULT_LARGE_FILE_BYTES;
  const out: Finding[] = [];
  const add = (rule: string, line: number, message: string, fix: string, severity?: Severity) =>
    out.push({
      rule,
      severity: severity ?? RULES_BY_ID.get(rule)?.severity ?? 'warning',
      line,
      message,
      fix,
    });
  const stageNames = new Set<string>();
  let dockerignoreReported = false;
  /** WORKDIR at the end of each stage (a `FROM stage` starts there). */
  const workdirs: string[] = [];

  for (const stage of df.stages) {
    const inFinal = shipped.has(stage.index);
    // Base image.
    const base = stage.base;
    if (
      stage.parentStage === undefined &&
      base.toLowerCase() !== 'scratch' &&
      !stageNames.has(base.toLowerCase())
    ) {
      if (stage.unresolved.length > 0) {
        add(
          'base-image-arg',
          stage.line,
          `base image "${stage.baseRaw}" depends on ARG ${stage.unresolved.join(', ')} with no default`,
          `give the ARG a default before the first FROM (ARG ${stage.unresolved[0]}=...) or pass --build-arg`,
        );
      } else {
        let ref;
        try {
          ref = parseImageReference(base);
        } catch (err) {
          add(
            'base-image-invalid',
            stage.line,
            `FROM "${base}": ${(err as Error).message}`,
            'fix the image reference',
          );
        }
        if (ref && !ref.digest) {
          // The fix repeats the FROM line as written (registry, port, --platform, AS name): only
          // the tag and digest change.
          const from = (image: string) => {
            const asName = stage.instructions[0]?.words[2];
            return `FROM ${stage.platform !== undefined ? `--platform=${stage.platform} ` : ''}${image}${asName !== undefined ? ` AS ${asName}` : ''}`;
          };
          if (ref.tag === 'latest') {
            add(
              'base-image-latest',
              stage.line,
              `base image "${base}" uses ${base.includes(':latest') ? 'the latest tag' : 'no tag (latest)'}, which moves`,
              `pin a version and digest: ${from(`${withoutTag(base)}:<version>@sha256:<digest>`)}`,
            );
          } else {
            add(
              'base-image-unpinned',
              stage.line,
              `base image "${base}" is pinned by tag only`,
              `pin the digest too: ${from(`${base}@sha256:<digest>`)} (skopeo inspect docker://${base} shows it)`,
            );
          }
        }
      }
    }
    if (stage.name) stageNames.add(stage.name);

    let contextCopy: Instruction | undefined;
    const installedBeforeCopy = new Set<string>();
    const reportedInstall = new Set<string>();
    // Directory copies (`COPY server server`) and the installs (`ecosystem@dir`) done before each.
    const dirCopies: Array<{ inst: Instruction; source: string; dir: string; installedBefore: Set<string> }> =
      [];
    const installedIn = new Set<string>();
    let workdir = stage.parentStage !== undefined ? (workdirs[stage.parentStage] ?? '/') : '/';
    const scripts: string[] = [];
    let runSeries: Instruction[] = [];
    const flushRuns = () => {
      if (inFinal && runSeries.length >= 2) {
        const second = runSeries[1];
        if (second) {
          add(
            'consecutive-run',
            second.line,
            `${runSeries.length} consecutive RUN instructions (lines ${runSeries.map((r) => r.line).join(', ')}) make ${runSeries.length} layers`,
            'join them into one RUN with && (cleanup in a later RUN does not shrink an earlier layer)',
          );
        }
      }
      runSeries = [];
    };

    for (const inst of stage.instructions) {
      if (inst.keyword === 'RUN') runSeries.push(inst);
      else flushRuns();

      if (inst.keyword === 'WORKDIR' && inst.words[0] !== undefined) {
        workdir = posix.resolve(workdir, inst.words[0]);
      }

      // Source copied before dependency installation.
      for (const install of dependencyInstalls(inst)) {
        const dir = posix.resolve(workdir, install.cwd);
        const key = `${install.ecosystem}@${dir}`;
        // A copy of the directory the install runs in: the same cache bust as COPY . (the first
        // such copy made after the install was last done right is the one reported).
        const bust = dirCopies.find(
          (c) => (dir === c.dir || dir.startsWith(`${c.dir}/`)) && !c.installedBefore.has(key),
        );
        installedIn.add(key);
        if (!contextCopy) installedBeforeCopy.add(install.ecosystem);
        if (
          bust &&
          (!contextCopy || installedBeforeCopy.has(install.ecosystem)) &&
          !reportedInstall.has(key)
        ) {
          reportedInstall.add(key);
          add(
            'source-before-dependencies',
            bust.inst.line,
            `${bust.inst.keyword} of ${bust.source} (line ${bust.inst.line}) comes before "${install.command}" (line ${inst.line}), which runs in ${dir}: every change there re-runs the install and changes the dependency layer every node pulls`,
            `copy only ${install.manifests} from ${bust.source} first, run the install, then ${bust.inst.keyword} the rest of ${bust.source}`,
            inFinal ? 'error' : 'warning',
          );
        } else if (
          contextCopy &&
          !installedBeforeCopy.has(install.ecosystem) &&
          !reportedInstall.has(install.ecosystem)
        ) {
          reportedInstall.add(install.ecosystem);
          add(
            'source-before-dependencies',
            contextCopy.line,
            `${contextCopy.keyword} of the whole source (line ${contextCopy.line}) comes before "${install.command}" (line ${inst.line}): every code change re-runs the install and changes the dependency layer every node pulls`,
            `copy only ${install.manifests} first, run the install, then ${contextCopy.keyword} the rest of the source`,
            inFinal ? 'error' : 'warning',
          );
        }
      }

      if (inFinal) out.push(...packageManagerFindings(inst, scripts));
      if (inst.keyword === 'RUN') scripts.push(runScript(inst));

      if ((inst.keyword === 'ARG' || inst.keyword === 'ENV') && inFinal) {
        // An empty value declares the name without a secret (`ENV OPENAI_API_KEY=""`, `ARG
        // TOKEN=`); `*_FILE` and `*_PATH` name where a mounted secret is read from. An ARG without
        // a default gets its value from --build-arg, which the image history records.
        const secret = declaredPairs(inst, df.escape).find(
          (p) =>
            SECRET_VAR.test(p.name) &&
            !SECRET_LOCATION_VAR.test(p.name) &&
            (p.value !== '' || (inst.keyword === 'ARG' && !p.hasValue)),
        )?.name;
        if (secret) {
          add(
            'secret-in-arg-env',
            inst.line,
            `${inst.keyword} ${secret} puts a secret into the image config and history`,
            'pass it with RUN --mount=type=secret,id=... (docker build --secret) instead',
          );
        }
      }

      const sources = contextSources(inst);
      if (!sources) continue;
      if (inst.keyword === 'ADD') {
        const local = sources.filter((s) => !REMOTE.test(s) && !ARCHIVE.test(s));
        if (local.length > 0) {
          add(
            'add-local-file',
            inst.line,
            `ADD of local ${local.length === 1 ? `"${local[0]}"` : 'files'}; ADD also fetches URLs and unpacks archives`,
            `use COPY ${inst.words.join(' ')}`,
          );
        }
      }
      const whole = sources.some(isWholeContext);
      if (whole && !contextCopy) contextCopy = inst;
      const dest = inst.words.at(-1);
      const dirSource =
        whole || dest === undefined ? undefined : sources.find((src) => isSourceDirectory(src, ctx));
      // A copy into / overlays configuration (`COPY rootfs/ /`), it is not a project directory.
      if (dirSource !== undefined && dest !== undefined && posix.resolve(workdir, dest) !== '/') {
        // COPY copies a directory's contents, not the directory, into the destination.
        dirCopies.push({
          inst,
          source: dirSource,
          dir: posix.resolve(workdir, dest),
          installedBefore: new Set(installedIn),
        });
      }
      if (whole && ctx && ctx.dockerignore === undefined && !dockerignoreReported) {
        dockerignoreReported = true;
        add(
          'missing-dockerignore',
          inst.line,
          `${inst.keyword} ${sources.join(' ')} sends the whole context (${ctx.files.length} files, ${sizeOf(ctx.files.reduce((n, f) => n + f.size, 0))}) with no .dockerignore`,
          'add a .dockerignore next to the Dockerfile listing .git, build output, local env files and data',
        );
      }

      const secretNamed = sources.filter((s) => isSecretPath(cleanPath(s)));
      const secretFiles = ctx
        ? sources.flatMap((s) => filesUnder(s, ctx)).filter((f) => isSecretPath(f.path))
        : [];
      const secrets = [...new Set([...secretNamed, ...secretFiles.map((f) => f.path)])];
      if (secrets.length > 0) {
        add(
          'secret-copied',
          inst.line,
          `${inst.keyword} puts ${secrets.slice(0, 3).join(', ')}${secrets.length > 3 ? ` and ${secrets.length - 3} more` : ''} into the image`,
          'add them to .dockerignore and pass secrets with RUN --mount=type=secret',
          inFinal ? 'error' : 'warning',
        );
      }
      if (ctx && inFinal) {
        const large = [
          ...new Map(sources.flatMap((s) => filesUnder(s, ctx)).map((f) => [f.path, f])).values(),
        ]
          .filter((f) => f.size >= largeBytes)
          .sort((a, b) => b.size - a.size);
        if (large.length > 0) {
          add(
            'large-file-copied',
            inst.line,
            `${inst.keyword} copies ${large
              .slice(0, 3)
              .map((f) => `${f.path} (${sizeOf(f.size)})`)
              .join(', ')}${large.length > 3 ? ` and ${large.length - 3} more` : ''}`,
            whole
              ? 'exclude it in .dockerignore and COPY it in its own layer before the source, or fetch it at run time'
              : 'keep it in its own early layer (it is re-pulled whenever a layer below changes), or fetch it at run time',
          );
        }
      }
    }
    flushRuns();
    workdirs[stage.index] = workdir;
  }
  return sortFindings(out);
}
