// The PrePull controller's world on the real kube-apiserver, as the controller and dashboard
// tests set it up: the CRDs applied, the controller's (and the agent's) service account bound to
// exactly src/prepull/rbac.ts, the team namespace, Ready Nodes; the settings every in-process test
// controller shares; and a poll for state that only the API server holds.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AGENT_CLUSTER_RULES,
  AGENT_NAMESPACE_RULES,
  CONTROLLER_CLUSTER_RULES,
  CONTROLLER_NAMESPACE_RULES,
  type ControllerOptions,
  type NodePull,
} from '../../src/prepull/index.js';
import type { KubeApiServer } from './kube.js';

const CRDS = fileURLToPath(new URL('../../deploy/crds/', import.meta.url));
/** The controller's namespace: its Lease and the mirrored pull secrets. */
export const SYSTEM = 'hoist-system';
/** Where the tests create PrePulls. */
export const TEAM = 'team';
export const NODEPULLS = '/apis/prepull.hoist.dev/v1alpha1/nodepulls';

/** Asserts a 2xx answer, naming `what` and the answer otherwise; returns the answer. */
export async function ok<R extends { status: number; body: string }>(
  res: Promise<R>,
  what: string,
): Promise<R> {
  const r = await res;
  assert.ok(r.status >= 200 && r.status < 300, `${what}: ${r.status} ${r.body}`);
  return r;
}

/**
 * Polls `probe` until it returns a value (not undefined); fails with the last thing it saw, and
 * `context()` (a log tail, say) when given.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  context?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (true) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `${what}: not after ${timeoutMs} ms; last: ${last instanceof Error ? last.message : JSON.stringify(last)}` +
          (context === undefined ? '' : `\n${context()}`),
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** CRDs, the controller's RBAC, the team namespace; returns the service account's kubeconfig. */
export async function prepareCluster(api: KubeApiServer): Promise<string> {
  const apply = await api.kubectl([
    'apply',
    '-f',
    join(CRDS, 'prepull.hoist.dev_prepulls.yaml'),
    '-f',
    join(CRDS, 'prepull.hoist.dev_nodepulls.yaml'),
  ]);
  assert.equal(apply.code, 0, apply.stderr);
  const wait = await api.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/prepulls.prepull.hoist.dev',
    'crd/nodepulls.prepull.hoist.dev',
  ]);
  assert.equal(wait.code, 0, wait.stderr);
  // The controller's identity and exactly the rules of src/prepull/rbac.ts.
  const kubeconfig = await bindServiceAccount(
    api,
    'hoist-controller',
    CONTROLLER_CLUSTER_RULES,
    CONTROLLER_NAMESPACE_RULES,
  );
  await ok(api.request('POST', '/api/v1/namespaces', { body: { metadata: { name: TEAM } } }), 'namespace');
  return kubeconfig;
}

/**
 * A service account of SYSTEM bound to exactly these rules (a ClusterRole and a Role in SYSTEM,
 * named after it); returns its kubeconfig.
 */
export async function bindServiceAccount(
  api: KubeApiServer,
  name: string,
  clusterRules: readonly object[],
  namespaceRules: readonly object[],
): Promise<string> {
  const kubeconfig = await api.serviceAccountKubeconfig(SYSTEM, name);
  const subjects = [{ kind: 'ServiceAccount', name, namespace: SYSTEM }];
  const rbac = '/apis/rbac.authorization.k8s.io/v1';
  const roleRef = (kind: string) => ({ apiGroup: 'rbac.authorization.k8s.io', kind, name });
  const metadata = { name };
  await ok(
    api.request('POST', `${rbac}/clusterroles`, { body: { metadata, rules: clusterRules } }),
    `ClusterRole ${name}`,
  );
  await ok(
    api.request('POST', `${rbac}/clusterrolebindings`, {
      body: { metadata, roleRef: roleRef('ClusterRole'), subjects },
    }),
    `ClusterRoleBinding ${name}`,
  );
  await ok(
    api.request('POST', `${rbac}/namespaces/${SYSTEM}/roles`, { body: { metadata, rules: namespaceRules } }),
    `Role ${name}`,
  );
  await ok(
    api.request('POST', `${rbac}/namespaces/${SYSTEM}/rolebindings`, {
      body: { metadata, roleRef: roleRef('Role'), subjects },
    }),
    `RoleBinding ${name}`,
  );
  return kubeconfig;
}

/** The node agent's service account under exactly src/prepull/rbac.ts's agent rules (once per API server). */
const agentConfigs = new WeakMap<KubeApiServer, Promise<string>>();
export function agentKubeconfig(api: KubeApiServer): Promise<string> {
  let config = agentConfigs.get(api);
  if (config === undefined) {
    config = bindServiceAccount(api, 'hoist-agent', AGENT_CLUSTER_RULES, AGENT_NAMESPACE_RULES);
    agentConfigs.set(api, config);
  }
  return config;
}

/**
 * A Node as a Ready kubelet leaves it: the API server taints a new Node not-ready:NoSchedule
 * (TaintNodesByCondition) and no node controller runs here to clear it, so set the taints.
 */
export async function makeNode(
  api: KubeApiServer,
  name: string,
  labels: Record<string, string>,
  taints: unknown[] = [],
): Promise<void> {
  await ok(
    api.request('POST', '/api/v1/nodes', {
      body: { apiVersion: 'v1', kind: 'Node', metadata: { name, labels } },
    }),
    `node ${name}`,
  );
  const r = await api.kubectl([
    'patch',
    'node',
    name,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { taints } }),
  ]);
  assert.equal(r.code, 0, r.stderr);
}

/** Every NodePull, by name. */
export async function nodePulls(api: KubeApiServer): Promise<NodePull[]> {
  const r = await api.request('GET', NODEPULLS);
  assert.equal(r.status, 200, r.body);
  return ((r.json as { items: NodePull[] }).items ?? []).sort((a, b) =>
    a.metadata.name.localeCompare(b.metadata.name),
  );
}

/**
 * What every in-process test controller shares: the namespace, the Lease, and lease timings short
 * enough that a standby takes over within seconds when the leader stops.
 */
export function testControllerOptions(
  identity: string,
): Pick<ControllerOptions, 'namespace' | 'leaseName' | 'identity' | 'resyncSeconds' | 'lease'> {
  return {
    namespace: SYSTEM,
    leaseName: 'hoist-controller',
    identity,
    resyncSeconds: 20,
    lease: { leaseDurationSeconds: 4, renewDeadlineSeconds: 3, retryPeriodSeconds: 1 },
  };
}
