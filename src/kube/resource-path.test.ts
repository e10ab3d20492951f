import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resourcePath, withQuery } from './resource-path.js';

describe('resourcePath', () => {
  it('builds core and group paths, namespaced and cluster-scoped', () => {
    assert.equal(
      resourcePath({
        group: '',
        version: 'v1',
        plural: 'pods',
        namespace: 'x',
        name: 'y',
        subresource: 'status',
      }),
      '/api/v1/namespaces/x/pods/y/status',
    );
    assert.equal(resourcePath({ group: '', version: 'v1', plural: 'pods' }), '/api/v1/pods');
    assert.equal(resourcePath({ group: '', version: 'v1', plural: 'nodes', name: 'n1' }), '/api/v1/nodes/n1');
    assert.equal(
      resourcePath({ group: 'prepull.hoist.dev', version: 'v1alpha1', plural: 'prepulls', namespace: 'ml' }),
      '/apis/prepull.hoist.dev/v1alpha1/namespaces/ml/prepulls',
    );
    assert.equal(
      resourcePath({
        group: 'coordination.k8s.io',
        version: 'v1',
        plural: 'leases',
        namespace: 'a',
        name: 'b',
      }),
      '/apis/coordination.k8s.io/v1/namespaces/a/leases/b',
    );
  });

  it('encodes segments so a name cannot change the path', () => {
    assert.equal(
      resourcePath({ group: '', version: 'v1', plural: 'configmaps', namespace: 'a', name: '../x?y' }),
      '/api/v1/namespaces/a/configmaps/..%2Fx%3Fy',
    );
  });

  it('refuses a subresource without a name and empty segments', () => {
    assert.throws(
      () => resourcePath({ group: '', version: 'v1', plural: 'pods', subresource: 'status' }),
      TypeError,
    );
    assert.throws(() => resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: '' }), TypeError);
    assert.throws(() => resourcePath({ group: '', version: '', plural: 'pods' }), TypeError);
  });
});

describe('withQuery', () => {
  it('skips undefined values and encodes the rest', () => {
    assert.equal(
      withQuery('/api/v1/pods', {
        labelSelector: 'app=a,tier in (x)',
        limit: 500,
        watch: true,
        continue: undefined,
      }),
      '/api/v1/pods?labelSelector=app%3Da%2Ctier+in+%28x%29&limit=500&watch=true',
    );
    assert.equal(withQuery('/p', {}), '/p');
    assert.equal(withQuery('/p?a=1', { b: 2 }), '/p?a=1&b=2');
  });
});
