import { AnalyzeError } from './errors.js';
import { lexDockerfile, type Heredoc } from './dockerfile-lexer.js';
import { expandOne, splitWords } from './dockerfile-words.js';

/**
 * The second pass: instructions with their flags, exec (JSON) form, expanded words, and the
 * ARG/ENV values in scope, grouped into build stages (Dockerfile reference: "FROM", "ARG"
 * "Understand how ARG and FROM interact", "Scope", "ENV"). Pure.
 */

export interface Instruction {
  keyword: string;
  line: number;
  endLine: number;
  /** Text after the keyword and its leading `--flags`, unexpanded. */
  args: string;
  /** Leading `--name=value` flags; repeatable ones (`--mount`) keep every value. */
  flags: Record<string, string[]>;
  /** Exec form (`["a", "b"]`), when the arguments are a JSON array of strings. */
  json?: string[];
  /**
   * Arguments after quote removal and ARG/ENV substitution, for the instructions BuildKit expands
   * (RUN, CMD and ENTRYPOINT are left to the shell and keep `json` or `args`).
   */
  words: string[];
  heredocs: Heredoc[];
  /** Stage index; -1 for the global ARGs before the first FROM. */
  stage: number;
  /** ARG and ENV values in scope when the instruction runs. */
  vars: ReadonlyMap<string, string>;
  /** Names of the ENV variables in scope (a subset of `vars`). */
  env: ReadonlySet<string>;
  unresolved: string[];
}

export interface Stage {
  index: number;
  /** `AS name`, lower-cased (stage names are case-insensitive). */
  name?: string;
  line: number;
  /** Base as written and as expanded with the global ARGs. */
  baseRaw: string;
  base: string;
  /** Index of the stage this one builds on (`FROM builder`), if any. */
  parentStage?: number;
  platform?: string;
  unresolved: string[];
  instructions: Instruction[];
}

export interface Dockerfile {
  path: string;
  escape: string;
  directives: Record<string, string>;
  globalArgs: Instruction[];
  stages: Stage[];
  instructions: Instruction[];
}

export interface ParseOptions {
  /** `--build-arg NAME=VALUE` values. */
  buildArgs?: Record<string, string>;
  /** Platform for the automatic TARGET* and BUILD* args; default linux/amd64. */
  platform?: string;
}

const EXPANDED = new Set([
  'ADD',
  'COPY',
  'ENV',
  'EXPOSE',
  'FROM',
  'LABEL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
  'ARG',
  'ONBUILD',
]);
const JSON_FORM = new Set(['RUN', 'CMD', 'ENTRYPOINT', 'COPY', 'ADD', 'SHELL', 'VOLUME']);
const FLAGGED = new Set(['FROM', 'RUN', 'COPY', 'ADD', 'HEALTHCHECK']);

/** Automatic platform ARGs, available in the global scope (Dockerfile reference). */
function platformArgs(platform: string): Map<string, string> {
  const [os = 'linux', arch = 'amd64', variant = ''] = platform.split('/');
  const out = new Map<string, string>();
  for (const prefix of ['TARGET', 'BUILD']) {
    out.set(`${prefix}PLATFORM`, platform);
    out.set(`${prefix}OS`, os);
    out.set(`${prefix}ARCH`, arch);
    out.set(`${prefix}VARIANT`, variant);
  }
  return out;
}

function parseFlags(rest: string): { flags: Record<string, string[]>; args: string } {
  const flags: Record<string, string[]> = {};
  let args = rest;
  for (;;) {
    const m = /^--([A-Za-z][A-Za-z0-9-]*)(?:=("[^"]*"|\S*))?(?:\s+|$)/.exec(args);
    if (!m?.[1]) break;
    const value = (m[2] ?? 'true').replace(/^"(.*)"$/, '$1');
    (flags[m[1].toLowerCase()] ??= []).push(value);
    args = args.slice(m[0].length);
  }
  return { flags, args };
}

function parseJsonForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const value: unknown = JSON.parse(args);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  } catch {
    // Not JSON: Docker then runs it in shell form, and so do we.
  }
  return undefined;
}

/**
 * `NAME=VALUE ...` pairs (third element: whether `=` was given), or for ENV and LABEL the legacy
 * `NAME VALUE with spaces` form.
 */
function keyValues(args: string, vars: ReadonlyMap<string, string>, escape: string, legacy: boolean) {
  const pairs: Array<[string, string, boolean]> = [];
  const first = /^([^\s=]+)(\s|=|$)/.exec(args);
  if (legacy && first && first[2] !== '=' && first[2] !== '') {
    const value = expandOne(args.slice(first[0].length).trim(), vars, escape);
    pairs.push([first[1] ?? '', value.words[0] ?? '', true]);
    return { pairs, unresolved: value.unresolved };
  }
  const { words, unresolved } = splitWords(args, vars, escape);
  for (const w of words) {
    const eq = w.indexOf('=');
    pairs.push(eq < 0 ? [w, '', false] : [w.slice(0, eq), w.slice(eq + 1), true]);
  }
  return { pairs, unresolved };
}

export function parseDockerfile(text: string, path = 'Dockerfile', opts: ParseOptions = {}): Dockerfile {
  const lexed = lexDockerfile(text, path);
  const escape = lexed.escape;
  const buildArgs = opts.buildArgs ?? {};
  const fail = (line: number, what: string): never => {
    throw new AnalyzeError('DOCKERFILE_INVALID', `${path}:${line}: ${what}`);
  };

  const globalVars = platformArgs(opts.platform ?? 'linux/amd64');
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  const instructions: Instruction[] = [];
  let vars = new Map(globalVars);
  let env = new Set<string>();
  // Per-stage scope so that `FROM <stage>` inherits its parent's ARG and ENV values.
  const stageScopes: Array<{ vars: Map<string, string>; env: Set<string> }> = [];

  for (const raw of lexed.instructions) {
    const { flags, args } = FLAGGED.has(raw.keyword) ? parseFlags(raw.rest) : { flags: {}, args: raw.rest };
    const json = JSON_FORM.has(raw.keyword) ? parseJsonForm(args) : undefined;
    const stageIndex = stages.length - 1;
    let words: string[] = [];
    let unresolved: string[] = [];
    if (raw.keyword === 'FROM') {
      // FROM sees only the global ARGs (declared before the first FROM) and --build-arg values.
      ({ words, unresolved } = splitWords(args, globalVars, escape));
    } else if (EXPANDED.has(raw.keyword) && raw.keyword !== 'ENV' && raw.keyword !== 'ARG') {
      ({ words, unresolved } = json
        ? { words: json.map((j) => expandOne(j, vars, escape).words[0] ?? ''), unresolved: [] }
        : splitWords(args, vars, escape));
    }
    const inst: Instruction = {
      keyword: raw.keyword,
      line: raw.line,
      endLine: raw.endLine,
      args,
      flags,
      ...(json ? { json } : {}),
      words,
      heredocs: raw.heredocs,
      stage: stageIndex,
      vars: new Map(vars),
      env: new Set(env),
      unresolved,
    };

    if (raw.keyword === 'FROM') {
      const [base = '', as, name, ...extra] = words;
      if (base === '' && unresolved.length === 0)
        fail(raw.line, 'FROM needs an image; write e.g. "FROM debian:12-slim"');
      if (as !== undefined && (as.toLowerCase() !== 'as' || name === undefined || extra.length > 0)) {
        fail(raw.line, 'FROM takes "IMAGE [AS NAME]"; check the stage name');
      }
      const parentStage = stages.find((s) => s.name !== undefined && s.name === base.toLowerCase());
      const stage: Stage = {
        index: stages.length,
        ...(name !== undefined ? { name: name.toLowerCase() } : {}),
        line: raw.line,
        baseRaw: args.split(/\s+/)[0] ?? '',
        base,
        ...(parentStage ? { parentStage: parentStage.index } : {}),
        ...(flags.platform?.[0] !== undefined ? { platform: flags.platform[0] } : {}),
        unresolved,
        instructions: [],
      };
      inst.stage = stage.index;
      stages.push(stage);
      const inherited = parentStage ? stageScopes[parentStage.index] : undefined;
      vars = new Map(inherited?.vars ?? []);
      env = new Set(inherited?.env ?? []);
      stageScopes.push({ vars, env });
      for (const [k, v] of platformArgs(opts.platform ?? 'linux/amd64')) if (!vars.has(k)) vars.set(k, v);
      stage.instructions.push(inst);
      instructions.push(inst);
      continue;
    }

    if (raw.keyword === 'ARG') {
      const parsed = keyValues(args, stageIndex < 0 ? globalVars : vars, escape, false);
      inst.unresolved = parsed.unresolved;
      for (const [argName, def, hasDefault] of parsed.pairs) {
        const value =
          buildArgs[argName] ?? (hasDefault ? def : stageIndex >= 0 ? globalVars.get(argName) : undefined);
        if (stageIndex < 0) {
          if (value !== undefined) globalVars.set(argName, value);
          vars = new Map(globalVars);
        } else if (!env.has(argName)) {
          // An ENV of the same name wins over an ARG (Dockerfile reference, "Using ARG variables").
          if (value !== undefined) vars.set(argName, value);
        }
      }
    } else if (raw.keyword === 'ENV') {
      if (stageIndex < 0) fail(raw.line, 'ENV before the first FROM; move it into a stage');
      const parsed = keyValues(args, vars, escape, true);
      inst.unresolved = parsed.unresolved;
      for (const [k, v] of parsed.pairs) {
        vars.set(k, v);
        env.add(k);
      }
    } else if (stageIndex < 0) {
      fail(raw.line, `${raw.keyword} before the first FROM; only ARG may come before FROM`);
    }

    if (stageIndex < 0) globalArgs.push(inst);
    else stages[stageIndex]?.instructions.push(inst);
    instructions.push(inst);
  }
  if (stages.length === 0) fail(1, 'no FROM instruction; a Dockerfile starts its first stage with FROM');
  return { path, escape, directives: lexed.directives, globalArgs, stages, instructions };
}

/** A variable table in which every name is set (to a non-empty placeholder). */
class EveryVariableSet extends Map<string, string> {
  override get(): string {
    return '$';
  }
  override has(): boolean {
    return true;
  }
}

/**
 * The `NAME=VALUE` pairs an ARG or ENV declares, with `value` as written after quote removal and
 * any variable reference counted as non-empty (`ENV KEY=$TOKEN` passes a value; `ENV KEY=""` none).
 */
export function declaredPairs(
  inst: Instruction,
  escape = '\\',
): Array<{ name: string; value: string; hasValue: boolean }> {
  if (inst.keyword !== 'ARG' && inst.keyword !== 'ENV') return [];
  return keyValues(inst.args, new EveryVariableSet(), escape, inst.keyword === 'ENV').pairs.map(
    ([name, value, hasValue]) => ({ name, value, hasValue }),
  );
}

/** The script a RUN executes: its shell-form arguments (or exec form) plus any heredoc bodies. */
export function runScript(inst: Instruction): string {
  const head = inst.json ? inst.json.join(' ') : inst.args;
  return [head, ...inst.heredocs.map((h) => h.body)].join('\n');
}

/**
 * Stages whose layers end up in the built image: the target (default the last stage) and the
 * stages it is built `FROM`. `COPY --from` stages only contribute the copied files.
 */
export function shippedStages(df: Dockerfile, target?: string): Set<number> {
  let stage: Stage | undefined = df.stages[df.stages.length - 1];
  if (target !== undefined) {
    stage = df.stages.find((s) => s.name === target.toLowerCase() || String(s.index) === target);
    if (!stage) {
      throw new AnalyzeError('INPUT_INVALID', `${df.path}: no stage named "${target}"; check --target`);
    }
  }
  const out = new Set<number>();
  while (stage) {
    out.add(stage.index);
    stage = stage.parentStage !== undefined ? df.stages[stage.parentStage] : undefined;
  }
  return out;
}
