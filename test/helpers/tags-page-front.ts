// Tag list pagination in front of a real docker-registry. Debian's docker-registry (distribution
// 2.8) ignores `n` and `last` on tags/list and answers every tag, unsorted; distribution 3, Docker
// Hub and GHCR page. This front pages as the OCI distribution-spec's "Listing Tags" describes: the
// registry's tags sorted lexically, those after `last`, at most `n`, and, when more remain,
// `Link: <ABSOLUTE URL?n=N&last=TAG>; rel="next"` (the spec's own example is an absolute URL).
// Every other request is proxied to the registry unchanged. `requests` records what was asked.
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TagsPageFront {
  url: string;
  host: string;
  /** Every request's target (path and query), oldest first. */
  requests: string[];
  close(): Promise<void>;
}

export async function startTagsPageFront(registryUrl: string): Promise<TagsPageFront> {
  const target = new URL(registryUrl);
  const requests: string[] = [];
  let self = '';
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const u = new URL(req.url ?? '/', self);
    const proxied = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: u.pathname,
        headers: req.headers,
      },
      (up) => {
        if (!u.pathname.endsWith('/tags/list') || up.statusCode !== 200) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          const list = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { name: string; tags: string[] };
          const last = u.searchParams.get('last');
          const n = u.searchParams.get('n');
          const after = list.tags.sort().filter((t) => last === null || t > last);
          const page = n === null ? after : after.slice(0, Number(n));
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (n !== null && page.length < after.length) {
            const next = new URL(u.pathname, self);
            next.search = new URLSearchParams({ n, last: page.at(-1) ?? '' }).toString();
            headers.link = `<${next.href}>; rel="next"`;
          }
          res.writeHead(200, headers).end(JSON.stringify({ name: list.name, tags: page }));
        });
      },
    );
    proxied.on('error', (err) => res.destroy(err));
    req.pipe(proxied);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  self = `http://127.0.0.1:${port}`;
  return {
    url: self,
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
