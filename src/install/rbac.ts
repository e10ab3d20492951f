// RBAC objects for the controller and the agent. The rules are src/prepull/rbac.ts's, the ones
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

export function rbacObjects(ctx: InstallContext): KubeObject[] {
  return [
    ...(ctx.values.controller.enabled
      ? roles(ctx, 'controller', CONTROLLER_CLUSTER_RULES, CONTROLLER_NAMESPACE_RULES)
      : []),
    ...(ctx.values.agent.enabled ? roles(ctx, 'agent', AGENT_CLUSTER_RULES, AGENT_NAMESPACE_RULES) : []),
  ];
}
