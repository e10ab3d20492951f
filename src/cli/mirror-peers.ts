import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { UsageError } from './usage-error.js';

/** The part of `/peer/v1/status` printed here (src/peers PeerStatus). */
interface PeerStatusView {
  self: string;
  fanout: number;
  members: Array<{ url: string; state: string; reason?: string; untilMs?: number }>;
  relayTrees: number;
  digest?: string;
  ranking?: string[];
}

/** `hoist mirror peers`: one running mirror's view of the cluster-wide cache (docs/peers.md). */
export function registerMirrorPeers(mirror: Command): void {
  mirror
    .command('peers')
    .description("print a running mirror's view of its peers: members, their state, a blob's ranking")
    .requiredOption('--mirror <url>', 'the mirror to ask, e.g. http://127.0.0.1:5000')
    .requiredOption(
      '--token-file <file>',
      'the cluster token (the file the mirrors read with --peer-token-file)',
    )
    .option('--digest <digest>', 'also show which peers rank first for this blob (its fetcher first)')
    .option('--output <format>', 'text or json')
    .action(async (opts: { mirror: string; tokenFile: string; digest?: string; output?: string }) => {
      const output = opts.output ?? 'text';
      if (output !== 'text' && output !== 'json')
        throw new UsageError(`--output must be text or json, not "${output}"`);
      let url: URL;
      try {
        url = new URL('/peer/v1/status', opts.mirror);
      } catch {
        throw new UsageError(`--mirror "${opts.mirror}" is not a URL; give it as http://HOST:PORT`);
      }
      if (opts.digest) url.searchParams.set('digest', opts.digest);
      let token: string;
      try {
        token = (await readFile(opts.tokenFile, 'utf8')).trim();
      } catch (err) {
        throw new UsageError(`cannot read --token-file ${opts.tokenFile}: ${(err as Error).message}`);
      }
      const { sendRequest } = await import('../registry-client/http-transport.js');
      const res = await sendRequest(
        url.toString(),
        { method: 'GET', headers: { authorization: `Bearer ${token}` } },
        {
          name: url.host,
          headersTimeoutMs: 5_000,
        },
      );
      const text = await res.text();
      if (res.status === 404) {
        throw new UsageError(
          `${url.host} has no peer sharing configured (start it with --peer, --peer-dns or --peer-service)`,
        );
      }
      if (res.status !== 200) throw new Error(`${url.host} answered ${res.status}: ${text.slice(0, 300)}`);
      const view = JSON.parse(text) as PeerStatusView;
      if (output === 'json') {
        process.stdout.write(`${JSON.stringify(view)}\n`);
        return;
      }
      process.stdout.write(formatPeerStatus(view));
    });
}

export function formatPeerStatus(view: PeerStatusView): string {
  const lines = [`self: ${view.self}   fanout: ${view.fanout}   relay trees: ${view.relayTrees}`, ''];
  const rows = [['PEER', 'STATE', 'REASON'], ...view.members.map((m) => [m.url, m.state, m.reason ?? ''])];
  const width = [0, 1].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const r of rows)
    lines.push(
      `${(r[0] ?? '').padEnd(width[0] ?? 0)}  ${(r[1] ?? '').padEnd(width[1] ?? 0)}  ${r[2] ?? ''}`.trimEnd(),
    );
  if (view.members.length === 0) lines.push('(no peers known)');
  if (view.digest && view.ranking) {
    lines.push('', `ranking for ${view.digest} (fetcher first):`);
    view.ranking.forEach((u, i) => lines.push(`  ${i + 1}. ${u}${u === view.self ? '  (this mirror)' : ''}`));
  }
  return `${lines.join('\n')}\n`;
}
