/**
 * The push side of the distribution-spec (spec.md "Push"): blob uploads (POST then PUT for a
 * monolithic upload, POST, PATCHes of chunks and PUT for a blob produced on the fly),
 * cross-repository mounts and
 * manifest PUTs, over RegistryClient.request with a push-scoped token.
 *
 * Every upload starts with the POST: its 401 challenge, if any, is answered there, so the PATCHes
 * that carry the bytes go out with the push token already cached and are never sent twice.
 */
import type { RegistryClient } from './client.js';
import { errorFromResponse, UpstreamError } from './errors.js';
import type { HttpResponse } from './http-transport.js';

/** PATCH size for uploads of blobs produced on the fly. */
export const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;

export interface ChunkedWriter {
  write(data: Buffer): Promise<void>;
  /** Sends what is left and waits for every PATCH. */
  close(): Promise<void>;
}

export interface PushOptions {
  signal?: AbortSignal | undefined;
}

/** The error for an unexpected answer; reads (and so releases) the response body. */
async function failure(res: HttpResponse, what: string, client: RegistryClient): Promise<UpstreamError> {
  const body = await res.text().catch(() => '');
  return errorFromResponse(
    res.status,
    body.slice(0, 64 * 1024),
    `${what} on ${client.name}`,
    res.headers.get('retry-after'),
  );
}

/**
 * Turns an upload Location (absolute or relative, spec.md "Pushing a blob in chunks") into a
 * path on the client's base URL; a registry that sends uploads to another origin is refused.
 */
function locationPath(client: RegistryClient, location: string | null, what: string): string {
  if (!location)
    throw new UpstreamError('UPSTREAM_BAD_RESPONSE', `${client.name} sent no Location for ${what}`);
  const base = new URL(client.baseUrl);
  const url = new URL(location, base);
  if (url.origin !== base.origin) {
    throw new UpstreamError(
      'UPSTREAM_BAD_RESPONSE',
      `${client.name} sent the upload to another origin (${url.origin}), which Hoist does not follow`,
    );
  }
  const prefix = base.pathname.replace(/\/+$/, '');
  const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname;
  return `${path}${url.search}`;
}

function withDigest(path: string, digest: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

/** Whether the registry already holds the blob in this repository. */
export async function blobExists(
  client: RegistryClient,
  repo: string,
  digest: string,
  opts: PushOptions = {},
): Promise<boolean> {
  const res = await client.request('HEAD', `/v2/${repo}/blobs/${digest}`, repo, {
    push: true,
    signal: opts.signal,
  });
  if (res.status === 200 || res.status === 404) {
    await res.discard();
    return res.status === 200;
  }
  throw await failure(res, `HEAD of blob ${repo}@${digest}`, client);
}

/**
 * Mounts a blob from another repository of the same registry (spec.md "Mounting a blob from
 * another repository"). Returns false when the registry started an upload instead.
 */
export async function mountBlob(
  client: RegistryClient,
  repo: string,
  digest: string,
  fromRepo: string,
  opts: PushOptions = {},
): Promise<boolean> {
  const query = `mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepo)}`;
  const res = await client.request('POST', `/v2/${repo}/blobs/uploads/?${query}`, repo, {
    push: true,
    signal: opts.signal,
  });
  if (res.status === 201 || res.status === 202) await res.discard();
  if (res.status === 201) return true;
  if (res.status === 202) {
    // An upload session was opened instead; cancel it so it does not linger until the registry's GC.
    const path = locationPath(client, res.headers.get('location'), 'an upload');
    const del = await client
      .request('DELETE', path, repo, { push: true, signal: opts.signal })
      .catch(() => undefined);
    await del?.discard();
    return false;
  }
  throw await failure(res, `mount of ${digest} into ${repo}`, client);
}

/** An open upload session. */
export class BlobUpload {
  private constructor(
    private readonly client: RegistryClient,
    private readonly repo: string,
    private path: string,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** POST /v2/<repo>/blobs/uploads/: opens a session, answering any auth challenge. */
  static async start(client: RegistryClient, repo: string, opts: PushOptions = {}): Promise<BlobUpload> {
    const res = await client.request('POST', `/v2/${repo}/blobs/uploads/`, repo, {
      push: true,
      signal: opts.signal,
    });
    if (res.status !== 202) throw await failure(res, `upload to ${repo}`, client);
    await res.discard();
    return new BlobUpload(
      client,
      repo,
      locationPath(client, res.headers.get('location'), 'an upload'),
      opts.signal,
    );
  }

  /** Bytes the registry has acknowledged so far. */
  offset = 0;

  /**
   * Sends the next chunk (spec.md "Pushing a blob in chunks": PATCH with Content-Range). Chunks,
   * not one streamed PATCH: the registry acknowledges each (its Range header, checked below), and
   * memory stays at the chunk size whatever the blob's.
   */
  async patch(chunk: Buffer): Promise<void> {
    const start = this.offset;
    const res = await this.client.request('PATCH', this.path, this.repo, {
      push: true,
      signal: this.signal,
      headers: {
        'content-type': 'application/octet-stream',
        'content-range': `${start}-${start + chunk.length - 1}`,
        'content-length': String(chunk.length),
      },
      body: chunk,
    });
    if (res.status !== 202) throw await failure(res, `upload to ${this.repo}`, this.client);
    await res.discard();
    this.offset += chunk.length;
    // distribution answers `0-0` for both 0 and 1 bytes received, so only larger counts are checked.
    const range = /^(?:bytes=)?0-(\d+)$/.exec(res.headers.get('range') ?? '');
    if (range && this.offset > 1 && Number(range[1]) + 1 !== this.offset) {
      throw new UpstreamError(
        'SIZE_MISMATCH',
        `${this.client.name} acknowledged ${Number(range[1]) + 1} of ${this.offset} bytes uploaded to ${this.repo}`,
      );
    }
    this.path = locationPath(this.client, res.headers.get('location'), 'an upload');
  }

  /**
   * A sink for a blob produced as it goes: bytes are gathered into chunks of `chunkBytes` and
   * each is PATCHed while the next fills, so memory stays at about two chunks.
   */
  chunkedWriter(chunkBytes = DEFAULT_CHUNK_BYTES): ChunkedWriter {
    let parts: Buffer[] = [];
    let gathered = 0;
    let inFlight: Promise<void> = Promise.resolve();
    const send = async () => {
      const chunk = Buffer.concat(parts, gathered);
      parts = [];
      gathered = 0;
      await inFlight;
      inFlight = this.patch(chunk);
      inFlight.catch(() => undefined); // surfaced by the next write or by close()
    };
    return {
      write: async (data: Buffer) => {
        parts.push(data);
        gathered += data.length;
        if (gathered >= chunkBytes) await send();
      },
      close: async () => {
        if (gathered > 0) await send();
        await inFlight;
      },
    };
  }

  /** PUT ?digest=: completes the upload; with `body`, it is a monolithic upload. */
  async commit(digest: string, body?: Buffer): Promise<void> {
    const res = await this.client.request('PUT', withDigest(this.path, digest), this.repo, {
      push: true,
      signal: this.signal,
      headers: {
        'content-type': 'application/octet-stream',
        ...(body ? { 'content-length': String(body.length) } : { 'content-length': '0' }),
      },
      ...(body ? { body } : {}),
    });
    if (res.status !== 201) throw await failure(res, `blob ${digest} in ${this.repo}`, this.client);
    await res.discard();
  }
}

/** Uploads a small blob in one request (POST, then PUT with the bytes), unless it is there. */
export async function pushBlob(
  client: RegistryClient,
  repo: string,
  digest: string,
  data: Buffer,
  opts: PushOptions = {},
): Promise<void> {
  if (await blobExists(client, repo, digest, opts)) return;
  const upload = await BlobUpload.start(client, repo, opts);
  await upload.commit(digest, data);
}

/** PUT /v2/<repo>/manifests/<reference>; returns the digest the registry reports. */
export async function pushManifest(
  client: RegistryClient,
  repo: string,
  reference: string,
  body: Buffer,
  mediaType: string,
  opts: PushOptions = {},
): Promise<string | undefined> {
  const res = await client.request('PUT', `/v2/${repo}/manifests/${reference}`, repo, {
    push: true,
    signal: opts.signal,
    headers: { 'content-type': mediaType },
    body,
  });
  if (res.status !== 201) throw await failure(res, `manifest ${repo}:${reference}`, client);
  await res.discard();
  return res.headers.get('docker-content-digest') ?? undefined;
}
