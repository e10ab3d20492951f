// The agent's probes as rendered: its API listens on loopback only, so the kubelet cannot reach it
// and the probes run `node -e` in the container. Run here as the kubelet would run them, against a
// listener on a port the WHATWG fetch standard blocks ("bad port", fetch spec §2.9): a probe that
// used fetch() would fail there whatever the agent answered, and the kubelet would restart a
// healthy agent forever.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { requireGoPeer } from './helpers/go-peers.js';
import { CHART, docs, find, NS, renderInstall, runHelm } from './helpers/install.js';
import { testTempDir } from './helpers/peers.js';

const TIMEOUT = { timeout: 180_000 };
/** Ports on the fetch standard's bad-port list, in the order tried (another test may hold one). */
const BAD_PORTS = [6566, 6665, 6666, 6667, 6668, 6669, 6697, 6000, 10080];

/** A listener on the first free bad port whose /readyz and /healthz answer `status()`. */
async function listenOnBadPort(t: TestContext, status: () => number): Promise<number> {
  for (const port of BAD_PORTS) {
    const server: Server = createServer((req, res) => {
      res.statusCode = req.url === '/readyz' || req.url === '/healthz' ? status() : 404;
      res.end();
    });
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (bound) {
      t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
      return port;
    }
  }
  assert.fail(`none of the bad ports ${BAD_PORTS.join(', ')} is free on 127.0.0.1`);
}

/** Runs an exec probe's command as the kubelet does: exit 0 is success. */
function runProbe(command: string[]): Promise<number> {
  const [cmd, ...args] = command;
  assert.equal(cmd, 'node', 'the image has no shell: the probe runs node');
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 30_000 }, (err) =>
      resolve(err === null ? 0 : typeof err.code === 'number' ? err.code : -1),
    );
  });
}

describe("install: the agent's loopback probes", () => {
  async function checkProbes(t: TestContext, render: (valuesFile: string) => Promise<string>) {
    let answer = 200;
    const port = await listenOnBadPort(t, () => answer);
    const values = join(await testTempDir(t, 'hoist-probes'), 'values.yaml');
    await writeFile(values, `agent: { listenPort: ${port} }\n`);
    const agent = find(docs(await render(values)), 'DaemonSet', 'hoist-agent').spec.template.spec;
    const container = agent.containers[0];
    assert.ok(container.args.join(' ').includes(`--listen 127.0.0.1:${port}`));
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      answer = 200;
      assert.equal(await runProbe(probe.exec.command), 0, `${probe.exec.command.join(' ')} on port ${port}`);
      answer = 503;
      assert.equal(await runProbe(probe.exec.command), 1, 'an agent that answers 503 fails the probe');
    }
  }

  it('hoist render install: the probes pass on a fetch-blocked listenPort', TIMEOUT, async (t) => {
    await checkProbes(t, (values) => renderInstall(['-f', values]));
  });

  it('helm template: the probes pass on a fetch-blocked listenPort', TIMEOUT, async (t) => {
    if (!requireGoPeer(t, 'helm')) return;
    const home = await testTempDir(t, 'hoist-probes-helm');
    await checkProbes(t, async (values) => {
      const res = await runHelm(home, ['template', 'hoist', CHART, '--namespace', NS, '-f', values]);
      assert.equal(res.code, 0, res.stderr);
      return res.stdout;
    });
  });
});
