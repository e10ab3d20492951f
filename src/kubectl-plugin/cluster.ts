import {
  KubeClient,
  KubeConfigError,
  KubeConnectionError,
  KubeError,
  loadKubeConfig,
  type KubeConfig,
  type KubeObject,
  type ResourceRef,
} from '../kube/index.js';
import type { NodePull, PrePull } from '../prepull/index.js';
import { INSTALL_HINT, PluginError } from './errors.js';
import type { NodeImages } from './why-view.js';

/**
 * What `kubectl hoist` reads from the cluster, and the translation of API failures into
 * PluginErrors that say what to do. Read-only: the plugin never writes.
 */

// Spelled out rather than imported from src/prepull at run time: the plugin loads no controller code.
const GROUP = 'prepull.hoist.dev';
const VERSION = 'v1alpha1';
const prePulls = (namespace?: string): ResourceRef => ({
  group: GROUP,
  version: VERSION,
  plural: 'prepulls',
  ...(namespace !== undefined ? { namespace } : {}),
});
const NODEPULLS: ResourceRef = { group: GROUP, version: VERSION, plural: 'nodepulls' };
const NODES: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };

export interface ConnectOptions {
  kubeconfig?: string;
  context?: string;
}

export class PluginCluster {
  readonly client: KubeClient;
  /** The context's namespace (else `default`), for commands without -n. */
  readonly namespace: string;

  private constructor(config: KubeConfig) {
    this.client = new KubeClient(config, { userAgent: 'kubectl-hoist' });
    this.namespace = config.namespace || 'default';
  }

  /** Loads the kubeconfig as kubectl does: --kubeconfig, else $KUBECONFIG's files, else ~/.kube/config. */
  static async connect(opts: ConnectOptions): Promise<PluginCluster> {
    try {
      return new PluginCluster(
        await loadKubeConfig({
          ...(opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : {}),
          ...(opts.context !== undefined ? { context: opts.context } : {}),
        }),
      );
    } catch (err) {
      if (err instanceof KubeConfigError)
        throw new PluginError('KUBECONFIG', err.message, { cause: err, usage: true });
      throw err;
    }
  }

  close(): void {
    this.client.close();
  }

  /** PrePulls of one namespace, or of all (undefined). */
  async listPrePulls(namespace: string | undefined): Promise<PrePull[]> {
    return (
      await this.call('list prepulls', () => this.client.list<PrePull & KubeObject>(prePulls(namespace)))
    ).items;
  }

  /** One PrePull; PREPULL_NOT_FOUND when it does not exist (CRDS_MISSING when the type does not). */
  async getPrePull(namespace: string, name: string): Promise<PrePull> {
    const p = await this.call('get prepull', () =>
      this.client.get<PrePull & KubeObject>({ ...prePulls(namespace), name }),
    );
    if (p !== undefined) return p;
    await this.requireCrds();
    throw new PluginError(
      'PREPULL_NOT_FOUND',
      `prepull "${name}" not found in namespace "${namespace}"; list them with: kubectl hoist status -A`,
    );
  }

  async listNodePulls(): Promise<NodePull[]> {
    return (await this.call('list nodepulls', () => this.client.list<NodePull & KubeObject>(NODEPULLS)))
      .items;
  }

  async listNodes(): Promise<NodeImages[]> {
    return (await this.call('list nodes', () => this.client.list<NodeImages & KubeObject>(NODES))).items;
  }

  /**
   * Events about pods (the kubelet's pull events are about the pod), of one namespace or all, as
   * `kubectl get events -o json` lists them.
   */
  async listPodEvents(namespace: string | undefined): Promise<KubeObject[]> {
    const ref: ResourceRef = {
      group: '',
      version: 'v1',
      plural: 'events',
      ...(namespace !== undefined ? { namespace } : {}),
    };
    return (
      await this.call('list events', () =>
        this.client.list(ref, { fieldSelector: 'involvedObject.kind=Pod' }),
      )
    ).items;
  }

  /** The API group of the CRDs is served; else CRDS_MISSING. */
  private async requireCrds(): Promise<void> {
    try {
      await this.client.request('GET', `/apis/${GROUP}/${VERSION}`);
    } catch (err) {
      if (err instanceof KubeError && err.status === 404) throw crdsMissing(err);
      throw this.translate('discover the PrePull API', err);
    }
  }

  private async call<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      // A list of a resource type the server does not serve answers 404: the CRDs are missing.
      if (err instanceof KubeError && err.status === 404 && /prepulls|nodepulls/.test(what))
        throw crdsMissing(err);
      throw this.translate(what, err);
    }
  }

  private translate(what: string, err: unknown): unknown {
    const server = this.client.config.server;
    if (err instanceof KubeConnectionError) {
      return new PluginError(
        'CLUSTER_UNREACHABLE',
        `cannot reach the Kubernetes API server at ${server} (${err.message}); check the cluster is up and --kubeconfig/--context point at it`,
        { cause: err },
      );
    }
    if (err instanceof KubeError && (err.status === 401 || err.status === 403)) {
      return new PluginError(
        'FORBIDDEN',
        `${what}: ${err.message}; use credentials that may read PrePulls, NodePulls, Nodes and Events`,
        { cause: err },
      );
    }
    if (err instanceof KubeError)
      return new PluginError('API_ERROR', `${what}: ${err.message}`, { cause: err });
    return err;
  }
}

function crdsMissing(cause: unknown): PluginError {
  return new PluginError(
    'CRDS_MISSING',
    `Hoist's CRDs are not installed in this cluster (no prepulls.${GROUP}/${VERSION}): ${INSTALL_HINT}`,
    { cause },
  );
}
