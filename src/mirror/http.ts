import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CHALLENGE } from './access.js';
import { errorBody, toMirrorError, type MirrorError } from './errors.js';

/** Response helpers shared by the handlers: errors, JSON, and streaming with the right failure mode. */

export const API_VERSION_HEADER = { 'docker-distribution-api-version': 'registry/2.0' } as const;

/**
 * Sends an error as an OCI error body. Before headers are sent, that is a proper response; after,
 * the only honest signal left is to destroy the connection (a clean end would look like success).
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown): MirrorError {
  const e = toMirrorError(err);
  if (res.headersSent) {
    res.destroy(e);
    return e;
  }
  const body = errorBody(e);
  const headers: Record<string, string | number> = {
    ...API_VERSION_HEADER,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  };
  if (e.retryAfterSeconds !== undefined) headers['retry-after'] = e.retryAfterSeconds;
  // A 401 carries a challenge, so that clients with credentials for the mirror send them (RFC 9110 §11.6.1).
  if (e.status === 401) headers['www-authenticate'] = CHALLENGE;
  res.writeHead(e.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  return e;
}

export function sendJson(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  value: unknown,
  extra: Record<string, string> = {},
): void {
  const body = typeof value === 'string' || Buffer.isBuffer(value) ? value : JSON.stringify(value);
  res.writeHead(status, {
    ...API_VERSION_HEADER,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...extra,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Streams `source` to the client. If the source fails, the client's connection is destroyed (the
 * body must never end cleanly short); if the client goes away, the source is destroyed.
 * Resolves with whether the whole body was delivered.
 */
export async function streamBody(
  source: Readable,
  res: ServerResponse,
  onBytes: (n: number) => void,
): Promise<boolean> {
  source.on('data', (chunk: Buffer) => onBytes(chunk.byteLength));
  try {
    await pipeline(source, res);
    return true;
  } catch {
    if (!res.destroyed) res.destroy();
    return false;
  }
}

/** Passes on bytes `skip .. skip+length-1` of a stream (for an upstream that ignored Range). */
export function sliceStream(skip: number, length: number | undefined): Transform {
  let seen = 0;
  let done = false;
  const end = length === undefined ? Infinity : skip + length;
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      if (done) return callback();
      const from = Math.max(0, skip - seen);
      const to = Math.min(chunk.byteLength, end - seen);
      seen += chunk.byteLength;
      if (to > from) this.push(chunk.subarray(from, to));
      if (seen >= end) {
        done = true;
        this.push(null);
      }
      callback();
    },
  });
}
