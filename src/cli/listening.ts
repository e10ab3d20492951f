import type { AddressInfo } from 'node:net';
import { UsageError } from './usage-error.js';

/**
 * The long-running commands (mirror, agent, controller) start the same way: a listen that fails
 * because the address is taken or not ours is bad usage (exit 2), and the one stdout line
 * `listening on http://HOST:PORT` says when requests are accepted.
 */

/** `err` as a UsageError when the address cannot be listened on, else `err` itself. */
export function listenFailure(err: unknown, listen: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    return new UsageError(`cannot listen on ${listen}: ${code}; choose another --listen`, { cause: err });
  }
  return err;
}

export function printListening(address: AddressInfo): void {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  process.stdout.write(`listening on http://${host}:${address.port}\n`);
}
