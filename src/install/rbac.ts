// RBAC objects for the controller, the agent and the mirror's peer discovery. The rules are src/prepull/rbac.ts's, the ones
// the controller's own tests run it under; templates/rbac.yaml spells out the same (the chart
// cannot import them) and test/install.test.ts checks both render alike. No wildcards, no
// cluster-admin.
import {
  AGENT_CLUSTER_RULES,
  AGENT_NAMESPACE_RULES,
  CONTROLLER_CLUSTER_RULES,
  CONTROLLER_NAMESPACE_RULES,
  type PolicyRule,
} from '../prepull/index.js';
import { componentName, namespaced, type Component, type InstallContext, type KubeObject } from './meta.js';

export function leaseName(ctx: InstallContext): string {
  return ctx.values.controller.leaseName || componentName(ctx, 'controller');
}

const copy = (rules: readonly PolicyRule[]) => rules.map((r) => ({ ...r }));

function roles(
  ctx: InstallContext,
  component: Component,
  clusterRules: readonly PolicyRule[],
  namespaceRules: readonly PolicyRule[],
): KubeObject[] {
  const name = componentName(ctx, component);
  const { labels } = namespaced(ctx, component);
  const subjects = [{ kind: 'ServiceAccount', name, namespace: ctx.namespace }];
  const rbac = 'rbac.authorization.k8s.io';
  return [
    { apiVersion: `${rbac}/v1`, kind: 'ClusterRole', metadata: { name, labels }, rules: copy(clusterRules) },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: { name, labels },
      roleRef: { apiGroup: rbac, kind: 'ClusterRole', name },
      subjects,
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'Role',
      metadata: namespaced(ctx, component),
      rules: copy(namespaceRules),
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'RoleBinding',
      metadata: namespaced(ctx, component),
      roleRef: { apiGroup: rbac, kind: 'Role', name },
      subjects,
    },
  ];
}

/**
 * The mirror's peer discovery (docs/peers.md, Membership): it watches the EndpointSlices of its
 * -peers Service in Hoist's namespace. RBAC cannot narrow list/watch to one Service's slices
 * (their names are generated), so the Role is namespaced and read-only on that one resource.
 */
export const MIRROR_PEER_RULES: readonly PolicyRule[] = [
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
];

function mirrorPeerRoles(ctx: InstallContext): KubeObject[] {
  const { mirror } = ctx.values;
  if (!mirror.enabled || !mirror.peers.enabled) return [];
  const name = componentName(ctx, 'mirror');
  const rbac = 'rbac.authorization.k8s.io';
  return [
    {
      apiVersion: `${rbac}/v1`,
      kind: 'Role',
      metadata: namespaced(ctx, 'mirror'),
      rules: copy(MIRROR_PEER_RULES),
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'RoleBinding',
      metadata: namespaced(ctx, 'mirror'),
      roleRef: { apiGroup: rbac, kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ctx.namespace }],
    },
  ];
}

export function rbacObjects(ctx: InstallContext): KubeObject[] {
  return [
    ...(ctx.values.controller.enabled
      ? roles(ctx, 'controller', CONTROLLER_CLUSTER_RULES, CONTROLLER_NAMESPACE_RULES)
      : []),
    ...(ctx.values.agent.enabled ? roles(ctx, 'agent', AGENT_CLUSTER_RULES, AGENT_NAMESPACE_RULES) : []),
    ...mirrorPeerRoles(ctx),
  ];
}
