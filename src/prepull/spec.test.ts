// The zod reading of a PrePull spec: the CRD's rules again (same patterns), defaults, and
// images normalised as containerd names them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseImageReference } from '../oci/index.js';
import { CRON_PATTERN, IMAGE_REFERENCE_PATTERN } from './patterns.js';
import { parsePrePullSpec } from './spec.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

function error(spec: unknown): string {
  const r = parsePrePullSpec(spec);
  assert.equal(r.ok, false, `expected ${JSON.stringify(spec)} to be refused`);
  return r.ok ? '' : r.error;
}

describe('parsePrePullSpec', () => {
  it('applies the defaults and normalises images, dropping duplicates', () => {
    const r = parsePrePullSpec({
      images: ['nginx', 'docker.io/library/nginx:latest', `ghcr.io/org/m@${DIGEST}`],
    });
    assert.ok(r.ok);
    assert.deepEqual(r.spec, {
      images: ['docker.io/library/nginx:latest', `ghcr.io/org/m@${DIGEST}`],
      imagePullSecrets: [],
      nodeSelector: {},
      tolerations: [],
      suspend: false,
      maxConcurrentNodes: { kind: 'count', value: 1 },
      maxConcurrentPullsPerNode: 2,
      retry: { limit: 5, backoffSeconds: 10 },
      progressTimeoutSeconds: 300,
      pin: false,
    });
  });

  it('reads maxConcurrentNodes as a count or a percentage', () => {
    const pct = parsePrePullSpec({ images: ['a'], maxConcurrentNodes: '10%' });
    assert.ok(pct.ok);
    assert.deepEqual(pct.spec.maxConcurrentNodes, { kind: 'percent', value: 10 });
    for (const bad of [0, -1, '0%', '101%', '5', '1.5%', 1.5]) {
      assert.match(error({ images: ['a'], maxConcurrentNodes: bad }), /^spec\.maxConcurrentNodes/);
    }
  });

  it('refuses what the CRD refuses, naming the field', () => {
    assert.match(error({ images: [] }), /^spec\.images: /);
    assert.match(error({ images: ['a', 'UPPER/case'] }), /^spec\.images\[1\]: /);
    assert.match(error({ images: ['a'], schedule: '* * *' }), /^spec\.schedule: /);
    assert.match(error({ images: ['a'], schedule: '61 * * * *' }), /^spec\.schedule: /);
    assert.match(error({ images: ['a'], schedule: '@daily' }), /^spec\.schedule: /);
    assert.match(
      error({ images: ['a'], timeZone: 'UTC' }),
      /^spec\.timeZone: timeZone is set only with schedule/,
    );
    assert.match(
      error({ images: ['a'], schedule: '0 3 * * *', timeZone: 'Mars/Olympus' }),
      /^spec\.timeZone: /,
    );
    assert.match(
      error({ images: ['a'], maxConcurrentPullsPerNode: 17 }),
      /^spec\.maxConcurrentPullsPerNode: /,
    );
    assert.match(error({ images: ['a'], retry: { limit: -1 } }), /^spec\.retry\.limit: /);
    assert.match(
      error({ images: ['a'], tolerations: [{ key: 'k', operator: 'Exists', value: 'v' }] }),
      /^spec\.tolerations\[0\]\.value: /,
    );
    assert.match(
      error({ images: ['a'], tolerations: [{ operator: 'Equal', value: 'v' }] }),
      /^spec\.tolerations\[0\]\.operator: /,
    );
  });

  it('accepts a full spec', () => {
    const r = parsePrePullSpec({
      images: ['nvcr.io/nvidia/pytorch:24.05-py3'],
      imagePullSecrets: [{ name: 'regcred' }],
      nodeSelector: { 'nvidia.com/gpu.present': 'true' },
      tolerations: [
        { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
        { operator: 'Exists' },
      ],
      schedule: '0 3 * * MON-FRI',
      timeZone: 'Europe/Paris',
      maxConcurrentNodes: '10%',
      retry: { limit: 0 },
    });
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.deepEqual(r.spec.retry, { limit: 0, backoffSeconds: 10 });
    assert.deepEqual(r.spec.imagePullSecrets, ['regcred']);
  });
});

describe('patterns shared with the CRD', () => {
  it('the image pattern agrees with parseImageReference', () => {
    const re = new RegExp(IMAGE_REFERENCE_PATTERN);
    const cases = [
      'nginx',
      'nginx:1.27',
      'library/nginx',
      'ghcr.io/org/app:v2',
      '127.0.0.1:5000/test/app:v1',
      'localhost/app',
      'localhost:5000/a/b/c',
      `registry.example/app@${DIGEST}`,
      `registry.example/app:v1@${DIGEST}`,
      '[::1]:5000/app',
      'a__b/c-d.e',
      'UPPER/case',
      'app:',
      'app:-bad',
      'app@sha256:short',
      'ghcr.io/org/App',
      '/leading',
      'trailing/',
      'has space',
      '',
    ];
    for (const c of cases) {
      let parses = true;
      try {
        parseImageReference(c);
      } catch {
        parses = false;
      }
      assert.equal(re.test(c), parses, c);
    }
  });

  it('the cron pattern takes standard five-field schedules only', () => {
    const re = new RegExp(CRON_PATTERN);
    for (const ok of [
      '0 3 * * *',
      '*/15 * * * *',
      '0 0-6/2 1,15 JAN-MAR mon-fri',
      '59 23 31 12 7',
      '5 4 * * sun',
    ]) {
      assert.ok(re.test(ok), ok);
    }
    for (const bad of [
      '* * *',
      '0 0 * * * *',
      '60 * * * *',
      '0 24 * * *',
      '0 0 0 * *',
      '0 0 * 13 *',
      '0 0 * * 8',
      '@daily',
      '0 3 ? * *',
      '0 3 L * *',
      '*/0 * * * *',
    ]) {
      assert.ok(!re.test(bad), bad);
    }
  });
});
