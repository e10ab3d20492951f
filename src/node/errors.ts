/**
 * Node configuration failures. `code` is stable; the CLI maps INVALID_* to exit code 2.
 */
export type NodeErrorCode =
  | 'INVALID_MIRROR_URL'
  | 'INVALID_REGISTRY'
  | 'INVALID_HOSTS_TOML'
  | 'INVALID_STATE'
  | 'INVALID_AUTH_FILE'
  | 'INVALID_CONTAINERD_CONFIG'
  | 'NOT_CONFIGURED'
  | 'IO_FAILED';

export class NodeConfigError extends Error {
  readonly code: NodeErrorCode;
  constructor(code: NodeErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NodeConfigError';
    this.code = code;
  }

  /** True for errors in what the user gave (bad flags or files): exit code 2. */
  get isInput(): boolean {
    return this.code.startsWith('INVALID_');
  }
}
