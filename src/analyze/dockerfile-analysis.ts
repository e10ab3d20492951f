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
  /** Set when the file could not be read or parsed (its findings are then empty). */
  error?: DockerfileError;
}

export interface DockerfileError {
  /** `DOCKERFILE_INVALID`, `INPUT_INVALID` (unreadable), or `FAILED` for anything else. */
  code: string;
  message: string;
  /** 1-based line the parser stopped at, when it said. */
  line?: number;
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

/**
 * Analyzes each file on its own: one that cannot be read or parsed gets its error in its place,
 * and the others are still analyzed (a run over a repository's Dockerfiles loses nothing to one
 * broken file).
 */
export async function analyzeDockerfiles(
  paths: string[],
  opts: DockerfileAnalysisOptions = {},
): Promise<DockerfileReport[]> {
  const reports: DockerfileReport[] = [];
  for (const path of paths) {
    try {
      reports.push(await analyzeDockerfile(path, opts));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const line = message.startsWith(`${path}:`) ? /^:(\d+):/.exec(message.slice(path.length)) : null;
      reports.push({
        path,
        findings: [],
        error: {
          code: err instanceof AnalyzeError ? err.code : 'FAILED',
          message,
          ...(line?.[1] !== undefined ? { line: Number(line[1]) } : {}),
        },
      });
    }
  }
  return reports;
}
