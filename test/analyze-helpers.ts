// Runs the built `hoist` binary (bin/hoist.js over dist/) for the analyze, doctor and render tests.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/hoist.js', import.meta.url));

export interface HoistResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs hoist with `args`; `input` is written to its stdin (closed either way). */
export function hoist(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<HoistResult> {
  return new Promise<HoistResult>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input);
  });
}
