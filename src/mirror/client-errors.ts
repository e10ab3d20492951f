import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { MirrorError } from './errors.js';
import { API_VERSION_HEADER, sendError } from './http.js';

/**
 * Requests that never reach the router: Node's HTTP parser refused them (a malformed request
 * line, an unknown method, a header block past `maxHeaderSize`, a bogus Content-Length or
 * Transfer-Encoding, a request that took too long). Node answers those with a bare status line;
 * here they get the same OCI error body (distribution-spec "Error Codes") as every other refusal,
 * so that a client sees one error format from the mirror whatever was wrong.
 */

export interface ClientErrorAnswer {
  status: number;
  code: string;
  message: string;
}

/** What to answer for a parser error code (llhttp's `HPE_*`, or Node's own). Pure. */
export function clientErrorAnswer(errorCode: string | undefined): ClientErrorAnswer {
  switch (errorCode) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'HEADERS_TOO_LARGE',
        message: 'request headers are too large; send at most 16 KiB of headers',
      };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return {
        status: 413,
        code: 'REQUEST_TOO_LARGE',
        message: 'chunk extensions are too large; this is a read-only mirror, send no request body',
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        status: 408,
        code: 'REQUEST_TIMEOUT',
        message: 'the request was not received in time; send the whole request at once',
      };
    case 'HPE_INVALID_METHOD':
      return {
        status: 400,
        code: 'REQUEST_INVALID',
        message: 'unknown request method; this mirror answers GET and HEAD',
      };
    default:
      return {
        status: 400,
        code: 'REQUEST_INVALID',
        message: `malformed HTTP request (${(errorCode ?? 'unknown').slice(0, 40)}); send an HTTP/1.1 request with a valid request line and headers`,
      };
  }
}

/** How long a refused connection may take to read its answer before it is destroyed. */
const CLOSE_TIMEOUT_MS = 5_000;

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
};

/** The raw HTTP/1.1 response for an answer: written straight to the socket, then it is closed. */
export function clientErrorResponse(answer: ClientErrorAnswer): string {
  const body = JSON.stringify({ errors: [{ code: answer.code, message: answer.message, detail: null }] });
  const headers: Record<string, string | number> = {
    ...API_VERSION_HEADER,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  };
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `HTTP/1.1 ${answer.status} ${REASONS[answer.status] ?? 'Error'}\r\n${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** Socket state Node keeps for the response in progress on a connection. */
interface HttpSocket extends Socket {
  _httpMessage?: { headersSent?: boolean } | null;
}

/**
 * Answers Node's 'clientError' (and 'connect': a CONNECT request, which Node otherwise drops
 * silently; and 'checkExpectation', which Node answers with a bare 417) with an OCI error body and closes the connection, as Node's own
 * default handler does (lib/_http_server.js socketOnError) but with a body. Nothing is written
 * when the socket is gone or a response on it has already started: bytes in the middle of a
 * response would corrupt what the client is reading, so then the socket is only destroyed.
 */
export function attachClientErrorHandler(
  server: Server,
  onRefused: (answer: ClientErrorAnswer, cause: string) => void = () => {},
): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const s = socket as HttpSocket;
    if (err.code === 'ECONNRESET' || !s.writable || s._httpMessage?.headersSent === true) {
      s.destroy();
      return;
    }
    const answer = clientErrorAnswer(err.code);
    onRefused(answer, err.code ?? 'unknown');
    refuse(s, answer);
  });
  // An Expect other than 100-continue: Node answers a bare 417 unless someone listens.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    res.shouldKeepAlive = false;
    sendError(
      req,
      res,
      new MirrorError('UNSUPPORTED', 'the only expectation this mirror meets is "Expect: 100-continue"', {
        status: 417,
      }),
    );
  });
  // CONNECT asks for a tunnel; with no 'connect' listener Node drops the connection without a word.
  server.on('connect', (_req: unknown, socket: Socket) => {
    const answer = {
      status: 405,
      code: 'UNSUPPORTED',
      message: 'CONNECT is not allowed: this is a registry mirror, not a proxy',
    };
    onRefused(answer, 'CONNECT');
    refuse(socket, answer);
  });
}

function refuse(socket: Socket, answer: ClientErrorAnswer): void {
  socket.on('error', () => {});
  socket.end(clientErrorResponse(answer));
  // end() flushes the answer; a peer that never reads it must not keep the socket open.
  socket.setTimeout(CLOSE_TIMEOUT_MS, () => socket.destroy());
}
