// A token-auth front for a real docker-registry, per the distribution token spec
// (docs/spec/auth/token.md), small enough to record who used which token: `GET /token` issues a
// token to Basic-authenticated users (or an anonymous one, as Docker Hub does); every other request
// needs a Bearer token valid for its repository, else 401 with a Bearer challenge; valid requests
// are proxied to the registry. Anonymous tokens read only the `public` repositories.
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenFrontRequest {
  method: string;
  path: string;
  /** Whose token it carried ('' for anonymous, undefined for none or an unknown token). */
  user: string | undefined;
  status: number;
}

export interface TokenFront {
  url: string;
  host: string;
  /** Requests to the registry API, oldest first. */
  requests: TokenFrontRequest[];
  /** Token requests: who asked (Basic user, '' anonymous) and whether a token was issued. */
  tokenRequests: Array<{ user: string; scope: string; issued: boolean }>;
  close(): Promise<void>;
}

export async function startTokenFront(opts: {
  registryUrl: string;
  users: Record<string, string>;
  publicRepos: string[];
}): Promise<TokenFront> {
  const target = new URL(opts.registryUrl);
  const tokens = new Map<string, { user: string; repo: string }>();
  const requests: TokenFrontRequest[] = [];
  const tokenRequests: TokenFront['tokenRequests'] = [];
  let issued = 0;
  let url = '';

  const handleToken = (req: IncomingMessage, res: ServerResponse, u: URL) => {
    const scope = u.searchParams.get('scope') ?? '';
    const repo = /^repository:([^:]+):/.exec(scope)?.[1] ?? '';
    let user = '';
    const auth = req.headers.authorization;
    if (auth) {
      const decoded = Buffer.from(auth.replace(/^Basic\s+/i, ''), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const name = decoded.slice(0, colon);
      if (colon < 0 || opts.users[name] !== decoded.slice(colon + 1)) {
        tokenRequests.push({ user: name, scope, issued: false });
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      user = name;
    }
    issued += 1;
    const token = `tok-${issued}`;
    tokens.set(token, { user, repo });
    tokenRequests.push({ user, scope, issued: true });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  };

  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://front.invalid');
    if (u.pathname === '/token') return handleToken(req, res, u);
    const repo = /^\/v2\/(.+?)\/(manifests|blobs|tags)\//.exec(u.pathname)?.[1];
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const grant = bearer === undefined ? undefined : tokens.get(bearer);
    const allowed =
      u.pathname === '/v2/'
        ? grant !== undefined
        : grant !== undefined &&
          repo !== undefined &&
          grant.repo === repo &&
          (grant.user !== '' || opts.publicRepos.includes(repo));
    const record: TokenFrontRequest = {
      method: req.method ?? '',
      path: u.pathname,
      user: grant?.user,
      status: 0,
    };
    requests.push(record);
    if (!allowed) {
      record.status = 401;
      const scope = repo ? `,scope="repository:${repo}:pull"` : '';
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="${url}/token",service="token-front"${scope}`,
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const headers = { ...req.headers, host: target.host };
    delete headers.authorization;
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
      (upRes) => {
        record.status = upRes.statusCode ?? 0;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  url = `http://127.0.0.1:${port}`;
  return {
    url,
    host: `127.0.0.1:${port}`,
    requests,
    tokenRequests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
