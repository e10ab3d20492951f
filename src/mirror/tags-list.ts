// Tag list pagination through the mirror (OCI distribution-spec, "Listing Tags", end-8b): the
// client's `n` and `last` go to the upstream, and the upstream's `Link: <...>; rel="next"` comes
// back pointing at the mirror. "Compliant client implementations SHOULD always use the Link header
// value when proceeding through results linearly", so a Link left as the upstream wrote it would
// send the client's next request to the upstream itself (an absolute URL) or, when the client
// names the upstream by a path prefix (`/v2/ghcr.io/org/app/...`) or docker.io's `library/` is
// implied, to another repository (a path-absolute reference resolved against the mirror).

/** The parameters of "Listing Tags"; anything else in a client's query stays with the mirror. */
const PAGE_PARAMS = ['n', 'last'] as const;

/** The query for the upstream's tags/list: the client's `n` and `last`, in that order ('' for none). */
export function upstreamTagsQuery(clientQuery: URLSearchParams): string {
  const query = new URLSearchParams();
  for (const key of PAGE_PARAMS) {
    const v = clientQuery.get(key);
    if (v !== null) query.set(key, v);
  }
  return query.size ? `?${query.toString()}` : '';
}

interface LinkValue {
  target: string;
  /** Everything after the `>`, parameters with their leading `;`, as received. */
  params: string;
}

/**
 * Splits a Link field value (RFC 8288 §3) into its links: `<target>` then parameters up to a comma
 * outside a quoted string. Undefined when it is not in that form.
 */
function parseLinks(value: string): LinkValue[] | undefined {
  const links: LinkValue[] = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && /[\s,]/.test(value[i]!)) i++;
    if (i >= value.length) break;
    if (value[i] !== '<') return undefined;
    const close = value.indexOf('>', i);
    if (close < 0) return undefined;
    const target = value.slice(i + 1, close);
    let j = close + 1;
    let quoted = false;
    for (; j < value.length; j++) {
      const c = value[j];
      if (quoted && c === '\\') j++;
      else if (c === '"') quoted = !quoted;
      else if (c === ',' && !quoted) break;
    }
    links.push({ target, params: value.slice(close + 1, j).trim() });
    i = j + 1;
  }
  return links.length ? links : undefined;
}

/**
 * The upstream's Link field as the mirror's client should follow it: each link's target becomes a
 * path-absolute reference to the client's own request path (`clientUrl.pathname`), carrying the
 * target's `n` and `last` and the client's `ns` (containerd's upstream choice), so the next page
 * is asked of the mirror, for the same upstream and repository. Relative and absolute upstream
 * targets are both resolved first, so either form works. A value that is not a Link list is
 * dropped (undefined): forwarding it could point the client anywhere.
 */
export function mirrorTagsLink(upstreamLink: string, clientUrl: URL): string | undefined {
  const links = parseLinks(upstreamLink);
  if (!links) return undefined;
  const out: string[] = [];
  for (const link of links) {
    let target: URL;
    try {
      target = new URL(link.target, 'http://upstream.invalid/');
    } catch {
      return undefined;
    }
    const query = new URLSearchParams();
    for (const key of PAGE_PARAMS) {
      const v = target.searchParams.get(key);
      if (v !== null) query.set(key, v);
    }
    const ns = clientUrl.searchParams.get('ns');
    if (ns !== null) query.set('ns', ns);
    const search = query.size ? `?${query.toString()}` : '';
    out.push(`<${clientUrl.pathname}${search}>${link.params ? `; ${link.params.replace(/^;\s*/, '')}` : ''}`);
  }
  return out.join(', ');
}
