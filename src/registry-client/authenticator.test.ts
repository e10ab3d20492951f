import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { Authenticator, type TokenFetch } from './authenticator.js';
import type { HttpResponse } from './http-transport.js';

/** A 200 JSON answer, as the transport hands it over. */
function jsonResponse(value: unknown): HttpResponse {
  const text = JSON.stringify(value);
  return {
    status: 200,
    headers: { get: (name) => (name.toLowerCase() === 'content-type' ? 'application/json' : null) },
    body: Readable.from([Buffer.from(text)]),
    text: () => Promise.resolve(text),
    json: () => Promise.resolve(value),
    bytes: () => Promise.resolve(Buffer.from(text)),
    discard: () => Promise.resolve(),
  };
}

const CHALLENGE = 'Bearer realm="http://auth.test/token",service="reg",scope="repository:a/b:pull"';
const SCOPE = 'repository:a/b:pull';

/** A token service that hands out t1, t2, ... and records the scopes asked for. */
function tokenService(): { fetchToken: TokenFetch; scopes: string[] } {
  const scopes: string[] = [];
  const fetchToken: TokenFetch = (url) => {
    scopes.push(new URL(url).searchParams.get('scope') ?? '');
    return Promise.resolve(jsonResponse({ token: `t${scopes.length}`, expires_in: 300 }));
  };
  return { fetchToken, scopes };
}

describe('Authenticator', () => {
  it('answers requests refused together with one new token', async () => {
    const { fetchToken, scopes } = tokenService();
    const now = 1_000_000;
    const auth = new Authenticator('reg', undefined, 'test', fetchToken, () => now);

    // First contact: two requests went out without a token; both are challenged.
    assert.equal(await auth.answerChallenge(CHALLENGE, SCOPE, undefined), 'Bearer t1');
    assert.equal(await auth.answerChallenge(CHALLENGE, SCOPE, undefined), 'Bearer t1');
    assert.deepEqual(scopes, [SCOPE]);

    // The registry stops accepting t1 (rotated key, revoked): every request in flight with it is
    // refused; the first refusal renews, the later ones use the renewed token.
    assert.equal(await auth.answerChallenge(CHALLENGE, SCOPE, undefined, 'Bearer t1'), 'Bearer t2');
    assert.equal(await auth.answerChallenge(CHALLENGE, SCOPE, undefined, 'Bearer t1'), 'Bearer t2');
    assert.equal(await auth.cachedAuthorization(SCOPE, undefined), 'Bearer t2');
    assert.deepEqual(scopes, [SCOPE, SCOPE]);

    // A refusal of the current token asks again.
    assert.equal(await auth.answerChallenge(CHALLENGE, SCOPE, undefined, 'Bearer t2'), 'Bearer t3');
    assert.deepEqual(scopes, [SCOPE, SCOPE, SCOPE]);
  });

  it('does not answer with a cached token that has expired', async () => {
    const { fetchToken, scopes } = tokenService();
    let now = 1_000_000;
    const auth = new Authenticator('reg', undefined, 'test', fetchToken, () => now);
    assert.equal(await auth.answerChallenge(CHALLENGE, SCOPE, undefined), 'Bearer t1');
    now += 300_000;
    assert.equal(await auth.answerChallenge(CHALLENGE, SCOPE, undefined), 'Bearer t2');
    assert.deepEqual(scopes, [SCOPE, SCOPE]);
  });
});
