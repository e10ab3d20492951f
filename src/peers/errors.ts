/** Failures talking to a peer. None reaches a client: the next source is tried instead. */
export type PeerErrorCode =
  'PEER_UNREACHABLE' | 'PEER_TIMEOUT' | 'PEER_BAD_RESPONSE' | 'PEER_STALLED' | 'PEER_SLOW' | 'PEER_REFUSED';

export class PeerError extends Error {
  /**
   * The failure says more about the path than about the peer: a connection that did not complete
   * in time (a lost SYN on a busy link, or this node too busy to see it complete) or that was
   * reset before any answer (a kept-alive connection the peer had just closed). A peer that is
   * otherwise alive is asked once more before it is marked down (peer-source.ts).
   */
  readonly transient: boolean;

  constructor(
    readonly code: PeerErrorCode,
    readonly peer: string,
    message: string,
    options: { cause?: unknown; transient?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PeerError';
    this.transient = options.transient ?? false;
  }
}
