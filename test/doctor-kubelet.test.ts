// `hoist doctor kubelet-config` reports unknown and misspelt KubeletConfiguration fields with the
// field they were probably meant to be (issue 11 item 8), on fixtures that stand for real configs.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { checkKubeletConfig, parseKubeletConfig } from '../src/doctor/index.js';
import { runHoist } from './helpers/cri.js';

const FIXTURES = new URL('./fixtures/configs/', import.meta.url);
const check = async (name: string) =>
  checkKubeletConfig(parseKubeletConfig(await readFile(new URL(name, FIXTURES), 'utf8'), name));
const HEAD = 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n';

describe('doctor kubelet-config: unknown fields', () => {
  it('names each misspelt field and the field it probably meant', async () => {
    const unknown = (await check('kubelet-misspelt.yaml')).filter((f) => f.rule === 'unknown-field');
    const messages = unknown.map((f) => f.message);
    const expect = [
      /^unknown field serializeImagePull; did you mean serializeImagePulls\?/,
      /^unknown field imageGcHighThresholdPercent; did you mean imageGCHighThresholdPercent\?/,
      /^unknown field evictionHard\.nodefs\.availabe; did you mean evictionHard\.nodefs\.available\?/,
      /^unknown field imagefs\.available; did you mean evictionHard\.imagefs\.available\?/,
    ];
    assert.equal(unknown.length, expect.length, messages.join('\n'));
    for (const re of expect)
      assert.ok(
        messages.some((m) => re.test(m)),
        `${re}\n${messages.join('\n')}`,
      );
    // The kubelet ignores unknown fields but refuses an unsupported eviction signal.
    assert.deepEqual(
      unknown.map((f) => f.severity),
      unknown.map((f) => (f.message.startsWith('unknown field evictionHard.') ? 'error' : 'warning')),
    );
  });

  it('the misspelt serializeImagePull leaves serial pulls in force, and says so', async () => {
    const rules = (await check('kubelet-misspelt.yaml')).map((f) => f.rule);
    assert.ok(rules.includes('parallel-pulls-invalid'), rules.join(', '));
  });

  it('a config with only real fields (EKS, kubeadm) has no unknown field', async () => {
    const unknown = (await check('kubelet-eks-like.yaml')).filter((f) => f.rule === 'unknown-field');
    assert.deepEqual(unknown, []);
  });

  it('an unknown field far from every known one is reported without a guess', () => {
    const findings = checkKubeletConfig(parseKubeletConfig(`${HEAD}fooBarBaz: 1\n`, 'k.yaml'));
    const f = findings.find((x) => x.rule === 'unknown-field');
    assert.match(f?.message ?? '', /^unknown field fooBarBaz\. /);
  });

  it('a signal after evictionSoft is pointed back at evictionSoft', () => {
    const text = `${HEAD}evictionSoft:\n  memory.available: 500Mi\nnodefs.available: 15%\n`;
    const f = checkKubeletConfig(parseKubeletConfig(text, 'k.yaml')).find((x) => x.rule === 'unknown-field');
    assert.match(f?.message ?? '', /did you mean evictionSoft\.nodefs\.available\?/);
  });

  it('the CLI reports it in JSON and --fail-on warning exits 1', async () => {
    // From the sources (tsx), so the test does not depend on a fresh build in dist/.
    const file = new URL('kubelet-misspelt.yaml', FIXTURES).pathname;
    const res = await runHoist(
      ['doctor', 'kubelet-config', file, '--output', 'json', '--fail-on', 'warning'],
      { fromSource: true },
    );
    assert.equal(res.code, 1, res.stderr);
    const json = JSON.parse(res.stdout) as { findings: Array<{ rule: string; message: string }> };
    assert.ok(json.findings.some((f) => f.message.includes('did you mean serializeImagePulls?')));
  });
});
