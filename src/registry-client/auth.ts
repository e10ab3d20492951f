/**
 * Registry authentication: the `WWW-Authenticate` challenges of the Docker token spec
 * (distribution docs/spec/auth/token.md) and Basic auth (RFC 7617).
 */

export interface Credentials {
  username: string;
  password: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header (RFC 9110 §11.6.1). Registries send one challenge, e.g.
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x:pull"`.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  let current: Challenge | undefined;
  const s = header;
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === ',')) i++;
    const tokenMatch = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(s.slice(i));
    if (!tokenMatch) break;
    const token = tokenMatch[0];
    i += token.length;
    while (s[i] === ' ') i++;
    if (s[i] === '=') {
      // auth-param of the current challenge
      i++;
      while (s[i] === ' ') i++;
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++;
      } else {
        const m = /^[^,\s]*/.exec(s.slice(i));
        value = m?.[0] ?? '';
        i += value.length;
      }
      if (current) current.params[token.toLowerCase()] = value;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

export function basicAuthorization(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

export interface CachedToken {
  authorization: string;
  /** Epoch milliseconds after which the token must not be used. */
  expiresAt: number;
}

/** Tokens live for `expires_in` seconds, 60 when the server does not say (token spec). */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 60;
/** Refresh a little early so that a token never expires between our check and the upstream's. */
const TOKEN_EARLY_REFRESH_MS = 10_000;

export function tokenFromResponse(json: unknown, now: number): CachedToken | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const body = json as Record<string, unknown>;
  const token = typeof body.token === 'string' ? body.token : body.access_token;
  if (typeof token !== 'string' || token === '') return undefined;
  const expiresIn =
    typeof body.expires_in === 'number' && body.expires_in > 0
      ? body.expires_in
      : DEFAULT_TOKEN_LIFETIME_SECONDS;
  const issued = typeof body.issued_at === 'string' ? Date.parse(body.issued_at) : NaN;
  const base = Number.isNaN(issued) || issued > now ? now : issued;
  return {
    authorization: `Bearer ${token}`,
    expiresAt: base + expiresIn * 1000 - Math.min(TOKEN_EARLY_REFRESH_MS, (expiresIn * 1000) / 4),
  };
}
