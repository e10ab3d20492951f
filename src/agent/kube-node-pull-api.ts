import type { Logger } from 'pino';
import { Informer, type KubeClient, type KubeObject } from '../kube/index.js';
import {
  NODEPULL_GROUP,
  NODEPULL_PLURAL,
  NODEPULL_VERSION,
  type NodePull,
  type NodePullStatus,
} from './node-pull.js';
import type { NodePullApi } from './node-pull-sync.js';
import type { KubeSecret } from './pull-secrets.js';

/**
 * NodePullApi over the Kubernetes API: a list+watch of the one NodePull named after the node
 * (field selector metadata.name=NODE, so the agent's watch carries one object), merge patches of
 * its status subresource, and reads of pull secrets in the agent's namespace.
 */
export function kubeNodePullApi(opts: {
  client: KubeClient;
  nodeName: string;
  namespace: string;
  logger?: Logger;
}): NodePullApi {
  const { client, nodeName, namespace, logger } = opts;
  const collection = { group: NODEPULL_GROUP, version: NODEPULL_VERSION, plural: NODEPULL_PLURAL };
  return {
    async watch(onChange, signal) {
      const informer = new Informer<NodePull & KubeObject>(client, collection, {
        fieldSelector: `metadata.name=${nodeName}`,
        ...(logger ? { logger } : {}),
      });
      informer.on('change', () => onChange(informer.get(nodeName)));
      informer.start(signal);
      await informer.synced();
      onChange(informer.get(nodeName));
    },
    async patchStatus(status: NodePullStatus) {
      await client.patch({ ...collection, name: nodeName, subresource: 'status' }, { status }, 'merge');
    },
    async readSecret(name: string) {
      return client.get<KubeSecret & KubeObject>({
        group: '',
        version: 'v1',
        plural: 'secrets',
        namespace,
        name,
      });
    },
  };
}
