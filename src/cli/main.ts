import { Command, CommanderError } from 'commander';
import { UsageError } from './usage-error.js';
import { VERSION } from './version.js';

export { VERSION };

/** Exit codes (DESIGN.md): 0 success, 1 the work failed, 2 bad usage or bad input. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

type Register = (program: Command) => void;

/**
 * The top-level commands in the order help lists them, each with the module that defines it.
 * A run loads only the module of the command it names: `hoist mirror` does not pay for the gRPC
 * client of the CRI, the Kubernetes client, the analysis code or the eStargz converter (the idle
 * mirror's memory is mostly the code it loaded). Help, --version and unknown commands load all.
 */
const COMMANDS: ReadonlyArray<readonly [string, () => Promise<Register>]> = [
  ['mirror', async () => (await import('./mirror.js')).registerMirror],
  ['analyze', async () => (await import('./analyze.js')).registerAnalyze],
  ['doctor', async () => (await import('./doctor.js')).registerDoctor],
  ['render', async () => (await import('./render.js')).registerRender],
  ['convert', async () => (await import('./convert.js')).registerConvert],
  ['node', async () => (await import('./node.js')).registerNode],
  ['agent', async () => (await import('./agent.js')).registerAgent],
  ['controller', async () => (await import('./controller.js')).registerController],
];

/** The command `argv` names (its first word that is not an option), if it is one of COMMANDS. */
function namedCommand(argv: string[]): string | undefined {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  return COMMANDS.some(([name]) => name === first) ? first : undefined;
}

export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command('hoist')
    .description('Hoist: make container images reach Kubernetes nodes fast')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const named = namedCommand(argv);
  const registers = await Promise.all(
    COMMANDS.filter(([name]) => named === undefined || name === named).map(([, load]) => load()),
  );
  for (const register of registers) register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
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
