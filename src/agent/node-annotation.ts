import type { KubeClient } from '../kube/index.js';
import { formatMirroredRegistries, MIRRORED_REGISTRIES_ANNOTATION } from '../telemetry/index.js';

/** Records on the agent's Node which registries its containerd sends through a Hoist mirror. */
export type MirroredRegistriesMarker = (registries: readonly string[]) => Promise<void>;

/**
 * The marker over the Kubernetes API: a merge patch of one annotation on the agent's own Node
 * (README "Pull telemetry": the controller counts a pull on this node from a listed registry as
 * one that went through Hoist). A merge patch touches nothing else on the Node and needs only the
 * `patch` verb, not `get`.
 */
export function kubeMirroredRegistriesMarker(
  client: Pick<KubeClient, 'patch'>,
  nodeName: string,
): MirroredRegistriesMarker {
  return async (registries) => {
    await client.patch(
      { group: '', version: 'v1', plural: 'nodes', name: nodeName },
      {
        metadata: { annotations: { [MIRRORED_REGISTRIES_ANNOTATION]: formatMirroredRegistries(registries) } },
      },
      'merge',
    );
  };
}
