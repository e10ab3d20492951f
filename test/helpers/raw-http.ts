// A raw-TCP HTTP/1.1 client for hostile requests: sends any bytes at all (fetch refuses most of
// them) and reads back whatever the server answers, noticing hangs and silent closes.
import { connect } from 'node:net';

export interface RawAnswer {
  /** Parsed responses, in order. */
  responses: Array<{ status: number; headers: Record<string, string>; body: Buffer }>;
  /** True when no answer (or not all expected answers) came and the socket stayed open. */
  hung: boolean;
  /** Bytes received that did not parse as a response. */
  garbage: string;
}

/**
 * Sends `raw` on a fresh connection and reads responses until `expected` have arrived, the server
 * closes, or `timeoutMs` passes (a hang). Responses are parsed by Content-Length (the mirror always
 * sends one on errors), or read to the close when there is none.
 */
export function sendRaw(
  port: number,
  raw: Buffer,
  opts: { expected?: number; head?: boolean; timeoutMs?: number } = {},
): Promise<RawAnswer> {
  const expected = opts.expected ?? 1;
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buf: Buffer = Buffer.alloc(0);
    const responses: RawAnswer['responses'] = [];
    let done = false;
    const finish = (hung: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ responses, hung, garbage: buf.toString('latin1').slice(0, 200) });
    };
    const timer = setTimeout(() => finish(true), opts.timeoutMs ?? 5_000);
    const parse = (atEnd: boolean) => {
      for (;;) {
        const headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
        if (!m) return;
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
        }
        const status = Number(m[1]);
        if (status >= 100 && status < 200) {
          buf = buf.subarray(headEnd + 4); // 100 Continue: an interim answer, the real one follows
          continue;
        }
        const isHead = opts.head === true && responses.length === 0;
        let body: Buffer;
        let rest: Buffer;
        if (isHead) {
          body = Buffer.alloc(0);
          rest = buf.subarray(headEnd + 4);
        } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
          const decoded = dechunk(buf.subarray(headEnd + 4));
          if (decoded === undefined) return;
          [body, rest] = decoded;
        } else if (headers['content-length'] !== undefined) {
          const bodyEnd = headEnd + 4 + Number(headers['content-length']);
          if (buf.length < bodyEnd) return;
          body = buf.subarray(headEnd + 4, bodyEnd);
          rest = buf.subarray(bodyEnd);
        } else {
          if (!atEnd) return; // delimited by the close
          body = buf.subarray(headEnd + 4);
          rest = Buffer.alloc(0);
        }
        responses.push({ status, headers, body });
        buf = rest;
        if (responses.length >= expected) return finish(false);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      parse(false);
    });
    socket.on('close', () => {
      parse(true);
      finish(false);
    });
    // The server may close while we are still writing a large request: that is an answer, not an error.
    socket.on('error', () => {});
    socket.write(raw);
  });
}

/** A chunked body (RFC 9112 §7.1) and what follows it, or undefined while it is incomplete. */
function dechunk(data: Buffer): [Buffer, Buffer] | undefined {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', pos);
    if (lineEnd < 0) return undefined;
    const size = parseInt(data.subarray(pos, lineEnd).toString('latin1'), 16);
    if (Number.isNaN(size)) return [Buffer.concat(parts), Buffer.alloc(0)];
    if (size === 0) {
      const end = data.indexOf('\r\n\r\n', lineEnd);
      return end < 0 ? undefined : [Buffer.concat(parts), data.subarray(end + 4)];
    }
    if (data.length < lineEnd + 2 + size + 2) return undefined;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    pos = lineEnd + 2 + size + 2;
  }
}
