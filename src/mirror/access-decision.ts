/**
 * Who reaches an upstream on whose behalf: the pure decision behind AccessControl.authorize.
 *
 * - `trust`: the mirror has credentials and the operator trusts every client with them.
 * - `verify`: the mirror has credentials; a repository that anonymous clients cannot read is
 *   served only to a client whose own credentials the upstream accepts (a HEAD, cached).
 * - `passthrough`: the mirror has no credentials. It asks anonymously first; when the upstream
 *   refuses that (401/403), the repository is known private from then on: the client is challenged
 *   and its own credentials are checked and then used upstream (Basic, or the Bearer token flow
 *   with them), so the pods' imagePullSecrets that containerd hands over work through the mirror.
 */
export type UpstreamMode = 'trust' | 'verify' | 'passthrough';

export function upstreamMode(hasCredentials: boolean, clientAuth: 'verify' | 'trust'): UpstreamMode {
  if (!hasCredentials) return 'passthrough';
  return clientAuth;
}

/** The upstream's answer to a HEAD with the client's own credentials. */
export type ClientCheck = 'ok' | 'denied' | 'missing';

export interface AccessFacts {
  mode: UpstreamMode;
  /** passthrough: the upstream refused an anonymous request for this repository (seen or recorded). */
  knownPrivate: boolean;
  /** Whether anonymous clients can read the repository upstream; undefined until asked. */
  isPublic?: boolean;
  clientHasCredentials: boolean;
  /** undefined until asked. */
  clientCheck?: ClientCheck;
}

export type AccessStep =
  /** Go ahead: upstream with the mirror's own client (its credentials, or none), or the client's. */
  | { kind: 'serve'; via: 'mirror' | 'client' }
  /** Find out `isPublic` or `clientCheck`, then decide again. */
  | { kind: 'ask'; question: 'public' | 'client' }
  /** 401 with a challenge: the repository is private and the client sent no credentials. */
  | { kind: 'challenge' }
  /** 401: the upstream refused the client's credentials. */
  | { kind: 'refuse' }
  /** The credentials work but the upstream has no such thing. */
  | { kind: 'missing' };

export function nextStep(f: AccessFacts): AccessStep {
  if (f.mode === 'trust') return { kind: 'serve', via: 'mirror' };
  // Anonymous first: public content costs no extra round trip and is served offline from the
  // cache. Nothing fetched with a client's credentials is cached before the repository is marked.
  if (f.mode === 'passthrough' && !f.knownPrivate) return { kind: 'serve', via: 'mirror' };
  if (f.isPublic === undefined) return { kind: 'ask', question: 'public' };
  if (f.isPublic) return { kind: 'serve', via: 'mirror' };
  if (!f.clientHasCredentials) return { kind: 'challenge' };
  if (f.clientCheck === undefined) return { kind: 'ask', question: 'client' };
  if (f.clientCheck === 'denied') return { kind: 'refuse' };
  if (f.clientCheck === 'missing') return { kind: 'missing' };
  return { kind: 'serve', via: f.mode === 'passthrough' ? 'client' : 'mirror' };
}

/**
 * Whether an upstream error means "ask again with the client's credentials": only an anonymous
 * request of a passthrough upstream, refused as unauthorized or denied.
 */
export function learnsPrivate(mode: UpstreamMode, via: 'mirror' | 'client', errorCode: string): boolean {
  return (
    mode === 'passthrough' && via === 'mirror' && (errorCode === 'UNAUTHORIZED' || errorCode === 'DENIED')
  );
}
