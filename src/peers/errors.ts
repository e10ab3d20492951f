/** Failures talking to a peer. None reaches a client: the next source is tried instead. */
export type PeerErrorCode =
  'PEER_UNREACHABLE' | 'PEER_TIMEOUT' | 'PEER_BAD_RESPONSE' | 'PEER_STALLED' | 'PEER_SLOW' | 'PEER_REFUSED';

export class PeerError extends Error {
  constructor(
    readonly code: PeerErrorCode,
    readonly peer: string,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PeerError';
  }
}
