// The failure-reason mapping, on the words containerd answered with against a real docker-registry
// and a fault proxy (recorded from containerd 1.6.20 and 2.4.2), and on the queue's own codes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failureReason, statusMessage } from './failure-reason.js';

const R = '127.0.0.1:45243';
const cases: Array<[string, { code?: string; runtimeCode?: string; message: string }, string]> = [
  [
    'missing repository (1.6)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'NOT_FOUND',
      message: `PullImage: failed to pull and unpack image "${R}/team/missing:v1": failed to resolve reference "${R}/team/missing:v1": ${R}/team/missing:v1: not found`,
    },
    'NotFound',
  ],
  [
    'missing tag (1.6)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'NOT_FOUND',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:nope": failed to resolve reference "${R}/team/a:nope": ${R}/team/a:nope: not found`,
    },
    'NotFound',
  ],
  [
    'no credentials (1.6)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:v1": failed to resolve reference "${R}/team/a:v1": pulling from host ${R} failed with status code [manifests v1]: 401 Unauthorized`,
    },
    'Unauthorized',
  ],
  [
    'forbidden (1.6)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:v1": failed to resolve reference "${R}/team/a:v1": pulling from host ${R} failed with status code [manifests v1]: 403 Forbidden`,
    },
    'Unauthorized',
  ],
  [
    'missing repository (2.x)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'NOT_FOUND',
      message: `PullImage: failed to pull and unpack image "${R}/team/missing:v1": failed to resolve image: ${R}/team/missing:v1: not found`,
    },
    'NotFound',
  ],
  [
    'no credentials (2.x)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:v1": failed to resolve image: pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials`,
    },
    'Unauthorized',
  ],
  [
    'wrong credentials (2.x)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:v1": failed to resolve image: unexpected status from HEAD request to http://${R}/v2/team/a/manifests/v1: 401 Unauthorized`,
    },
    'Unauthorized',
  ],
  [
    'forbidden (2.x)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:v1": failed to resolve image: unexpected status from HEAD request to http://${R}/v2/team/a/manifests/v1: 403 Forbidden\nunavailable: injected 403`,
    },
    'Unauthorized',
  ],
  [
    'rate limited on the manifest (2.x)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:v1": failed to resolve image: unexpected status from HEAD request to http://${R}/v2/team/a/manifests/v1: 429 Too Many Requests`,
    },
    'RateLimited',
  ],
  [
    'rate limited on a blob (2.x)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:v1": failed to copy: httpReadSeeker: failed open: unexpected status from GET request to http://${R}/v2/team/a/blobs/sha256:c7bdee2e9a509c86fdad73322cbe53ba2c6cbc730a3f5f7d2125bdd79a8eb674: 429 Too Many Requests\nunavailable: injected 429`,
    },
    'RateLimited',
  ],
  [
    'server error (2.x)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:v1": failed to resolve image: unexpected status from HEAD request to http://${R}/v2/team/a/manifests/v1: 500 Internal Server Error`,
    },
    'PullError',
  ],
  [
    'registry unreachable (2.x)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "127.0.0.1:1/team/a:v1": failed to resolve image: failed to do request: Head "https://127.0.0.1:1/v2/team/a/manifests/v1": dial tcp 127.0.0.1:1: connect: connection refused`,
    },
    'PullError',
  ],
  [
    'rate limited on the manifest (1.6)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:v1": failed to resolve reference "${R}/team/a:v1": pulling from host ${R} failed with status code [manifests v1]: 429 Too Many Requests`,
    },
    'RateLimited',
  ],
  [
    'rate limited on a blob (1.6)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:v1": failed to copy: httpReadSeeker: failed open: unexpected status code http://${R}/v2/team/a/blobs/sha256:c7bdee2e9a509c86fdad73322cbe53ba2c6cbc730a3f5f7d2125bdd79a8eb674: 429 Too Many Requests - Server message: unavailable: injected 429`,
    },
    'RateLimited',
  ],
  [
    'server error on a blob (1.6)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "${R}/team/a:v1": failed to copy: httpReadSeeker: failed open: unexpected status code http://${R}/v2/team/a/blobs/sha256:c7bdee2e9a509c86fdad73322cbe53ba2c6cbc730a3f5f7d2125bdd79a8eb674: 500 Internal Server Error - Server message: unavailable: injected 500`,
    },
    'PullError',
  ],
  [
    'registry unreachable (1.6)',
    {
      code: 'PULL_FAILED',
      runtimeCode: 'UNKNOWN',
      message: `PullImage: failed to pull and unpack image "127.0.0.1:1/team/a:v1": failed to resolve reference "127.0.0.1:1/team/a:v1": failed to do request: Head "http://127.0.0.1:1/v2/team/a/manifests/v1": dial tcp 127.0.0.1:1: connect: connection refused`,
    },
    'PullError',
  ],
  [
    'cancelled by the agent',
    { code: 'PULL_FAILED', runtimeCode: 'CANCELLED', message: 'PullImage: Cancelled on client' },
    'PullError',
  ],
  [
    'no progress',
    { code: 'PULL_TIMEOUT', message: 'no download progress for 300 s: pull cancelled' },
    'Timeout',
  ],
  [
    'disk high-water mark',
    {
      code: 'DISK_HIGH_WATER',
      message:
        'image filesystem /var/lib/containerd holds 9 bytes of images, at or over the high-water mark of 1 bytes',
    },
    'DiskMark',
  ],
  ['disk unknown', { code: 'DISK_UNKNOWN', message: 'cannot check the 85% mark: ...' }, 'DiskMark'],
  [
    'pull secret missing',
    { code: 'PULL_FAILED', runtimeCode: 'PULL_SECRET', message: 'pull secret hoist-system/x not found' },
    'Unauthorized',
  ],
];

describe('failure reasons', () => {
  for (const [name, facts, want] of cases) {
    it(name, () => assert.equal(failureReason(facts), want));
  }

  it('a message is one line, without URL credentials, clipped', () => {
    assert.equal(statusMessage('a\n  b\r\nc'), 'a b c');
    assert.equal(
      statusMessage('Head "https://u:p4ss@r.example/v2/": 401'),
      'Head "https://r.example/v2/": 401',
    );
    assert.equal(statusMessage('x'.repeat(5000)).length, 1024);
  });
});
