/**
 * Errors of the analysis commands. Every one is about the input (a file that cannot be parsed, a
 * registry answer that is not an image), so the CLI turns the `*_INVALID` codes into exit 2;
 * IMAGE_CORRUPT (content that does not match its digest) is a failed run, exit 1.
 */
export type AnalyzeErrorCode =
  | 'DOCKERFILE_INVALID'
  | 'EVENTS_INVALID'
  | 'METRICS_INVALID'
  | 'IMAGE_INVALID'
  | 'IMAGE_CORRUPT'
  | 'INPUT_INVALID';

export class AnalyzeError extends Error {
  readonly code: AnalyzeErrorCode;
  constructor(code: AnalyzeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AnalyzeError';
    this.code = code;
  }
}
