/** A configuration file that cannot be read as what it claims to be: the CLI exits 2. */
export type DoctorErrorCode = 'CONFIG_UNREADABLE' | 'CONFIG_INVALID' | 'RENDER_INVALID';

export class DoctorError extends Error {
  readonly code: DoctorErrorCode;
  constructor(code: DoctorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DoctorError';
    this.code = code;
  }
}
