// Child processes for the peer helpers: `run` for a command that finishes, `startDaemon` for a
// server that runs until the test stops it. Both keep the command's output so a failure says why.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Killed (SIGKILL) and rejected after this long. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer;
  signal?: AbortSignal;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  readonly code = 'COMMAND_FAILED';
  constructor(
    message: string,
    readonly stdout: string,
    readonly stderr: string,
    readonly exitCode: number | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CommandError';
  }
}

const DEFAULT_RUN_TIMEOUT_MS = 120_000;

function describe(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].join(' ');
}

/** Runs a command to completion; rejects with its stderr on a non-zero exit or after the timeout. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    signal: opts.signal,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.on('error', () => {
    // The command may exit without reading its input; its exit status tells what happened.
  });
  child.stdin.end(opts.input);

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    const stdout = Buffer.concat(out).toString('utf8');
    const stderr = Buffer.concat(err).toString('utf8');
    if (timedOut) {
      throw new CommandError(
        `'${describe(cmd, args)}' timed out after ${timeoutMs} ms: ${stderr.trim()}`,
        stdout,
        stderr,
        code,
      );
    }
    if (code !== 0) {
      throw new CommandError(
        `'${describe(cmd, args)}' failed (${code ?? signal}): ${stderr.trim() || stdout.trim()}`,
        stdout,
        stderr,
        code,
      );
    }
    return { stdout, stderr };
  } catch (e) {
    if (e instanceof CommandError) throw e;
    // spawn errors (ENOENT, abort) arrive as 'error' events, which once() rethrows.
    throw new CommandError(`'${describe(cmd, args)}' could not run: ${String(e)}`, '', '', null, {
      cause: e,
    });
  } finally {
    clearTimeout(timer);
  }
}

export interface Daemon {
  readonly pid: number;
  /** Everything the process wrote so far, stdout and stderr interleaved in arrival order. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL after graceMs; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
  /** Subscribes to stdout lines (complete lines only). */
  onStdoutLine(listener: (line: string) => void): void;
}

/** Starts a long-running process that the caller stops with `stop()`. */
export function startDaemon(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv } = {},
): Daemon {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const all: string[] = [];
  const out: string[] = [];
  const err: string[] = [];
  const lineListeners: Array<(line: string) => void> = [];
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (c: string) => {
    all.push(c);
    out.push(c);
    const lines = (partial + c).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) for (const l of lineListeners) l(line);
  });
  child.stderr.on('data', (c: string) => {
    all.push(c);
    err.push(c);
  });

  let exitedFlag = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (e) => {
      all.push(`\n[spawn error] ${String(e)}\n`);
      exitedFlag = true;
      resolve({ code: null, signal: null });
    });
    child.on('close', (code, signal) => {
      exitedFlag = true;
      resolve({ code, signal });
    });
  });

  return {
    pid: child.pid ?? -1,
    output: () => all.join(''),
    stdout: () => out.join(''),
    stderr: () => err.join(''),
    exited,
    hasExited: () => exitedFlag,
    onStdoutLine: (listener) => {
      lineListeners.push(listener);
    },
    async stop(graceMs = 10_000) {
      if (exitedFlag) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Polls `probe` until it returns true, the daemon exits, or the timeout passes. Startup of an
 * external server has no event to await, so this is the one place that polls.
 */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  opts: { timeoutMs?: number; intervalMs?: number; daemon?: Daemon } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  const intervalMs = opts.intervalMs ?? 50;
  while (true) {
    if (opts.daemon?.hasExited()) {
      const { code, signal } = await opts.daemon.exited;
      throw new Error(
        `${what}: process exited early (${code ?? signal}) with output:\n${opts.daemon.output()}`,
      );
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not ready after ${opts.timeoutMs ?? 20_000} ms; output:\n${opts.daemon?.output() ?? ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
