import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { guardStall } from './stall-guard.js';

/** Holds this process's only thread, as a loaded machine (or a long GC) can. */
function hold(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('bytes that arrived while this process could not run are seen before a stall verdict', async () => {
  // Another process writes without pause into a pipe: bytes are always waiting to be read.
  const writer = spawn(
    process.execPath,
    ['-e', "const b = Buffer.alloc(4096, 1); for (;;) require('node:fs').writeSync(1, b);"],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const body = writer.stdout;
  // Guarded once it is writing (a process takes longer to start than the stall time here).
  await new Promise((r) => body.once('readable', r));
  let stalls = 0;
  const out = guardStall(body, 'http://10.0.0.2:5000', {
    stallMs: 50,
    onBytes: () => {},
    onStall: () => stalls++,
    onSlow: () => {},
  });
  let received = 0;
  out.on('data', (c: Buffer) => (received += c.length));
  out.on('error', () => {});
  await new Promise((r) => out.once('data', r));
  // Blocked for six stall periods, from the end of an event loop turn (a setImmediate), so that
  // the next turn starts with the expired stall timer while the writer's bytes wait in the pipe.
  await new Promise<void>((r) =>
    setImmediate(() => {
      hold(300);
      r();
    }),
  );
  const before = received;
  await new Promise((r) => setTimeout(r, 20));
  writer.kill('SIGKILL');
  await new Promise((r) => writer.once('close', r));
  assert.ok(received > before, 'the waiting bytes were read');
  assert.equal(stalls, 0, 'no stall verdict on a peer that was sending all along');
});

test('a body that sends nothing is still left after the stall time', async () => {
  const silent = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let stalls = 0;
  const out = guardStall(silent.stdout, 'http://10.0.0.2:5000', {
    stallMs: 50,
    onBytes: () => {},
    onStall: () => stalls++,
    onSlow: () => {},
  });
  const err = await new Promise<Error>((r) => out.once('error', r));
  silent.kill('SIGKILL');
  assert.equal((err as { code?: string }).code, 'PEER_STALLED');
  assert.equal(stalls, 1);
});
