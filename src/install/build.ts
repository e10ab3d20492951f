// All objects of an install, in the order Helm installs them (CRDs first, workloads after the
// RBAC and Services they use: a zone-mode agent reads the mirror Service's address from its
// environment, which the kubelet only fills in for Services that already exist).
import { agentObjects } from './agent.js';
import { controllerObjects } from './controller.js';
import { InstallError } from './errors.js';
import { grafanaObjects } from './grafana-dashboard.js';
import { installContext, type KubeObject } from './meta.js';
import { mirrorObjects } from './mirror.js';
import { rbacObjects } from './rbac.js';
import type { Values } from './values.js';

export const DEFAULT_NAMESPACE = 'hoist-system';

// Helm's InstallOrder (pkg/releaseutil/kind_sorter.go), the kinds used here.
const KIND_ORDER = [
  'Namespace',
  'CustomResourceDefinition',
  'ServiceAccount',
  'Secret',
  'ConfigMap',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'Service',
  'DaemonSet',
  'Deployment',
];

function rank(kind: string): number {
  const i = KIND_ORDER.indexOf(kind);
  return i < 0 ? KIND_ORDER.length : i;
}

export function sortForInstall(objects: KubeObject[]): KubeObject[] {
  return objects
    .map((o, i) => ({ o, i }))
    .sort((a, b) => rank(a.o.kind) - rank(b.o.kind) || a.i - b.i)
    .map(({ o }) => o);
}

export function checkNamespace(namespace: string): string {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw new InstallError(
      'INPUT_INVALID',
      `namespace "${namespace}" is not a DNS-1123 label (lowercase letters, digits and -, at most 63)`,
    );
  }
  return namespace;
}

export interface BuildInstallOptions {
  namespace?: string;
  /** CustomResourceDefinitions to put first (deploy/crds); none when skipped. */
  crds?: KubeObject[];
}

/** Pure: the objects `helm template --include-crds` renders for these values. */
export function buildInstall(values: Values, opts: BuildInstallOptions = {}): KubeObject[] {
  const ctx = installContext(values, checkNamespace(opts.namespace ?? DEFAULT_NAMESPACE));
  return sortForInstall([
    ...(opts.crds ?? []),
    ...mirrorObjects(ctx),
    ...rbacObjects(ctx),
    ...agentObjects(ctx),
    ...controllerObjects(ctx),
    ...grafanaObjects(ctx),
  ]);
}
