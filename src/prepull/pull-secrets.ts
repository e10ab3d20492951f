import { createHash } from 'node:crypto';
import { parseAuthFile, type RegistryCredentials } from '../node/index.js';
import { prePullKey, type PrePull } from './types.js';

/**
 * Mirroring a PrePull's pull secrets into the controller's namespace (docs/prepull.md
 * "Credentials"): one Secret per PrePull, `hoist-pull-<hash>`, type dockerconfigjson, holding the
 * union of the `auths` of the Secrets it names (the first to name a registry wins, in spec
 * order). Pure; the controller reads and writes. Contents never reach a log or a message: those
 * name the Secret and the key only.
 */

export const SECRET_TYPE = 'kubernetes.io/dockerconfigjson';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'hoist-controller';
export const ROLE_LABEL = 'prepull.hoist.dev/role';
export const ROLE_PULL_SECRET = 'pull-secret';
export const PREPULL_NAMESPACE_LABEL = 'prepull.hoist.dev/prepull-namespace';
export const PREPULL_NAME_LABEL = 'prepull.hoist.dev/prepull-name';
export const PREPULL_ANNOTATION = 'prepull.hoist.dev/prepull';
/** Selects every Secret the controller mirrored. */
export const MIRRORED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY},${ROLE_LABEL}=${ROLE_PULL_SECRET}`;

export interface KubeSecret {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
  };
  type?: string;
  /** base64 values, as the API serves them. */
  data?: Record<string, string>;
}

/** `hoist-pull-` and 10 hex digits of sha256("namespace/name"): stable, short, no PrePull name leaks length limits. */
export function mirroredSecretName(prePull: Pick<PrePull, 'metadata'>): string {
  const hash = createHash('sha256').update(prePullKey(prePull.metadata)).digest('hex');
  return `hoist-pull-${hash.slice(0, 10)}`;
}

export interface MergedPullSecrets {
  /** `{"auths": {...}}` for the mirrored Secret; undefined when no source was usable. */
  dockerConfigJson?: string;
  /** Credentials by registry host, for resolving tags. */
  credentials: Map<string, RegistryCredentials>;
  /** Why a named Secret was skipped (missing, wrong type, unreadable); no contents. */
  problems: string[];
}

function authsOf(secret: KubeSecret): Record<string, unknown> {
  const data = secret.data ?? {};
  const where = `Secret ${secret.metadata.namespace ?? ''}/${secret.metadata.name}`;
  let text: string;
  if (secret.type === SECRET_TYPE && data['.dockerconfigjson'] !== undefined) {
    text = Buffer.from(data['.dockerconfigjson'], 'base64').toString('utf8');
  } else if (secret.type === 'kubernetes.io/dockercfg' && data['.dockercfg'] !== undefined) {
    // The legacy format is the "auths" object alone.
    text = `{"auths":${Buffer.from(data['.dockercfg'], 'base64').toString('utf8')}}`;
  } else {
    throw new Error(
      `${where} is of type ${secret.type ?? '(none)'}, not ${SECRET_TYPE} with a .dockerconfigjson key`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`${where}: .dockerconfigjson is not JSON`);
  }
  const auths = (doc as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) {
    throw new Error(`${where}: .dockerconfigjson has no "auths" object`);
  }
  // Validates the entries (parseAuthFile's messages name keys, never values).
  parseAuthFile(JSON.stringify({ auths }), where);
  return auths as Record<string, unknown>;
}

/** Merges the named Secrets (undefined: not found), in the order the PrePull names them. */
export function mergePullSecrets(
  sources: Array<{ name: string; secret: KubeSecret | undefined }>,
  namespace: string,
): MergedPullSecrets {
  const auths: Record<string, unknown> = {};
  const problems: string[] = [];
  let usable = 0;
  for (const { name, secret } of sources) {
    if (secret === undefined) {
      problems.push(`Secret ${namespace}/${name} not found`);
      continue;
    }
    try {
      for (const [key, value] of Object.entries(authsOf(secret))) if (!(key in auths)) auths[key] = value;
      usable++;
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (usable === 0) return { credentials: new Map(), problems };
  const dockerConfigJson = JSON.stringify({ auths });
  return {
    dockerConfigJson,
    credentials: parseAuthFile(dockerConfigJson, 'merged pull secrets').registries,
    problems,
  };
}

/** The mirrored Secret for a PrePull, in the controller's namespace. */
export function mirroredSecret(prePull: PrePull, namespace: string, dockerConfigJson: string): KubeSecret {
  const ns = prePull.metadata.namespace ?? '';
  const labels: Record<string, string> = {
    [MANAGED_BY_LABEL]: MANAGED_BY,
    [ROLE_LABEL]: ROLE_PULL_SECRET,
    [PREPULL_NAMESPACE_LABEL]: ns,
  };
  // Label values stop at 63 characters; the annotation always names the PrePull.
  if (prePull.metadata.name.length <= 63) labels[PREPULL_NAME_LABEL] = prePull.metadata.name;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: mirroredSecretName(prePull),
      namespace,
      labels,
      annotations: { [PREPULL_ANNOTATION]: prePullKey(prePull.metadata) },
    },
    type: SECRET_TYPE,
    data: { '.dockerconfigjson': Buffer.from(dockerConfigJson).toString('base64') },
  };
}

/** Whether the stored Secret already says what `wanted` does (type, data, labels). */
export function sameSecret(wanted: KubeSecret, stored: KubeSecret | undefined): boolean {
  if (stored === undefined || stored.type !== wanted.type) return false;
  if (stored.data?.['.dockerconfigjson'] !== wanted.data?.['.dockerconfigjson']) return false;
  const labels = stored.metadata.labels ?? {};
  return Object.entries(wanted.metadata.labels ?? {}).every(([k, v]) => labels[k] === v);
}
