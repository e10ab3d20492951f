import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { parseRange, type Digest } from '../oci/index.js';
import type { AccessControl } from './access.js';
import type { RegistryClient } from '../registry-client/index.js';
import type { BlobFetcher, BlobSource } from './blob-fetcher.js';
import type { BlobStore } from './blob-store.js';
import { MirrorError } from './errors.js';
import { API_VERSION_HEADER, sliceStream, streamBody } from './http.js';
import type { InflightBlob, InflightReader } from './inflight-blob.js';
import type { MirrorMetrics } from './metrics.js';
import { matchesVerifiedTail, TailHold } from './range-tail.js';
import type { Route } from './routing.js';
import type { SendBudget } from './send-budget.js';
import { fileReader, sendRange, type SendOptions } from './send-file.js';

type BlobRoute = Extract<Route, { kind: 'blob' }>;

/** Per-request facts gathered for the one log line each request gets. */
export interface RequestInfo {
  route: string;
  cache?: string;
  bytes: number;
  upstream?: string;
}

export interface BlobHandlerOptions {
  blobs: BlobStore;
  fetcher: BlobFetcher;
  access: AccessControl;
  metrics: MirrorMetrics;
  rangeAheadBytes: number;
  /** The mirror's budget for response send buffers (send-budget.ts). */
  sendBudget: SendBudget;
  sendStallTimeoutMs: number;
}

/**
 * `GET`/`HEAD /v2/<name>/blobs/<digest>` (distribution-spec "Pulling blobs"), whole or ranged:
 * from the store, from a download in progress, or (a range far ahead of a cold download) straight
 * from the upstream. Whatever the path, a body that reaches the blob's last byte ends only after
 * the whole blob was verified (see range-tail.ts).
 */
export class BlobHandler {
  private readonly blobs: BlobStore;
  private readonly fetcher: BlobFetcher;
  private readonly access: AccessControl;
  private readonly metrics: MirrorMetrics;
  private readonly rangeAheadBytes: number;
  private readonly sendBudget: SendBudget;
  private readonly sendStallTimeoutMs: number;

  constructor(options: BlobHandlerOptions) {
    this.blobs = options.blobs;
    this.fetcher = options.fetcher;
    this.access = options.access;
    this.metrics = options.metrics;
    this.rangeAheadBytes = options.rangeAheadBytes;
    this.sendBudget = options.sendBudget;
    this.sendStallTimeoutMs = options.sendStallTimeoutMs;
  }

  private sendOptions(
    onBytes: (n: number) => void,
    waitReadable?: (pos: number) => Promise<void>,
  ): SendOptions {
    return {
      budget: this.sendBudget,
      stallTimeoutMs: this.sendStallTimeoutMs,
      onBytes,
      onStalled: () => this.metrics.sendStalls.inc(),
      ...(waitReadable ? { waitReadable } : {}),
    };
  }

  /**
   * `opts.peer`: the request comes from a peer mirror (peer-endpoint.ts), which checked its own
   * client's access; as a `relay` this node serves only what it holds or is receiving.
   * `opts.source`: where a miss is read from (peers in front of `client`); `client` by default.
   * `opts.storedHeaders`: added to a 200/206 answer served whole from the store, and to no other
   * (a peer marks such answers: their rate is this node's own, not a download's; an error answer
   * must not claim it).
   */
  async serve(
    req: IncomingMessage,
    res: ServerResponse,
    route: BlobRoute,
    client: RegistryClient,
    info: RequestInfo,
    opts: { peer?: 'fetcher' | 'relay'; source?: BlobSource; storedHeaders?: Record<string, string> } = {},
  ): Promise<void> {
    const source = opts.source ?? client;
    const head = req.method === 'HEAD';
    // A malformed Range is refused before any lookup or upstream traffic.
    parseRange(req.headers.range, undefined);
    const baseHeaders = {
      ...API_VERSION_HEADER,
      'content-type': 'application/octet-stream',
      'docker-content-digest': route.digest.value,
      etag: `"${route.digest.value}"`,
      'accept-ranges': 'bytes',
    };

    // Authorized by the caller (AccessControl.withSource), which chose `client` for this request.
    const target = { kind: 'blob', digest: route.digest.value } as const;
    const held = (await this.blobs.size(route.digest)) ?? this.fetcher.inflightSize(route.digest);
    const present = held !== undefined || this.fetcher.isInflight(route.digest);
    if (!present && opts.peer === 'relay') {
      throw new MirrorError('BLOB_UNKNOWN', `blob ${route.digest.value} is neither held nor arriving here`);
    }
    if (
      present &&
      !(await this.access.isMember(route.upstream, route.repo, target, route.digest.value, client))
    ) {
      // Held for another repository or registry: serving it here could leak a private layer.
      throw new MirrorError('BLOB_UNKNOWN', `blob ${route.digest.value} is not in ${route.repo}`);
    }

    if (head) {
      // A HEAD answers from what is known; it never starts a download.
      const size = held ?? (await client.headBlob(route.repo, route.digest.value)).size;
      res.writeHead(200, { ...baseHeaders, ...(size !== undefined ? { 'content-length': size } : {}) }).end();
      return;
    }

    // Pinned while it is served: the garbage collector never evicts a blob being read.
    const unpin = this.blobs.pin(route.digest);
    try {
      const lookup = await this.fetcher.lookup(source, route.repo, route.digest);
      // Not held before: the upstream just served it for this repository. An in-flight lookup
      // holds its reader meanwhile, so the download cannot end and drop bytes before we read.
      if (!present) {
        try {
          await this.access.recordMember(route.upstream, route.repo, route.digest.value);
        } catch (err) {
          if (lookup.kind === 'inflight') lookup.reader.release();
          throw err;
        }
      }
      if (lookup.kind === 'stored') {
        info.cache = 'hit';
        return await this.serveStored(
          req,
          res,
          route.digest,
          lookup.size,
          baseHeaders,
          info,
          opts.storedHeaders,
        );
      }
      info.cache = 'miss';
      try {
        return await this.serveInflight(
          req,
          res,
          route,
          source,
          lookup.blob,
          lookup.reader,
          baseHeaders,
          info,
        );
      } finally {
        lookup.reader.release();
      }
    } finally {
      unpin();
    }
  }

  private async serveStored(
    req: IncomingMessage,
    res: ServerResponse,
    digest: Digest,
    size: number,
    baseHeaders: Record<string, string>,
    info: RequestInfo,
    storedHeaders: Record<string, string> = {},
  ): Promise<void> {
    const range = parseRange(req.headers.range, size);
    if (range.kind === 'unsatisfiable') {
      res.setHeader('content-range', `bytes */${size}`);
      throw new MirrorError('RANGE_NOT_SATISFIABLE', `range is outside the blob's ${size} bytes`);
    }
    const start = range.kind === 'range' ? range.range.start : 0;
    const end = range.kind === 'range' ? range.range.end : size - 1;
    const handle = await this.blobs.openHandle(digest);
    if (!handle) throw new MirrorError('BLOB_UNKNOWN', `blob ${digest.value} is not stored`);
    try {
      const headers: Record<string, string | number> = {
        ...baseHeaders,
        ...storedHeaders,
        'content-length': end - start + 1,
      };
      if (range.kind === 'range') headers['content-range'] = `bytes ${start}-${end}/${size}`;
      res.writeHead(range.kind === 'range' ? 206 : 200, headers);
      if (req.method === 'HEAD' || end < start) {
        res.end();
        return;
      }
      const served = this.metrics.servedBytes.labels({ source: 'cache' });
      const onBytes = (n: number) => {
        info.bytes += n;
        served.inc(n);
      };
      await sendRange(fileReader(handle), res, start, end, this.sendOptions(onBytes)).catch(() => {
        if (!res.destroyed) res.destroy();
      });
    } finally {
      await handle.close();
    }
  }

  private async serveInflight(
    req: IncomingMessage,
    res: ServerResponse,
    route: BlobRoute,
    client: BlobSource,
    blob: InflightBlob,
    reader: InflightReader,
    baseHeaders: Record<string, string>,
    info: RequestInfo,
  ): Promise<void> {
    const size = blob.size;
    const range = parseRange(req.headers.range, size);
    if (range.kind === 'unsatisfiable') {
      if (size !== undefined) res.setHeader('content-range', `bytes */${size}`);
      throw new MirrorError('RANGE_NOT_SATISFIABLE', 'range is outside the blob');
    }
    if (
      range.kind === 'range' &&
      (size === undefined || range.range.start > blob.bytesWritten + this.rangeAheadBytes)
    ) {
      // Far ahead of the download (or of unknown size): fetch just this range upstream now,
      // rather than make a lazy-pulling client wait for the whole blob to arrive. The reader keeps
      // the download's file open, for checking the range if it turns out to reach the end.
      // Registered while the lookup's reader still holds the download open, so never undefined.
      const tailReader = blob.acquire(range.range.start) as InflightReader;
      // The lookup's reader sits at offset 0: kept, it would hold a full disk's memory tail (and
      // so the download, and this range's verdict) back at the start of the blob.
      reader.release();
      try {
        return await this.serveUpstreamRange(
          res,
          route,
          client,
          range.range,
          size,
          baseHeaders,
          info,
          tailReader,
        );
      } finally {
        tailReader.release();
      }
    }
    const start = range.kind === 'range' ? range.range.start : 0;
    const end = range.kind === 'range' ? range.range.end : size !== undefined ? size - 1 : undefined;
    const headers: Record<string, string | number> = { ...baseHeaders };
    if (end !== undefined) headers['content-length'] = end - start + 1;
    if (range.kind === 'range') headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range.kind === 'range' ? 206 : 200, headers);
    const served = this.metrics.servedBytes.labels({ source: 'inflight' });
    this.metrics.inflightClients.inc();
    // Waiting for the download happens before a send buffer is taken (see send-budget.ts).
    const wait = reader.waitReadable;
    try {
      await sendRange(
        (buf, pos, max) => reader.read(buf, pos, max, end),
        res,
        start,
        end,
        this.sendOptions(
          (n) => {
            info.bytes += n;
            served.inc(n);
          },
          wait && ((pos) => wait(pos, end)),
        ),
      );
    } catch {
      // Verification failed, the upstream broke, or the client left: abort, never end cleanly.
      if (!res.destroyed) res.destroy();
    } finally {
      reader.release();
      this.metrics.inflightClients.dec();
    }
  }

  private async serveUpstreamRange(
    res: ServerResponse,
    route: BlobRoute,
    client: BlobSource,
    range: { start: number; end: number },
    size: number | undefined,
    baseHeaders: Record<string, string>,
    info: RequestInfo,
    download: InflightReader,
  ): Promise<void> {
    const wantEnd = size === undefined && range.end === Number.MAX_SAFE_INTEGER ? undefined : range.end;
    const up = await client.getBlob(route.repo, route.digest.value, {
      range: { start: range.start, ...(wantEnd !== undefined ? { end: wantEnd } : {}) },
    });
    const total = up.totalSize ?? size;
    let body = up.body;
    let start = range.start;
    let length: number | undefined;
    if (up.status === 206) {
      start = up.offset;
      length = up.contentLength;
    } else {
      // The upstream ignored Range: cut the range out of the whole body ourselves.
      length =
        wantEnd !== undefined
          ? wantEnd - range.start + 1
          : total !== undefined
            ? total - range.start
            : undefined;
      const slice = sliceStream(range.start, length);
      void pipeline(up.body, slice).catch(() => slice.destroy());
      body = slice;
    }
    const headers: Record<string, string | number> = { ...baseHeaders };
    if (length !== undefined) {
      headers['content-length'] = length;
      headers['content-range'] = `bytes ${start}-${start + length - 1}/${total ?? '*'}`;
    }
    // Does this body reach the blob's last byte? With no size known, an open-ended range is taken
    // to reach it: nothing else can tell where the end is.
    const wantsEnd = size !== undefined ? range.end >= size - 1 : range.end === Number.MAX_SAFE_INTEGER;
    const bodyEnd = length !== undefined ? start + length - 1 : undefined;
    const reachesEnd = wantsEnd || (total !== undefined && (bodyEnd === undefined || bodyEnd >= total - 1));
    res.writeHead(206, headers);
    info.cache = 'miss-range';
    const served = this.metrics.servedBytes.labels({ source: 'upstream' });
    const onBytes = (n: number) => {
      info.bytes += n;
      served.inc(n);
    };
    if (!reachesEnd) {
      // Ends before the last byte: streamed unverified (the client checks chunks against the TOC).
      await streamBody(body, res, onBytes);
      return;
    }
    const tail = new TailHold(onBytes);
    try {
      await pipeline(body, tail, res, { end: false });
      const last = tail.last;
      if (!last || !(await matchesVerifiedTail(download, start, tail))) {
        throw new MirrorError(
          'BLOB_UNKNOWN',
          `range of ${route.digest.value} does not match the verified blob`,
        );
      }
      onBytes(last.byteLength);
      await new Promise<void>((resolve) => res.end(last, resolve));
    } catch {
      // The download failed verification or broke, the range's bytes were not the blob's, or the
      // client left: abort, never end cleanly.
      if (!res.destroyed) res.destroy();
    }
  }
}
