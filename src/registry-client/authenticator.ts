import {
  basicAuthorization,
  parseChallenges,
  tokenFromResponse,
  type CachedToken,
  type Credentials,
} from './auth.js';
import { errorFromResponse, UpstreamError } from './errors.js';
import type { HttpRequestInit, HttpResponse } from './http-transport.js';

/** Sends a request for a token; the client's transport, with its timeout and error mapping. */
export type TokenFetch = (
  url: string,
  init: HttpRequestInit,
  signal: AbortSignal | undefined,
) => Promise<HttpResponse>;

/**
 * One upstream's side of the auth dance (distribution docs/spec/auth/token.md): answers `401`
 * challenges with a Bearer token from the realm (with the configured credentials as Basic, or
 * anonymously) or with Basic credentials, and caches tokens per scope until they expire.
 * Concurrent requests for the same scope share one token request.
 */
export class Authenticator {
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();
  /** The last challenge seen, so that later scopes can fetch a token before the first request. */
  private bearer: { realm: string; service: string | undefined } | undefined;
  private useBasic = false;

  constructor(
    private readonly name: string,
    private readonly credentials: Credentials | undefined,
    private readonly userAgent: string,
    private readonly fetchToken: TokenFetch,
    private readonly now: () => number,
  ) {}

  /** The Authorization to send up front for `scope`, if this upstream is known to want one. */
  async cachedAuthorization(scope: string, signal: AbortSignal | undefined): Promise<string | undefined> {
    if (this.useBasic && this.credentials) return basicAuthorization(this.credentials);
    if (!this.bearer) return undefined;
    const cached = this.tokens.get(key(this.bearer.realm, this.bearer.service, scope));
    if (cached && cached.expiresAt > this.now()) return cached.authorization;
    // We know this registry wants a token: get one now rather than take a 401 first.
    return (await this.token(this.bearer.realm, this.bearer.service, scope, signal)).authorization;
  }

  /**
   * The Authorization answering a `WWW-Authenticate` challenge, or undefined when it cannot be
   * answered. `refused` is the Authorization the challenged request carried (none at first contact).
   */
  async answerChallenge(
    header: string,
    scope: string,
    signal: AbortSignal | undefined,
    refused?: string,
  ): Promise<string | undefined> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer?.params.realm) {
      this.bearer = { realm: bearer.params.realm, service: bearer.params.service };
      const wanted = bearer.params.scope ?? scope;
      const k = key(bearer.params.realm, bearer.params.service, wanted);
      // Requests sent together are refused together (first contact, or a token the registry no
      // longer accepts): the first answer's new token serves the rest, so that one refusal costs one
      // token request, not one per request that was in flight.
      const cached = this.tokens.get(k);
      if (cached && cached.authorization !== refused && cached.expiresAt > this.now()) {
        return cached.authorization;
      }
      this.tokens.delete(k); // the one we sent was refused
      return (await this.token(bearer.params.realm, bearer.params.service, wanted, signal)).authorization;
    }
    if (challenges.some((c) => c.scheme === 'basic') && this.credentials) {
      this.useBasic = true;
      return basicAuthorization(this.credentials);
    }
    return undefined;
  }

  private token(
    realm: string,
    service: string | undefined,
    scope: string,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    const k = key(realm, service, scope);
    const pending = this.pending.get(k);
    if (pending) return pending;
    const promise = this.requestToken(realm, service, scope, signal).finally(() => this.pending.delete(k));
    this.pending.set(k, promise);
    return promise;
  }

  private async requestToken(
    realm: string,
    service: string | undefined,
    scope: string,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch (cause) {
      throw new UpstreamError('UPSTREAM_BAD_RESPONSE', `${this.name} named an invalid token realm`, {
        cause,
      });
    }
    if (service) url.searchParams.set('service', service);
    url.searchParams.set('scope', scope);
    const headers: Record<string, string> = { 'user-agent': this.userAgent };
    if (this.credentials) headers.authorization = basicAuthorization(this.credentials);
    const res = await this.fetchToken(url.toString(), { method: 'GET', headers }, signal);
    if (res.status !== 200) {
      const body = await res.text().catch(() => '');
      const err = errorFromResponse(res.status, body, `a token for ${scope}`, res.headers.get('retry-after'));
      throw new UpstreamError(
        res.status === 401 || res.status === 403 ? 'UNAUTHORIZED' : err.code,
        `${this.name} token service answered ${res.status} for ${scope}${this.credentials ? ' (check the configured credentials)' : ''}`,
        { status: res.status },
      );
    }
    const token = tokenFromResponse(await res.json().catch(() => undefined), this.now());
    if (!token) throw new UpstreamError('UPSTREAM_BAD_RESPONSE', `${this.name} token service sent no token`);
    this.tokens.set(key(realm, service, scope), token);
    return token;
  }
}

function key(realm: string, service: string | undefined, scope: string): string {
  return `${realm}\n${service ?? ''}\n${scope}`;
}
