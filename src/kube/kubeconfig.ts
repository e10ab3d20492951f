import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { KubeConfigError } from './errors.js';

/**
 * Kubeconfig parsing, pure: text in, a plan out that still names the files (CA, client
 * certificate and key) to read. Follows clientcmd: with several files ($KUBECONFIG=a:b) the first
 * file that names a cluster, user or context wins for that name, and the first current-context wins;
 * relative paths are relative to the file that holds them.
 */

/** One kubeconfig file's path and text. */
export interface KubeConfigFile {
  path: string;
  text: string;
}

/** Inline PEM (from a *-data field) or a file to read it from. */
export type PemSource = { pem: string } | { file: string };

export interface KubeConfigPlan {
  context: string;
  server: string;
  ca?: PemSource;
  clientCert?: PemSource;
  clientKey?: PemSource;
  token?: string;
  tokenFile?: string;
  insecureSkipTlsVerify?: boolean;
  tlsServerName?: string;
  /** The context's namespace, else "default" as kubectl does. */
  namespace: string;
}

interface Named {
  fields: Record<string, unknown>;
  /** The file this entry came from, for messages and relative paths. */
  path: string;
}

const UNSUPPORTED_USER_FIELDS: Record<string, string> = {
  exec: 'an exec credential plugin',
  'auth-provider': 'an auth-provider plugin',
  username: 'basic authentication (removed from Kubernetes in 1.19)',
  password: 'basic authentication (removed from Kubernetes in 1.19)',
  as: 'impersonation',
  'as-uid': 'impersonation',
  'as-groups': 'impersonation',
  'as-user-extra': 'impersonation',
};

const WHAT_TO_DO =
  'give Hoist a kubeconfig whose user has a token, tokenFile or client certificate ' +
  "(for a ServiceAccount: 'kubectl create token NAME'), or run it in a pod with --in-cluster";

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseFile(file: KubeConfigFile): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(file.text);
  } catch (err) {
    throw new KubeConfigError(
      'KUBECONFIG_INVALID',
      `${file.path}: not valid YAML: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (doc === null || doc === undefined) return {};
  if (!isRecord(doc))
    throw new KubeConfigError('KUBECONFIG_INVALID', `${file.path}: not a kubeconfig (not a map)`);
  return doc;
}

/** Adds `doc[list]`'s named entries to `into`, keeping earlier files' entries (first wins). */
function collect(
  into: Map<string, Named>,
  doc: Record<string, unknown>,
  list: string,
  item: string,
  path: string,
) {
  const entries = doc[list];
  if (entries === undefined || entries === null) return;
  if (!Array.isArray(entries))
    throw new KubeConfigError('KUBECONFIG_INVALID', `${path}: ${list} is not a list`);
  entries.forEach((entry: unknown, i) => {
    if (!isRecord(entry) || typeof entry.name !== 'string' || entry.name === '') {
      throw new KubeConfigError('KUBECONFIG_INVALID', `${path}: ${list}[${i}] has no name`);
    }
    const fields = entry[item] ?? {};
    if (!isRecord(fields))
      throw new KubeConfigError('KUBECONFIG_INVALID', `${path}: ${list}[${i}].${item} is not a map`);
    if (!into.has(entry.name)) into.set(entry.name, { fields, path });
  });
}

function str(entry: Named, key: string, where: string): string | undefined {
  const v = entry.fields[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string')
    throw new KubeConfigError('KUBECONFIG_INVALID', `${entry.path}: ${where}.${key} is not a string`);
  return v;
}

function bool(entry: Named, key: string, where: string): boolean | undefined {
  const v = entry.fields[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean')
    throw new KubeConfigError('KUBECONFIG_INVALID', `${entry.path}: ${where}.${key} is not true/false`);
  return v;
}

function filePath(entry: Named, key: string, where: string): string | undefined {
  const p = str(entry, key, where);
  return p === undefined || isAbsolute(p) ? p : resolve(dirname(entry.path), p);
}

/** A PEM block from a `*-data` field (base64) or a path field; data wins, as in clientcmd. */
function pem(entry: Named, dataKey: string, fileKey: string, where: string): PemSource | undefined {
  const data = str(entry, dataKey, where);
  if (data !== undefined) {
    const text = Buffer.from(data, 'base64').toString('utf8');
    if (!text.includes('-----BEGIN ')) {
      throw new KubeConfigError(
        'KUBECONFIG_INVALID',
        `${entry.path}: ${where}.${dataKey} is not base64-encoded PEM`,
      );
    }
    return { pem: text };
  }
  const file = filePath(entry, fileKey, where);
  return file === undefined ? undefined : { file };
}

/** Resolves the context to use across one or more kubeconfig files (first file first). */
export function resolveKubeConfig(files: KubeConfigFile[], opts: { context?: string } = {}): KubeConfigPlan {
  const clusters = new Map<string, Named>();
  const users = new Map<string, Named>();
  const contexts = new Map<string, Named>();
  let current: string | undefined;
  for (const file of files) {
    const doc = parseFile(file);
    collect(clusters, doc, 'clusters', 'cluster', file.path);
    collect(users, doc, 'users', 'user', file.path);
    collect(contexts, doc, 'contexts', 'context', file.path);
    const cc = doc['current-context'];
    if (current === undefined && typeof cc === 'string' && cc !== '') current = cc;
  }
  const where = files.map((f) => f.path).join(':');
  const available = [...contexts.keys()].join(', ') || 'none';
  const contextName = opts.context || current;
  if (!contextName) {
    throw new KubeConfigError(
      'KUBECONFIG_CONTEXT_NOT_FOUND',
      `${where}: no current-context; pass --context NAME (contexts: ${available})`,
    );
  }
  const context = contexts.get(contextName);
  if (!context) {
    throw new KubeConfigError(
      'KUBECONFIG_CONTEXT_NOT_FOUND',
      `${where}: no context named '${contextName}' (contexts: ${available})`,
    );
  }
  const ctxWhere = `contexts[${contextName}]`;
  const clusterName = str(context, 'cluster', ctxWhere);
  const cluster = clusterName === undefined ? undefined : clusters.get(clusterName);
  if (!clusterName || !cluster) {
    throw new KubeConfigError(
      'KUBECONFIG_INVALID',
      `${context.path}: context '${contextName}' names cluster '${clusterName ?? ''}', which is not defined`,
    );
  }
  const clWhere = `clusters[${clusterName}]`;
  const server = str(cluster, 'server', clWhere);
  if (!server)
    throw new KubeConfigError(
      'KUBECONFIG_INVALID',
      `${cluster.path}: cluster '${clusterName}' has no server`,
    );
  let url: URL;
  try {
    url = new URL(server);
  } catch (err) {
    throw new KubeConfigError(
      'KUBECONFIG_INVALID',
      `${cluster.path}: cluster '${clusterName}' server '${server}' is not a URL`,
      {
        cause: err,
      },
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new KubeConfigError(
      'KUBECONFIG_INVALID',
      `${cluster.path}: cluster '${clusterName}' server must be https:// or http://`,
    );
  }
  if (str(cluster, 'proxy-url', clWhere) !== undefined) {
    throw new KubeConfigError(
      'KUBECONFIG_UNSUPPORTED',
      `${cluster.path}: cluster '${clusterName}' uses proxy-url, which Hoist does not support; reach the API server directly`,
    );
  }

  const plan: KubeConfigPlan = {
    context: contextName,
    server: server.replace(/\/+$/, ''),
    namespace: str(context, 'namespace', ctxWhere) ?? 'default',
  };
  const ca = pem(cluster, 'certificate-authority-data', 'certificate-authority', clWhere);
  if (ca) plan.ca = ca;
  const insecure = bool(cluster, 'insecure-skip-tls-verify', clWhere);
  if (insecure !== undefined) plan.insecureSkipTlsVerify = insecure;
  const serverName = str(cluster, 'tls-server-name', clWhere);
  if (serverName) plan.tlsServerName = serverName;

  const userName = str(context, 'user', ctxWhere);
  if (userName !== undefined) {
    const user = users.get(userName);
    if (!user) {
      throw new KubeConfigError(
        'KUBECONFIG_INVALID',
        `${context.path}: context '${contextName}' names user '${userName}', which is not defined`,
      );
    }
    const uWhere = `users[${userName}]`;
    for (const [key, what] of Object.entries(UNSUPPORTED_USER_FIELDS)) {
      const v = user.fields[key];
      if (v !== undefined && v !== null && v !== '') {
        throw new KubeConfigError(
          'KUBECONFIG_UNSUPPORTED',
          `${user.path}: user '${userName}' uses ${what} (${key}), which Hoist does not support; ${WHAT_TO_DO}`,
        );
      }
    }
    const token = str(user, 'token', uWhere);
    if (token) plan.token = token;
    const tokenFile = filePath(user, 'tokenFile', uWhere);
    if (tokenFile) plan.tokenFile = tokenFile;
    const cert = pem(user, 'client-certificate-data', 'client-certificate', uWhere);
    const key = pem(user, 'client-key-data', 'client-key', uWhere);
    if ((cert === undefined) !== (key === undefined)) {
      throw new KubeConfigError(
        'KUBECONFIG_INVALID',
        `${user.path}: user '${userName}' has a client ${cert ? 'certificate without a key' : 'key without a certificate'}`,
      );
    }
    if (cert && key) {
      plan.clientCert = cert;
      plan.clientKey = key;
    }
  }
  return plan;
}
