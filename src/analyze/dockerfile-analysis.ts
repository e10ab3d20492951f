import { readFile } from 'node:fs/promises';
import { readBuildContext } from './build-context.js';
import { parseDockerfile } from './dockerfile-parser.js';
import { lintDockerfile } from './dockerfile-rules.js';
import { AnalyzeError } from './errors.js';
import type { Finding } from './findings.js';

export interface DockerfileAnalysisOptions {
  buildArgs?: Record<string, string>;
  target?: string;
  /** Build context directory; default the Dockerfile's directory. */
  context?: string;
  largeFileBytes?: number;
  /** Skip reading the build context (no .dockerignore, secret-file or large-file checks). */
  noContext?: boolean;
}

export interface DockerfileReport {
  path: string;
  findings: Finding[];
}

/** Reads, parses and lints one Dockerfile with its build context (the I/O around the pure rules). */
export async function analyzeDockerfile(
  path: string,
  opts: DockerfileAnalysisOptions = {},
): Promise<DockerfileReport> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AnalyzeError(
      'INPUT_INVALID',
      `cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory; name the Dockerfile' : String(code)}`,
      { cause: err },
    );
  }
  const df = parseDockerfile(text, path, opts.buildArgs ? { buildArgs: opts.buildArgs } : {});
  const ctx = opts.noContext ? undefined : await readBuildContext(path, opts.context);
  const findings = lintDockerfile(df, ctx, {
    ...(opts.target !== undefined ? { target: opts.target } : {}),
    ...(opts.largeFileBytes !== undefined ? { largeFileBytes: opts.largeFileBytes } : {}),
  });
  return { path, findings };
}
