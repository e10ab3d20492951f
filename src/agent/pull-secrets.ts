import type { RegistryAuth } from '../cri/index.js';
import { parseAuthFile, type RegistryCredentials } from '../node/index.js';
import { parseImageReference } from '../oci/index.js';

/**
 * Registry credentials from Kubernetes pull secrets (docs/prepull.md "Credentials"): Secrets of
 * type kubernetes.io/dockerconfigjson (or the older kubernetes.io/dockercfg) in the agent's
 * namespace, matched to an image's registry as the auth file is (src/node auth-file.ts). Like the
 * kubelet, a registry no secret names is pulled anonymously. Secret contents never reach a log or
 * an error message: errors name the secret and the key only.
 */

export interface KubeSecret {
  metadata: { name: string; namespace?: string };
  type?: string;
  /** base64 values, as the API serves them. */
  data?: Record<string, string>;
}

/** A named pull secret is missing or unusable; the pull is refused (status reason Unauthorized). */
export class PullSecretError extends Error {
  readonly code = 'PULL_SECRET';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PullSecretError';
  }
}

/** Pure: the credentials by registry host that a dockerconfigjson or dockercfg Secret holds. */
export function secretCredentials(secret: KubeSecret): Map<string, RegistryCredentials> {
  const where = `pull secret ${secret.metadata.namespace ?? ''}/${secret.metadata.name}`;
  const data = secret.data ?? {};
  let text: string;
  if (secret.type === 'kubernetes.io/dockerconfigjson' && data['.dockerconfigjson'] !== undefined) {
    text = Buffer.from(data['.dockerconfigjson'], 'base64').toString('utf8');
  } else if (secret.type === 'kubernetes.io/dockercfg' && data['.dockercfg'] !== undefined) {
    // The legacy format is the "auths" object alone.
    const legacy = Buffer.from(data['.dockercfg'], 'base64').toString('utf8');
    text = `{"auths":${legacy}}`;
  } else {
    throw new PullSecretError(
      `${where} is of type ${secret.type ?? '(none)'}; expected kubernetes.io/dockerconfigjson with a .dockerconfigjson key`,
    );
  }
  try {
    return parseAuthFile(text, where).registries;
  } catch (err) {
    throw new PullSecretError((err as Error).message, { cause: err });
  }
}

export interface PullSecretsOptions {
  namespace: string;
  /** Reads a Secret of `namespace`; undefined when it does not exist. */
  read: (name: string) => Promise<KubeSecret | undefined>;
}

export class PullSecrets {
  /** The last credentials seen per registry, for callers that cannot wait (the size estimate). */
  private readonly lastSeen = new Map<string, RegistryCredentials>();

  constructor(private readonly opts: PullSecretsOptions) {}

  /**
   * The credentials for the image's registry from the first of `names` that has some. A secret
   * that is missing or unusable fails the lookup only when no other one has credentials.
   */
  async credentialsFor(image: string, names: readonly string[]): Promise<RegistryAuth | undefined> {
    if (names.length === 0) return undefined;
    const registry = parseImageReference(image).registry;
    const problems: string[] = [];
    for (const name of names) {
      let secret: KubeSecret | undefined;
      try {
        secret = await this.opts.read(name);
      } catch (err) {
        problems.push(`cannot read pull secret ${this.opts.namespace}/${name}: ${(err as Error).message}`);
        continue;
      }
      if (!secret) {
        problems.push(`pull secret ${this.opts.namespace}/${name} not found`);
        continue;
      }
      let registries: Map<string, RegistryCredentials>;
      try {
        registries = secretCredentials(secret);
      } catch (err) {
        problems.push((err as Error).message);
        continue;
      }
      for (const [host, creds] of registries) this.lastSeen.set(host, creds);
      const creds = registries.get(registry);
      if (creds) return { username: creds.username, password: creds.password };
    }
    if (problems.length > 0) throw new PullSecretError(problems.join('; '));
    return undefined;
  }

  /** The credentials last read for a registry (any secret), or undefined. */
  cached(registry: string): RegistryCredentials | undefined {
    return this.lastSeen.get(registry);
  }
}
