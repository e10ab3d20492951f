// The fault proxy as a process of its own, for a fault that must sit on another host (a network
// namespace, test/helpers/netns.ts), where the test process's own servers cannot listen:
//   node --import tsx test/helpers/fault-proxy-main.ts TARGET_URL HOST:PORT [--corrupt-blob-byte-at N]
// Prints `listening on http://HOST:PORT` once it accepts connections; stops on SIGTERM.
import { startFaultProxy, type FaultProxyOptions } from './fault-proxy.js';

const [target, listen, ...rest] = process.argv.slice(2);
const m = /^(.+):(\d+)$/.exec(listen ?? '');
if (!target || !m) {
  process.stderr.write('usage: fault-proxy-main.ts TARGET_URL HOST:PORT [--corrupt-blob-byte-at N]\n');
  process.exit(2);
}
const opts: FaultProxyOptions = { listen: { host: m[1] as string, port: Number(m[2]) } };
for (let i = 0; i < rest.length; i += 2) {
  if (rest[i] === '--corrupt-blob-byte-at') opts.corruptBlobByteAt = Number(rest[i + 1]);
  else {
    process.stderr.write(`fault-proxy-main.ts: unknown option ${rest[i]}\n`);
    process.exit(2);
  }
}
const proxy = await startFaultProxy(target, opts);
process.stdout.write(`listening on ${proxy.url}\n`);
process.once('SIGTERM', () => {
  void proxy.close().then(() => process.exit(0));
});
