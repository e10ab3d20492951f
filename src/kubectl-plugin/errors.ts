/**
 * Failures of `kubectl hoist`, each with a stable code. Messages are one line: what was wrong and
 * what to do. `usage` errors exit 2 (bad flags, bad input), the rest exit 1 (DESIGN.md).
 */
export type PluginErrorCode =
  'CRDS_MISSING' | 'CLUSTER_UNREACHABLE' | 'KUBECONFIG' | 'FORBIDDEN' | 'PREPULL_NOT_FOUND' | 'API_ERROR';

export class PluginError extends Error {
  readonly code: PluginErrorCode;
  readonly usage: boolean;
  constructor(code: PluginErrorCode, message: string, options: { cause?: unknown; usage?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PluginError';
    this.code = code;
    this.usage = options.usage ?? false;
  }
}

/** What a user runs to install the CRDs (README "Deployment"). */
export const INSTALL_HINT =
  'helm install hoist deploy/helm/hoist -n hoist-system --create-namespace (or kubectl apply -f deploy/crds/)';
