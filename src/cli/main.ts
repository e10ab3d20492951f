import { Command, CommanderError } from 'commander';
import { registerMirror } from './mirror.js';
import { registerAnalyze } from './analyze.js';
import { registerConvert } from './convert.js';
import { registerNode } from './node.js';
import { registerAgent } from './agent.js';
import { registerController } from './controller.js';
import { UsageError } from './usage-error.js';

/** Exit codes (DESIGN.md): 0 success, 1 the work failed, 2 bad usage or bad input. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export function buildProgram(): Command {
  const program = new Command('hoist')
    .description('Hoist: make container images reach Kubernetes nodes fast')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerMirror(program);
  registerAnalyze(program);
  registerConvert(program);
  registerNode(program);
  registerAgent(program);
  registerController(program);
  return program;
}

export const VERSION = '0.1.0';

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`hoist: ${err.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`hoist: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILED;
  }
}
