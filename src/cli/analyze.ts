import type { Command } from 'commander';
import {
  analyzeDockerfile,
  DOCKERFILE_RULES,
  hasFindingAtOrAbove,
  toSarif,
  type DockerfileReport,
} from '../analyze/index.js';
import {
  collect,
  formatFindings,
  inputErrorsAsUsage,
  parseFailOn,
  parseKeyValues,
  summary,
} from './analyze-common.js';
import { registerAnalyzeEvents } from './analyze-events.js';
import { registerAnalyzeImages } from './analyze-images.js';
import { registerDoctor } from './doctor.js';
import { registerRender } from './render.js';
import { VERSION } from './main.js';
import { UsageError } from './usage-error.js';

interface DockerfileFlags {
  output: string;
  failOn: string;
  buildArg?: string[];
  target?: string;
  context?: string;
  largeFileMb: string;
  skipContext?: boolean;
}

function registerAnalyzeDockerfile(analyze: Command): void {
  analyze
    .command('dockerfile')
    .description('find what makes an image slow to build and pull: layer order, caches, bases, secrets')
    .argument('<file...>', 'Dockerfiles to analyze')
    .option('--output <format>', 'text, json or sarif', 'text')
    .option(
      '--fail-on <severity>',
      'exit 1 when a finding at or above this exists: error, warning, info, none',
      'error',
    )
    .option('--build-arg <name=value>', 'value for an ARG (repeatable)', collect)
    .option('--target <stage>', 'the stage that is built (default the last)')
    .option('--context <dir>', 'build context directory (default the directory of each Dockerfile)')
    .option('--large-file-mb <n>', 'files from this size up count as large', '50')
    .option('--skip-context', 'do not read the build context (.dockerignore, secret and large files)')
    .action(async (files: string[], opts: DockerfileFlags) => {
      if (!['text', 'json', 'sarif'].includes(opts.output)) {
        throw new UsageError(`--output "${opts.output}": use text, json or sarif`);
      }
      const failOn = parseFailOn(opts.failOn);
      const largeMb = Number(opts.largeFileMb);
      if (!Number.isFinite(largeMb) || largeMb <= 0) {
        throw new UsageError(`--large-file-mb "${opts.largeFileMb}": expected a positive number`);
      }
      const buildArgs = parseKeyValues(opts.buildArg ?? [], '--build-arg');
      const reports: DockerfileReport[] = [];
      for (const file of files) {
        reports.push(
          await inputErrorsAsUsage(() =>
            analyzeDockerfile(file, {
              buildArgs,
              ...(opts.target !== undefined ? { target: opts.target } : {}),
              ...(opts.context !== undefined ? { context: opts.context } : {}),
              largeFileBytes: largeMb * 1024 * 1024,
              noContext: opts.skipContext === true,
            }),
          ),
        );
      }
      const all = reports.flatMap((r) => r.findings);
      if (opts.output === 'json') {
        process.stdout.write(`${JSON.stringify({ files: reports }, null, 2)}\n`);
      } else if (opts.output === 'sarif') {
        const sarif = toSarif(
          reports.map((r) => ({ uri: r.path, findings: r.findings })),
          DOCKERFILE_RULES,
          VERSION,
        );
        process.stdout.write(`${JSON.stringify(sarif, null, 2)}\n`);
      } else {
        process.stdout.write(reports.map((r) => formatFindings(r.path, r.findings)).join('\n'));
        process.stdout.write(summary(all));
      }
      if (failOn && hasFindingAtOrAbove(all, failOn)) process.exitCode = 1;
    });
}

/** `hoist analyze ...`, `hoist doctor ...` and `hoist render ...`. */
export function registerAnalyze(program: Command): void {
  const analyze = program
    .command('analyze')
    .description('show where pull time goes: Dockerfiles, image sets, kubelet pull events');
  registerAnalyzeDockerfile(analyze);
  registerAnalyzeImages(analyze);
  registerAnalyzeEvents(analyze);
  registerDoctor(program);
  registerRender(program);
}
