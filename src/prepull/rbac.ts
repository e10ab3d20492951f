/**
 * The RBAC rules of the PrePull controller and of the node agent, as data: the Helm chart renders
 * them and test/controller.test.ts runs the controller under exactly these. Least privilege
 * (docs/prepull.md "Credentials"): Secrets are written only in the controller's own namespace;
 * elsewhere the controller may only `get` the pull secrets PrePulls name.
 */

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/**
 * Cluster-wide: PrePulls in every namespace, Nodes, NodePulls, reading pull secrets, and the
 * kubelet's events for pull telemetry.
 */
export const CONTROLLER_CLUSTER_RULES: readonly PolicyRule[] = [
  { apiGroups: ['prepull.hoist.dev'], resources: ['prepulls'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['prepull.hoist.dev'], resources: ['prepulls/status'], verbs: ['get', 'patch', 'update'] },
  {
    apiGroups: ['prepull.hoist.dev'],
    resources: ['nodepulls'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
  // Pull telemetry: the kubelet's pull events, read only (README "Pull telemetry").
  { apiGroups: [''], resources: ['events'], verbs: ['list', 'watch'] },
  // A PrePull's imagePullSecrets live in its namespace: read one by name, never list them.
  { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
];

/** In the controller's namespace: its leader Lease, the mirrored pull secrets, the mirrors' endpoints. */
export const CONTROLLER_NAMESPACE_RULES: readonly PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update', 'patch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'] },
  // The dashboard finds the node mirrors (to read their /metrics) as the mirror Service's endpoints.
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
];

/**
 * The agent: its own NodePull (read spec, write status), and a merge patch of its Node's
 * hoist.dev/mirrored-registries annotation for pull telemetry. RBAC cannot name "the agent's own
 * Node", so this is `patch` on nodes without `get`; README "Pull telemetry" says how to narrow it.
 */
export const AGENT_CLUSTER_RULES: readonly PolicyRule[] = [
  { apiGroups: ['prepull.hoist.dev'], resources: ['nodepulls'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['prepull.hoist.dev'], resources: ['nodepulls/status'], verbs: ['get', 'patch', 'update'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['patch'] },
];

/** The agent, in the controller's namespace: the mirrored pull secrets, by name. */
export const AGENT_NAMESPACE_RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
];

/** A ClusterRole and a namespaced Role for the controller, named `name`, as API objects. */
export function controllerRoles(name: string, namespace: string): { clusterRole: object; role: object } {
  return {
    clusterRole: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name },
      rules: CONTROLLER_CLUSTER_RULES.map((r) => ({ ...r })),
    },
    role: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name, namespace },
      rules: CONTROLLER_NAMESPACE_RULES.map((r) => ({ ...r })),
    },
  };
}
