import type { IncomingMessage } from 'node:http';
import { isValidTag } from '../oci/index.js';
import { MirrorError } from './errors.js';

/**
 * Checks on the raw request target, before it is parsed into a URL and routed (pure).
 *
 * The router sees `new URL(target).pathname`, and the WHATWG URL parser is forgiving in ways a
 * registry API must not be: it resolves `.` and `..` segments (also written `%2e`), turns `\` into
 * `/`, and takes `//host/...` or `http://host/...` as naming another host. So
 * `/v2/a/x/%2e%2e/b/manifests/v1` would quietly be served as `a/b`. The distribution-spec names
 * (`[a-z0-9]+(...)`, "Pulling manifests") can never contain a dot segment, a backslash or a byte
 * outside printable ASCII, so a target with any of those is refused here with a 400 rather than
 * repaired. The same goes for the tags-list pagination parameters (distribution-spec "Listing
 * Tags": `n` an integer, `last` a tag), which the mirror passes on to the upstream, and for a
 * repeated `ns` (containerd sends one; two would make the upstream choice ambiguous).
 */

/** Longest request target accepted: a path of MAX_PATH_LENGTH plus a query of tags/ns parameters. */
export const MAX_TARGET_LENGTH = 4096;
/** Largest page size a tags list may ask for; distribution itself caps `n` at 1000 by default. */
const MAX_TAGS_PAGE = 100_000;

const PRINTABLE_ASCII = /^[\x21-\x7e]*$/;

export function checkRequestTarget(target: string): MirrorError | undefined {
  if (target.length > MAX_TARGET_LENGTH) {
    return invalid(`request target is longer than ${MAX_TARGET_LENGTH} characters`);
  }
  if (!target.startsWith('/') || target.startsWith('//')) {
    return invalid('request target must be a path starting with a single "/" (RFC 9112 origin-form)');
  }
  if (!PRINTABLE_ASCII.test(target)) {
    return invalid('request target may hold only printable ASCII; percent-encode anything else');
  }
  if (target.includes('\\')) return invalid('request path may not contain "\\"');
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  for (const segment of path.split('/')) {
    const decoded = segment.replace(/%2e/gi, '.');
    if (decoded === '.' || decoded === '..') {
      return invalid('request path may not contain "." or ".." segments');
    }
  }
  if (q < 0) return undefined;
  const query = new URLSearchParams(target.slice(q + 1));
  if (query.getAll('ns').length > 1) return invalid('give the "ns" parameter at most once');
  if (path.endsWith('/tags/list')) return checkTagsQuery(query);
  return undefined;
}

/** distribution-spec "Listing Tags": `?n=<integer>&last=<tag>`, each at most once. */
function checkTagsQuery(query: URLSearchParams): MirrorError | undefined {
  const n = query.getAll('n');
  if (n.length > 1 || (n[0] !== undefined && !/^\d{1,6}$/.test(n[0])) || Number(n[0] ?? 0) > MAX_TAGS_PAGE) {
    return new MirrorError(
      'UNSUPPORTED',
      `tags list parameter "n" must be given once, as an integer from 0 to ${MAX_TAGS_PAGE}`,
      { status: 400 },
    );
  }
  const last = query.getAll('last');
  if (last.length > 1 || (last[0] !== undefined && !isValidTag(last[0]))) {
    return new MirrorError('TAG_INVALID', 'tags list parameter "last" must be given once, as a valid tag');
  }
  return undefined;
}

/**
 * checkRequestTarget, plus the protocol version: Node's parser takes `HTTP/2.0` and `HTTP/0.9` in
 * an HTTP/1 request line, neither of which is a real request (HTTP/2 has no text request line;
 * HTTP/0.9 has no headers). Refused with a 400 rather than 505, which is a server error.
 */
export function checkRequest(
  req: Pick<IncomingMessage, 'url' | 'httpVersionMajor' | 'httpVersionMinor'>,
): MirrorError | undefined {
  if (req.httpVersionMajor !== 1) {
    return new MirrorError(
      'UNSUPPORTED',
      `HTTP/${req.httpVersionMajor}.${req.httpVersionMinor} in a request line; send HTTP/1.1`,
      { status: 400 },
    );
  }
  return checkRequestTarget(req.url ?? '');
}

function invalid(message: string): MirrorError {
  return new MirrorError('NAME_INVALID', message);
}
