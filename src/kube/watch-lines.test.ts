import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeConnectionError } from './errors.js';
import { LineSplitter, parseWatchLine } from './watch-lines.js';

function splitAll(chunks: Buffer[]): string[] {
  const s = new LineSplitter();
  const out: string[] = [];
  for (const c of chunks) out.push(...s.push(c));
  out.push(...s.end());
  return out;
}

describe('LineSplitter', () => {
  const body =
    '{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n' +
    '{"type":"MODIFIED","object":{"metadata":{"name":"é✓"}}}\n' +
    '{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}\n';
  const bytes = Buffer.from(body, 'utf8');

  it('gives the same lines however the body is cut, even inside a UTF-8 character', () => {
    const expected = body.split('\n').filter(Boolean);
    for (let cut = 1; cut < bytes.length; cut++) {
      assert.deepEqual(splitAll([bytes.subarray(0, cut), bytes.subarray(cut)]), expected, `cut at ${cut}`);
    }
    // one byte at a time
    assert.deepEqual(splitAll([...bytes].map((b) => Buffer.from([b]))), expected);
  });

  it('keeps a last line that has no newline, and drops trailing blank lines', () => {
    assert.deepEqual(splitAll([Buffer.from('a\nb')]), ['a', 'b']);
    assert.deepEqual(splitAll([Buffer.from('a\n\n')]), ['a', '']);
    assert.deepEqual(splitAll([Buffer.from('a\n  ')]), ['a']);
  });
});

describe('parseWatchLine', () => {
  it('parses events and skips blank lines', () => {
    assert.deepEqual(parseWatchLine('{"type":"DELETED","object":{"metadata":{"name":"x"}}}\r', 'w'), {
      type: 'DELETED',
      object: { metadata: { name: 'x' } },
    });
    assert.equal(parseWatchLine('   ', 'w'), undefined);
  });

  it('refuses garbage and unknown event types with KUBE_BAD_RESPONSE', () => {
    for (const line of [
      '{"type":"ADDED"',
      '{"type":"SYNC","object":{}}',
      '{"type":"ADDED","object":null}',
      '[]',
    ]) {
      assert.throws(
        () => parseWatchLine(line, 'watch pods'),
        (err: unknown) => err instanceof KubeConnectionError && err.code === 'KUBE_BAD_RESPONSE',
        line,
      );
    }
  });
});
