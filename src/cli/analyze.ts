import type { Command } from 'commander';
import { DOCKERFILE_RULES, hasFindingAtOrAbove, toSarif } from '../analyze/index.js';
import { analyzeDockerfiles, type DockerfileReport } from '../analyze/dockerfile-analysis.js';
import {
  collect,
  formatFileError,
  formatFindings,
  parseFailOn,
  parseKeyValues,
  summary,
} from './analyze-common.js';
import { registerAnalyzeEvents } from './analyze-events.js';
import { registerAnalyzeImages } from './analyze-images.js';
import { VERSION } from './version.js';
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

/**
 * `--build-arg NAME` with no `=` takes NAME's value from the environment, as `docker build` does;
 * when NAME is not set there the ARG keeps its Dockerfile default (docker leaves it unset too).
 */
export function buildArgsFromEnv(values: string[], env: NodeJS.ProcessEnv): string[] {
  return values.flatMap((v) => {
    if (v.includes('=')) return [v];
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(v))
      throw new UsageError(
        `--build-arg "${v}": expected NAME=VALUE, or NAME to take it from the environment`,
      );
    const value = env[v];
    return value === undefined ? [] : [`${v}=${value}`];
  });
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
    .option(
      '--build-arg <name[=value]>',
      'value for an ARG; NAME alone takes it from the environment, as docker build does (repeatable)',
      collect,
    )
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
      const buildArgs = parseKeyValues(buildArgsFromEnv(opts.buildArg ?? [], process.env), '--build-arg');
      // Each file on its own: a broken one is reported in its place and the run goes on.
      const reports = await analyzeDockerfiles(files, {
        buildArgs,
        ...(opts.target !== undefined ? { target: opts.target } : {}),
        ...(opts.context !== undefined ? { context: opts.context } : {}),
        largeFileBytes: largeMb * 1024 * 1024,
        noContext: opts.skipContext === true,
      });
      const all = reports.flatMap((r) => r.findings);
      const failed = reports.filter((r) => r.error !== undefined);
      if (opts.output === 'json') {
        process.stdout.write(`${JSON.stringify({ files: reports }, null, 2)}\n`);
      } else if (opts.output === 'sarif') {
        const sarif = toSarif(
          reports.map((r) => ({ uri: r.path, findings: r.findings })),
          DOCKERFILE_RULES,
          VERSION,
        );
        process.stdout.write(`${JSON.stringify(withInvocation(sarif, reports), null, 2)}\n`);
      } else {
        process.stdout.write(
          reports
            .map((r) =>
              r.error ? formatFileError(r.path, r.error.message) : formatFindings(r.path, r.findings),
            )
            .join('\n'),
        );
        process.stdout.write(summary(all));
        if (failed.length > 0) {
          process.stdout.write(
            `${failed.length} file${failed.length === 1 ? '' : 's'} could not be analyzed\n`,
          );
        }
      }
      // Exit 2 for an unreadable or unparsable file (as for bad usage, one line each on stderr),
      // else 1 for a failure or a finding at --fail-on, as the README promises.
      for (const r of failed) process.stderr.write(`hoist: ${r.error?.message ?? r.path}\n`);
      if (failed.some((r) => r.error?.code.endsWith('_INVALID'))) process.exitCode = 2;
      else if (failed.length > 0 || (failOn && hasFindingAtOrAbove(all, failOn))) process.exitCode = 1;
    });
}

/**
 * Adds the run's invocation (SARIF 2.1.0 §3.20) to the log: `executionSuccessful` false and one
 * error notification (§3.58) per file that could not be analyzed, located at that file.
 */
function withInvocation(sarif: object, reports: DockerfileReport[]): object {
  const log = sarif as { runs?: Array<Record<string, unknown>> };
  const failed = reports.filter((r) => r.error !== undefined);
  const invocation = {
    executionSuccessful: failed.length === 0,
    toolExecutionNotifications: failed.map((r) => ({
      level: 'error',
      message: { text: r.error?.message ?? '' },
      descriptor: { id: r.error?.code ?? 'FAILED' },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: r.path },
            ...(r.error?.line !== undefined ? { region: { startLine: r.error.line } } : {}),
          },
        },
      ],
    })),
  };
  return { ...log, runs: (log.runs ?? []).map((run) => ({ ...run, invocations: [invocation] })) };
}

/** `hoist analyze ...` (`hoist doctor` and `hoist render` are commands of their own). */
export function registerAnalyze(program: Command): void {
  const analyze = program
    .command('analyze')
    .description('show where pull time goes: Dockerfiles, image sets, kubelet pull events');
  registerAnalyzeDockerfile(analyze);
  registerAnalyzeImages(analyze);
  registerAnalyzeEvents(analyze);
}
