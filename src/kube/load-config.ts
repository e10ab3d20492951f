import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfigError } from './errors.js';
import { resolveKubeConfig, type KubeConfigFile, type PemSource } from './kubeconfig.js';
import type { KubeConfig } from './types.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface LoadKubeConfigOptions {
  /** Path of a kubeconfig file (must exist). */
  kubeconfig?: string;
  /** Context name; default: the file's current-context. */
  context?: string;
  /** Use the pod's service account. */
  inCluster?: boolean;
}

/** What the search reads from the process; tests pass their own. */
export interface KubeConfigEnvironment {
  env: Record<string, string | undefined>;
  homeDir: string;
  serviceAccountDir: string;
}

function defaultEnvironment(): KubeConfigEnvironment {
  return { env: process.env, homeDir: homedir(), serviceAccountDir: SERVICE_ACCOUNT_DIR };
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new KubeConfigError(
      'KUBECONFIG_FILE_UNREADABLE',
      `cannot read ${what} ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** The text of each existing file of `paths`, or undefined when none exists. */
async function readExisting(paths: string[]): Promise<KubeConfigFile[]> {
  const files: KubeConfigFile[] = [];
  for (const path of paths) {
    try {
      files.push({ path, text: await readFile(path, 'utf8') });
    } catch (err) {
      if (!isMissing(err)) {
        throw new KubeConfigError(
          'KUBECONFIG_FILE_UNREADABLE',
          `cannot read kubeconfig ${path}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    }
  }
  return files;
}

async function readPem(source: PemSource | undefined, what: string): Promise<string | undefined> {
  if (source === undefined) return undefined;
  return 'pem' in source ? source.pem : readText(source.file, what);
}

async function fromFiles(files: KubeConfigFile[], context: string | undefined): Promise<KubeConfig> {
  const plan = resolveKubeConfig(files, context === undefined ? {} : { context });
  const config: KubeConfig = { server: plan.server, namespace: plan.namespace };
  const ca = await readPem(plan.ca, 'certificate-authority');
  if (ca !== undefined) config.caPem = ca;
  const cert = await readPem(plan.clientCert, 'client-certificate');
  if (cert !== undefined) config.clientCertPem = cert;
  const key = await readPem(plan.clientKey, 'client-key');
  if (key !== undefined) config.clientKeyPem = key;
  if (plan.token !== undefined) config.token = plan.token;
  if (plan.tokenFile !== undefined) {
    await readText(plan.tokenFile, 'tokenFile'); // fail at start-up, not at the first request
    config.tokenFile = plan.tokenFile;
  }
  if (plan.insecureSkipTlsVerify !== undefined) config.insecureSkipTlsVerify = plan.insecureSkipTlsVerify;
  if (plan.tlsServerName !== undefined) config.tlsServerName = plan.tlsServerName;
  return config;
}

/**
 * The pod's service account (client-go rest.InClusterConfig): the API server from
 * KUBERNETES_SERVICE_HOST/PORT, the token file (re-read as the kubelet rotates it), ca.crt and
 * the pod's namespace.
 */
export async function inClusterConfig(
  environment: KubeConfigEnvironment = defaultEnvironment(),
): Promise<KubeConfig> {
  const host = environment.env.KUBERNETES_SERVICE_HOST;
  const port = environment.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeConfigError(
      'IN_CLUSTER_UNAVAILABLE',
      'not running in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset; pass --kubeconfig instead',
    );
  }
  const dir = environment.serviceAccountDir;
  const tokenFile = join(dir, 'token');
  try {
    await readFile(tokenFile, 'utf8');
  } catch (err) {
    throw new KubeConfigError(
      'IN_CLUSTER_UNAVAILABLE',
      `no service account token at ${tokenFile} (${(err as Error).message}); mount one (automountServiceAccountToken) or pass --kubeconfig`,
      { cause: err },
    );
  }
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const config: KubeConfig = { server: `https://${hostPart}:${port}`, tokenFile };
  // Like client-go, a missing ca.crt falls back to the system's roots rather than failing.
  const [ca] = await readExisting([join(dir, 'ca.crt')]);
  if (ca) config.caPem = ca.text;
  const [ns] = await readExisting([join(dir, 'namespace')]);
  config.namespace = ns?.text.trim() || 'default';
  return config;
}

/**
 * Where to reach the API server and with which credentials:
 * - `kubeconfig`: that file; `inCluster`: the pod's service account;
 * - neither: the files of $KUBECONFIG (colon-separated, missing ones skipped), else
 *   ~/.kube/config, else the service account when the environment says we run in a pod.
 */
export async function loadKubeConfig(
  opts: LoadKubeConfigOptions,
  environment: KubeConfigEnvironment = defaultEnvironment(),
): Promise<KubeConfig> {
  if (opts.inCluster && opts.kubeconfig) {
    throw new KubeConfigError('KUBECONFIG_INVALID', 'pass either --kubeconfig or --in-cluster, not both');
  }
  if (opts.inCluster) return inClusterConfig(environment);
  if (opts.kubeconfig) {
    const files = await readExisting([opts.kubeconfig]);
    if (files.length === 0) {
      throw new KubeConfigError('KUBECONFIG_NOT_FOUND', `kubeconfig ${opts.kubeconfig} does not exist`);
    }
    return fromFiles(files, opts.context);
  }
  const listed = (environment.env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  const files = await readExisting(
    listed.length > 0 ? listed : [join(environment.homeDir, '.kube', 'config')],
  );
  if (files.length > 0) return fromFiles(files, opts.context);
  if (environment.env.KUBERNETES_SERVICE_HOST && opts.context === undefined)
    return inClusterConfig(environment);
  const searched =
    listed.length > 0
      ? `$KUBECONFIG (${listed.join(delimiter)})`
      : join(environment.homeDir, '.kube', 'config');
  throw new KubeConfigError(
    'NO_KUBECONFIG',
    `no kubeconfig found (looked at ${searched}) and not running in a pod; pass --kubeconfig FILE, set $KUBECONFIG, or use --in-cluster in a pod`,
  );
}
