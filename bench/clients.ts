// The measuring clients: curl processes, so that the client's own CPU and memory are outside the
// process being measured and are the same for both mirrors.
import { performance } from 'node:perf_hooks';
import { run } from '../test/helpers/process.js';

export interface ClientResult {
  httpCode: number;
  bytes: number;
  /** curl's own time_total. */
  seconds: number;
  /** Hex sha256 of the body as sha256sum computed it (checksum clients only). */
  sha256?: string;
  /** Why the client failed, when it did. */
  error?: string;
}

const CLIENT_TIMEOUT_MS = 900_000;
const WRITE_OUT = '%{http_code} %{size_download} %{time_total}';

function parseWriteOut(text: string): Omit<ClientResult, 'sha256'> {
  const m = /(\d{3}) (\d+) ([\d.]+)\s*$/.exec(text);
  if (m === null) return { httpCode: 0, bytes: 0, seconds: 0, error: `unparsable curl output: ${text}` };
  return { httpCode: Number(m[1]), bytes: Number(m[2]), seconds: Number(m[3]) };
}

/** GETs `url` into /dev/null. */
export async function download(url: string): Promise<ClientResult> {
  try {
    const { stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-w', WRITE_OUT, url], {
      timeoutMs: CLIENT_TIMEOUT_MS,
    });
    return parseWriteOut(stdout);
  } catch (err) {
    return { httpCode: 0, bytes: 0, seconds: 0, error: String(err) };
  }
}

/** GETs `url` through sha256sum; curl's write-out goes to stderr so stdout carries only the digest. */
export async function downloadAndHash(url: string): Promise<ClientResult> {
  const script = `set -o pipefail; curl -sS -w '%{stderr}\\n${WRITE_OUT}' "$1" | sha256sum`;
  try {
    const { stdout, stderr } = await run('bash', ['-c', script, 'bash', url], {
      timeoutMs: CLIENT_TIMEOUT_MS,
    });
    return { ...parseWriteOut(stderr), sha256: stdout.split(' ')[0] ?? '' };
  } catch (err) {
    return { httpCode: 0, bytes: 0, seconds: 0, error: String(err) };
  }
}

export interface ClientsRun {
  results: ClientResult[];
  /** From starting the first client to the exit of the last. */
  wallSeconds: number;
}

/** Starts `count` clients at once and waits for all of them. */
export async function runClients(count: number, client: () => Promise<ClientResult>): Promise<ClientsRun> {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: count }, () => client()));
  return { results, wallSeconds: (performance.now() - t0) / 1000 };
}

/** Problems with the results: failed clients, wrong status, wrong size or wrong digest. */
export function checkResults(results: ClientResult[], sizeBytes: number, hex?: string): string[] {
  const problems: string[] = [];
  results.forEach((r, i) => {
    if (r.error !== undefined) problems.push(`client ${i}: ${r.error}`);
    else if (r.httpCode !== 200) problems.push(`client ${i}: HTTP ${r.httpCode}`);
    else if (r.bytes !== sizeBytes) problems.push(`client ${i}: ${r.bytes} bytes, expected ${sizeBytes}`);
    else if (hex !== undefined && r.sha256 !== hex) problems.push(`client ${i}: sha256 ${r.sha256}`);
  });
  return problems;
}
