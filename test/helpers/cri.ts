import type { TestContext } from 'node:test';
import { startContainerd, type ContainerdOptions, type ContainerdPeer } from './containerd.js';
// Helpers for the node-side tests: the `hoist` binary as users run it (dist/ must be built), and
// a CRI client on a test containerd's socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CriClient } from '../../src/cri/index.js';
import type { CommandWrapper } from './netns.js';

export const HOIST_BIN = fileURLToPath(new URL('../../bin/hoist.js', import.meta.url));

export interface HoistResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const MAIN_SOURCE = new URL('../../src/cli/main.ts', import.meta.url).href;
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface RunHoistOptions {
  /** Exactly this environment (PATH and HOME are kept unless given); default: the test's own. */
  env?: NodeJS.ProcessEnv;
  /** Run src/cli/main.ts through tsx instead of the built bin/hoist.js (no dist/ needed). */
  fromSource?: boolean;
  /** Working directory; default: the repository with fromSource (tsx resolves from it), else the test's. */
  cwd?: string;
  /** Written to hoist's stdin, which is then closed (at once without it). */
  input?: string;
}

/** Runs `hoist ARGS...` to completion. */
export function runHoist(args: string[], opts: RunHoistOptions = {}): Promise<HoistResult> {
  const argv = opts.fromSource
    ? [
        '--import',
        'tsx',
        '-e',
        `import(${JSON.stringify(MAIN_SOURCE)}).then(async (m) => { process.exitCode = await m.main(['node', 'hoist', ...process.argv.slice(1)]); })`,
        ...args,
      ]
    : [HOIST_BIN, ...args];
  const env = opts.env && {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/nonexistent',
    ...opts.env,
  };
  return new Promise((resolve, reject) => {
    const cwd = opts.cwd ?? (opts.fromSource ? REPO_ROOT : undefined);
    const child = spawn(process.execPath, argv, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(env ? { env } : {}),
      ...(cwd !== undefined ? { cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // hoist may exit without reading its input; its exit status tells what happened.
    child.stdin.on('error', () => {}).end(opts.input);
  });
}

/** Runs `hoist ARGS... --output json` and parses its one JSON document. */
export async function runHoistJson<T>(args: string[]): Promise<HoistResult & { json: T }> {
  const res = await runHoist([...args, '--output', 'json']);
  let json: T;
  try {
    json = JSON.parse(res.stdout) as T;
  } catch {
    throw new Error(`hoist ${args.join(' ')} printed no JSON (exit ${res.code}): ${res.stdout}${res.stderr}`);
  }
  return { ...res, json };
}

export interface LongRunning {
  child: ChildProcess;
  /** Resolves with the URL from the "listening on URL" line. */
  url: Promise<string>;
  exited: Promise<number | null>;
  stderr(): string;
  stop(): Promise<number | null>;
}

/**
 * Starts a long-running `hoist` command (agent, mirror) that prints "listening on URL".
 * `command` runs it elsewhere, e.g. in a network namespace (test/helpers/netns.ts).
 */
export function startHoist(args: string[], opts: { command?: CommandWrapper } = {}): LongRunning {
  const c = (opts.command ?? ((cmd, a) => ({ cmd, args: [...a] })))(process.execPath, [HOIST_BIN, ...args]);
  const child = spawn(c.cmd, c.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((r) => child.on('close', r));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /^listening on (http:\/\/\S+)$/m.exec(stdout);
      if (m?.[1]) resolve(m[1]);
    });
    void exited.then((code) => reject(new Error(`hoist ${args[0]} exited ${code}: ${stderr}`)));
  });
  url.catch(() => undefined);
  return {
    child,
    url,
    exited,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export function criClient(socket: string): CriClient {
  return new CriClient({ socket, callTimeoutMs: 30_000 });
}

/**
 * A real containerd for a test, with a CRI client on its socket; both are stopped after the test.
 * `endpoint` is the `--runtime-endpoint` value for the hoist commands.
 */
export async function startCriNode(
  t: TestContext,
  opts: ContainerdOptions = {},
): Promise<{ ctd: ContainerdPeer; cri: CriClient; endpoint: string }> {
  const ctd = await startContainerd(opts);
  t.after(() => ctd.stop());
  const cri = criClient(ctd.socket);
  t.after(() => cri.close());
  return { ctd, cri, endpoint: `unix://${ctd.socket}` };
}
