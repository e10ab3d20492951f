import { posix } from 'node:path';
import type { Finding } from './findings.js';
import { runScript, type Instruction } from './dockerfile-parser.js';
import { operands, splitCommands, subcommand, type SimpleCommand } from './shell-commands.js';

/**
 * Rules on what package managers leave in a RUN layer: caches and package lists that every node
 * then pulls (apt, pip, apk, npm, yarn, yum/dnf), and apt's recommended packages. Pure.
 */

/** Targets of `RUN --mount=type=cache,target=...`: a cache there never reaches the layer. */
export function cacheMountTargets(inst: Instruction): string[] {
  const out: string[] = [];
  for (const mount of inst.flags.mount ?? []) {
    const fields = new Map(
      mount.split(',').map((kv) => {
        const eq = kv.indexOf('=');
        return eq < 0 ? [kv, 'true'] : [kv.slice(0, eq), kv.slice(eq + 1)];
      }),
    );
    const target = fields.get('target') ?? fields.get('dst') ?? fields.get('destination');
    if (fields.get('type') === 'cache' && target) out.push(target);
  }
  return out;
}

const isApt = (c: SimpleCommand) =>
  (c.program === 'apt-get' || c.program === 'apt' || c.program === 'aptitude') && subcommand(c) === 'install';

export function isPipInstall(c: SimpleCommand): boolean {
  if (/^pip[0-9.]*$/.test(c.program)) return subcommand(c) === 'install';
  if (/^python[0-9.]*$/.test(c.program)) {
    const m = c.args.indexOf('-m');
    return (
      m >= 0 && c.args[m + 1] === 'pip' && c.args.slice(m + 2).find((a) => !a.startsWith('-')) === 'install'
    );
  }
  return c.program === 'uv' && c.args[0] === 'pip' && c.args[1] === 'install';
}

/** A non-empty value other than `0`/`false` turns a boolean environment switch on (uv, pip). */
const isOn = (v: string | undefined) => v !== undefined && v !== '' && !/^(0|false|no|off)$/i.test(v);

/** `uv` commands that download into uv's cache (`~/.cache/uv`, or `$UV_CACHE_DIR`). */
export function isUvCaching(c: SimpleCommand): boolean {
  if (c.program !== 'uv') return false;
  const [first, second] = c.args.filter((a) => !a.startsWith('-'));
  if (first === 'pip') return second === 'install' || second === 'sync';
  if (first === 'tool') return second === 'install';
  return first === 'sync' || first === 'add';
}

/** uv's own switches for no cache: `--no-cache`, its alias `-n`, and pip's `--no-cache-dir`. */
const UV_NO_CACHE_FLAGS = new Set(['--no-cache', '-n', '--no-cache-dir']);

const CONDA = new Set(['conda', 'mamba', 'micromamba']);

/** conda, mamba and micromamba commands that fill the package cache (`<prefix>/pkgs`). */
function isCondaInstall(c: SimpleCommand): boolean {
  if (!CONDA.has(c.program)) return false;
  const [first, second] = c.args.filter((a) => !a.startsWith('-'));
  if (first === 'env') return second === 'create' || second === 'update';
  return first === 'install' || first === 'create' || first === 'update';
}

const isNpmInstall = (c: SimpleCommand) =>
  c.program === 'npm' && ['ci', 'install', 'i'].includes(subcommand(c) ?? '');
const isYarnInstall = (c: SimpleCommand) =>
  c.program === 'yarn' && [undefined, 'install', 'add'].includes(subcommand(c));
const isYumInstall = (c: SimpleCommand) =>
  ['yum', 'dnf', 'microdnf', 'tdnf'].includes(c.program) && subcommand(c) === 'install';

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A `rm` of a path matching `pattern` in the same script. */
function removes(commands: SimpleCommand[], pattern: RegExp): boolean {
  return commands.some((c) => c.program === 'rm' && c.args.some((a) => pattern.test(a)));
}

function hasCacheMount(inst: Instruction, pattern: RegExp): boolean {
  return cacheMountTargets(inst).some((t) => pattern.test(t));
}

export function packageManagerFindings(inst: Instruction, earlierScripts: string[]): Finding[] {
  if (inst.keyword !== 'RUN') return [];
  const script = runScript(inst);
  const commands = splitCommands(script);
  const line = inst.line;
  const out: Finding[] = [];
  const add = (rule: string, message: string, fix: string) =>
    out.push({ rule, severity: 'warning', line, message, fix });

  const apt = commands.filter(isApt);
  if (apt.length > 0) {
    const cleaned =
      removes(commands, /^\/var\/lib\/apt\/lists/) || hasCacheMount(inst, /^\/var\/(lib|cache)\/apt/);
    if (!cleaned) {
      add(
        'apt-lists-left',
        'apt package lists stay in this layer (tens of MB pulled by every node)',
        'end the same RUN with "&& rm -rf /var/lib/apt/lists/*" (or use RUN --mount=type=cache,target=/var/lib/apt)',
      );
    }
    const configured = earlierScripts.some((s) => /Install-Recommends/.test(s));
    const missing = apt.filter(
      (c) =>
        !c.args.includes('--no-install-recommends') &&
        !c.args.some((a) => /^(-o)?APT::Install-Recommends=(false|0)$/i.test(a)),
    );
    if (missing.length > 0 && !configured) {
      add(
        'no-install-recommends',
        `"${missing[0]?.text.slice(0, 60)}" also installs recommended packages`,
        'add --no-install-recommends to apt-get install',
      );
    }
  }

  // pip proper; `uv pip install` is uv's resolver with uv's cache, checked below.
  const pip = commands.filter((c) => isPipInstall(c) && c.program !== 'uv');
  if (pip.length > 0) {
    const envOff =
      inst.vars.get('PIP_NO_CACHE_DIR') !== undefined && inst.vars.get('PIP_NO_CACHE_DIR') !== '';
    const purged =
      commands.some((c) => /^pip/.test(c.program) && subcommand(c) === 'cache') ||
      removes(commands, /\.cache(\/pip)?\/?\*?$/);
    const mounted = hasCacheMount(inst, /\.cache/);
    const leaky = pip.filter(
      (c) => !c.args.includes('--no-cache-dir') && !envOff && !isOn(c.env.PIP_NO_CACHE_DIR),
    );
    if (leaky.length > 0 && !purged && !mounted) {
      add(
        'pip-cache-left',
        `"${leaky[0]?.text.slice(0, 60)}" keeps its download cache in the layer`,
        'add --no-cache-dir to pip install (or ENV PIP_NO_CACHE_DIR=1, or RUN --mount=type=cache,target=/root/.cache/pip)',
      );
    }
  }

  const uv = commands.filter(isUvCaching);
  if (uv.length > 0) {
    const cacheDir = inst.vars.get('UV_CACHE_DIR');
    const purged =
      commands.some((c) => c.program === 'uv' && c.args.filter((a) => !a.startsWith('-'))[0] === 'cache') ||
      removes(commands, /\.cache(\/uv)?\/?\*?$/) ||
      (cacheDir !== undefined &&
        cacheDir !== '' &&
        removes(commands, new RegExp(`^${escapeRegExp(cacheDir)}/?\\*?$`)));
    const mounted =
      hasCacheMount(inst, /\.cache(\/uv)?\/?$/) ||
      (cacheDir !== undefined &&
        cacheMountTargets(inst).some((t) => t.replace(/\/$/, '') === cacheDir.replace(/\/$/, '')));
    const leaky = uv.filter(
      (c) =>
        !c.args.some((a) => UV_NO_CACHE_FLAGS.has(a)) &&
        !isOn(inst.vars.get('UV_NO_CACHE')) &&
        !isOn(c.env.UV_NO_CACHE),
    );
    if (leaky.length > 0 && !purged && !mounted) {
      add(
        'uv-cache-left',
        `"${leaky[0]?.text.slice(0, 60)}" keeps uv's download and wheel cache in the layer`,
        'set ENV UV_NO_CACHE=1 (or pass --no-cache), or use RUN --mount=type=cache,target=/root/.cache/uv',
      );
    }
  }

  const conda = commands.filter(isCondaInstall);
  if (
    conda.length > 0 &&
    !commands.some((c) => CONDA.has(c.program) && subcommand(c) === 'clean') &&
    !removes(commands, /(^|\/)pkgs\/?\*?$/) &&
    !hasCacheMount(inst, /(^|\/)pkgs\/?$/)
  ) {
    const mgr = conda[0]?.program ?? 'conda';
    add(
      'conda-cache-left',
      `"${conda[0]?.text.slice(0, 60)}" keeps downloaded packages and tarballs in the layer (<prefix>/pkgs)`,
      `add "&& ${mgr === 'micromamba' ? 'micromamba clean --all --yes' : `${mgr} clean -afy`}" to the same RUN, or use RUN --mount=type=cache,target=/opt/conda/pkgs`,
    );
  }

  const apk = commands.filter((c) => c.program === 'apk' && subcommand(c) === 'add');
  if (
    apk.some((c) => !c.args.includes('--no-cache')) &&
    !removes(commands, /^\/var\/cache\/apk/) &&
    !hasCacheMount(inst, /^\/var\/cache\/apk/)
  ) {
    add('apk-cache-left', 'apk add keeps its package index in /var/cache/apk', 'use "apk add --no-cache"');
  }

  const npm = commands.filter(isNpmInstall);
  if (
    npm.length > 0 &&
    !commands.some((c) => c.program === 'npm' && subcommand(c) === 'cache') &&
    !removes(commands, /\.npm\/?\*?$/) &&
    !hasCacheMount(inst, /\.npm/)
  ) {
    add(
      'npm-cache-left',
      `"${npm[0]?.text.slice(0, 60)}" leaves every downloaded tarball in ~/.npm`,
      'add "&& npm cache clean --force" to the same RUN, or use RUN --mount=type=cache,target=/root/.npm',
    );
  }

  const yarn = commands.filter(isYarnInstall);
  if (
    yarn.length > 0 &&
    !commands.some((c) => c.program === 'yarn' && subcommand(c) === 'cache') &&
    !hasCacheMount(inst, /yarn/)
  ) {
    add(
      'yarn-cache-left',
      `"${yarn[0]?.text.slice(0, 60)}" leaves its package cache in the layer`,
      'add "&& yarn cache clean" to the same RUN, or use RUN --mount=type=cache,target=/usr/local/share/.cache/yarn',
    );
  }

  const yum = commands.filter(isYumInstall);
  if (
    yum.length > 0 &&
    !commands.some((c) => yum.some((y) => y.program === c.program) && subcommand(c) === 'clean') &&
    !removes(commands, /^\/var\/cache\/(yum|dnf)/) &&
    !hasCacheMount(inst, /^\/var\/cache\/(yum|dnf)/)
  ) {
    const mgr = yum[0]?.program ?? 'yum';
    add(
      'yum-cache-left',
      `${mgr} install keeps metadata and packages in /var/cache/${mgr === 'yum' ? 'yum' : 'dnf'}`,
      `add "&& ${mgr} clean all" to the same RUN`,
    );
  }
  return out;
}

/** Where a command works: its `--prefix`/`--cwd`/`--dir`/`--directory`/`--project` option, else `cwd`. */
function commandDir(c: SimpleCommand, cwd: string): string {
  const opts =
    c.program === 'npm'
      ? ['--prefix']
      : c.program === 'yarn'
        ? ['--cwd']
        : c.program === 'pnpm'
          ? ['-C', '--dir']
          : c.program === 'uv'
            ? ['--directory', '--project']
            : [];
  for (let i = 0; i < c.args.length; i++) {
    const a = c.args[i] ?? '';
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    if (!opts.includes(name)) continue;
    const value = eq < 0 ? c.args[i + 1] : a.slice(eq + 1);
    if (value !== undefined) return value.startsWith('/') ? value : posix.join(cwd, value);
  }
  return cwd;
}

/** Ecosystems whose install step depends on files copied from the context. */
export interface DependencyInstall {
  ecosystem: string;
  command: string;
  /** The files to copy before the install. */
  manifests: string;
  /** Directory the install runs in relative to WORKDIR (`cd server && npm ci` → `server`). */
  cwd: string;
}

export function dependencyInstalls(inst: Instruction): DependencyInstall[] {
  if (inst.keyword !== 'RUN') return [];
  const out: DependencyInstall[] = [];
  // `cd` moves the commands after it (a subshell's `cd` is taken to last too: close enough here).
  let cwd = '.';
  const add = (ecosystem: string, c: SimpleCommand, manifests: string) =>
    out.push({ ecosystem, command: c.text.slice(0, 60), manifests, cwd: commandDir(c, cwd) });
  for (const c of splitCommands(runScript(inst))) {
    if (c.program === 'cd') {
      const to = c.args.find((a) => !a.startsWith('-'));
      cwd = to === undefined || to === '~' ? '/root' : posix.join(cwd, to);
      if (to?.startsWith('/')) cwd = to;
      continue;
    }
    const sub = subcommand(c);
    const ops = operands(c);
    if (isPipInstall(c)) {
      const fromFiles =
        c.args.some((a) => /^(-r|--requirement|-c|--constraint|-e|--editable)(=|$)/.test(a)) ||
        ops.some((o) => o === '.' || o.startsWith('./') || o.startsWith('/') || o.startsWith('.['));
      if (fromFiles && !c.args.includes('--no-deps'))
        add('python', c, 'requirements.txt (or pyproject.toml)');
    } else if (['poetry', 'pipenv', 'pdm'].includes(c.program) && ['install', 'sync'].includes(sub ?? '')) {
      add(
        'python',
        c,
        c.program === 'pipenv' ? 'Pipfile and Pipfile.lock' : 'pyproject.toml and the lock file',
      );
    } else if (CONDA.has(c.program) && isCondaInstall(c) && c.args.some((a) => /^(-f|--file)(=|$)/.test(a))) {
      add('conda', c, 'environment.yml (or the --file list)');
    } else if (c.program === 'uv' && sub === 'sync') {
      add('python', c, 'pyproject.toml and uv.lock');
    } else if (
      c.program === 'npm' &&
      (sub === 'ci' || ((sub === 'install' || sub === 'i') && ops.length === 0))
    ) {
      add('node', c, 'package.json and package-lock.json');
    } else if (c.program === 'yarn' && (sub === undefined || sub === 'install')) {
      add('node', c, 'package.json and yarn.lock');
    } else if ((c.program === 'pnpm' || c.program === 'bun') && (sub === 'install' || sub === 'i')) {
      add('node', c, `package.json and the ${c.program} lock file`);
    } else if (c.program === 'go' && sub === 'mod' && ops[0] === 'download') {
      add('go', c, 'go.mod and go.sum');
    } else if ((c.program === 'bundle' || c.program === 'bundler') && sub === 'install') {
      add('ruby', c, 'Gemfile and Gemfile.lock');
    } else if (c.program === 'composer' && sub === 'install') {
      add('php', c, 'composer.json and composer.lock');
    } else if (c.program === 'cargo' && sub === 'fetch') {
      add('rust', c, 'Cargo.toml and Cargo.lock');
    } else if (
      (c.program === 'mvn' || c.program === 'mvnw') &&
      c.args.some((a) => a.startsWith('dependency:'))
    ) {
      add('java', c, 'pom.xml');
    } else if (c.program === 'dotnet' && sub === 'restore') {
      add('dotnet', c, 'the *.csproj files');
    } else if (c.program === 'mix' && sub === 'deps.get') {
      add('elixir', c, 'mix.exs and mix.lock');
    }
  }
  return out;
}
