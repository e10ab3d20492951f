/**
 * Install-rendering failures. `code` is stable; the CLI maps every one of them to exit code 2
 * (they are all about what the user gave: values files, flags).
 */
export type InstallErrorCode = 'VALUES_UNREADABLE' | 'VALUES_INVALID' | 'INPUT_INVALID';

export class InstallError extends Error {
  readonly code: InstallErrorCode;
  constructor(code: InstallErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InstallError';
    this.code = code;
  }
}
