import { StringDecoder } from 'node:string_decoder';
import { KubeConnectionError } from './errors.js';
import type { WatchEvent, WatchEventType } from './types.js';

/**
 * Splits a watch response body into lines. The API server streams one JSON event per line
 * (newline-delimited, `application/json;stream=watch`); TCP delivers chunks that end anywhere,
 * including inside a line or inside a multi-byte UTF-8 character, so both are carried over.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  /** The complete lines in `chunk` (with what came before it), without their newlines. */
  push(chunk: Buffer | string): string[] {
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    return lines;
  }

  /** What is left at the end of the body: a last line without a newline, if any. */
  end(): string[] {
    this.pending += this.decoder.end();
    const rest = this.pending;
    this.pending = '';
    return rest.trim() === '' ? [] : [rest];
  }
}

const TYPES = new Set<WatchEventType>(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** One watch line as an event; undefined for a blank line; a KubeConnectionError for garbage. */
export function parseWatchLine<T>(line: string, what: string): WatchEvent<T> | undefined {
  const text = line.trim();
  if (text === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new KubeConnectionError(
      'KUBE_BAD_RESPONSE',
      `${what}: watch line is not JSON: ${text.slice(0, 100)}`,
      {
        cause: err,
      },
    );
  }
  const ev = parsed as { type?: unknown; object?: unknown };
  if (
    typeof ev !== 'object' ||
    ev === null ||
    !TYPES.has(ev.type as WatchEventType) ||
    typeof ev.object !== 'object' ||
    ev.object === null
  ) {
    throw new KubeConnectionError('KUBE_BAD_RESPONSE', `${what}: not a watch event: ${text.slice(0, 100)}`);
  }
  return { type: ev.type as WatchEventType, object: ev.object as T };
}
