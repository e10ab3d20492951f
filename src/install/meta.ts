// Names, labels, the image and the security contexts every component shares. The chart's
// _helpers.tpl defines the same (hoist.fullname, hoist.labels, hoist.image, ...).
import { HOIST_VERSION, type Toleration, type Values } from './values.js';

/** A Kubernetes object as plain data. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** The Helm release name `hoist render install` stands for. */
export const RELEASE_NAME = 'hoist';

export interface InstallContext {
  values: Values;
  namespace: string;
  /** Prefix of every object name: fullnameOverride, else "hoist". */
  fullname: string;
}

export function installContext(values: Values, namespace: string): InstallContext {
  return { values, namespace, fullname: values.fullnameOverride || RELEASE_NAME };
}

export type Component = 'mirror' | 'agent' | 'controller';

export function componentName(ctx: InstallContext, component: Component): string {
  return `${ctx.fullname}-${component}`;
}

export function selectorLabels(component: Component): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'hoist',
    'app.kubernetes.io/instance': RELEASE_NAME,
    'app.kubernetes.io/component': component,
  };
}

export function labels(component: Component): Record<string, string> {
  return {
    ...selectorLabels(component),
    'app.kubernetes.io/part-of': 'hoist',
    'app.kubernetes.io/version': HOIST_VERSION,
  };
}

/** Metadata of a namespaced object of a component. */
export function namespaced(ctx: InstallContext, component: Component, name = componentName(ctx, component)) {
  return { name, namespace: ctx.namespace, labels: labels(component) };
}

export function image(values: Values): string {
  const { repository, tag, digest } = values.image;
  return `${repository}:${tag || HOIST_VERSION}${digest ? `@${digest}` : ''}`;
}

/**
 * Container security: nothing but the process's own user. `root` is for the parts that write
 * root-owned host paths (hosts.toml, a hostPath store) or open containerd's root-only socket:
 * uid 0 owns those files, so no capability is needed, and every one is dropped.
 */
export function containerSecurity(user: 'nonroot' | 'root') {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
    ...(user === 'root'
      ? { runAsNonRoot: false, runAsUser: 0, runAsGroup: 0 }
      : { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 }),
  };
}

/** Pod spec fields that are present only when set (the chart uses `with` for each). */
export function podScheduling(opts: {
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  priorityClassName: string;
  affinity?: Record<string, unknown>;
  imagePullSecrets: Array<{ name: string }>;
}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (opts.imagePullSecrets.length > 0) out.imagePullSecrets = opts.imagePullSecrets;
  if (Object.keys(opts.nodeSelector).length > 0) out.nodeSelector = opts.nodeSelector;
  if (opts.affinity && Object.keys(opts.affinity).length > 0) out.affinity = opts.affinity;
  if (opts.tolerations.length > 0) out.tolerations = opts.tolerations;
  if (opts.priorityClassName) out.priorityClassName = opts.priorityClassName;
  return out;
}

export function podMetadata(component: Component, annotations: Record<string, string>) {
  return {
    labels: labels(component),
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}

/**
 * JSON as Go's encoding/json writes it with MarshalIndent (Helm's toPrettyJson): map keys sorted,
 * two-space indent, and <, >, &, U+2028 and U+2029 escaped. The chart and `hoist render install`
 * then produce the same bytes, so the config checksum annotation is the same too.
 */
export function goPrettyJson(value: unknown): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (typeof v === 'object' && v !== null) {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sorted(value), null, 2).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
