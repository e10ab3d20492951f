// The plain pre-pull DaemonSet, for clusters without Hoist's agent: every image becomes an init
// container, so the kubelet pulls it on every node the DaemonSet reaches.
//
// The guide's version runs `sh -c true` in each image, which fails on images with no shell (or no
// `true`): distroless, scratch, most Go and Rust images. Here a first init container copies a
// static busybox from a helper image into an emptyDir as `true`; busybox runs the applet its
// argv[0] names, so every image's init container runs `/hoist-bin/true` from that volume and
// needs nothing of its own. A pause container then keeps the pod (and so the images, which the
// kubelet's GC does not remove while a container uses them).
import { formatImageReference, parseImageReference } from '../oci/index.js';
import { InstallError } from './errors.js';
import type { KubeObject } from './meta.js';
import type { Toleration } from './values.js';

export const HELPER_BIN_DIR = '/hoist-bin';
/** What each image's init container runs: busybox's `true` applet, chosen by argv[0]. */
export const TRUE_COMMAND = [`${HELPER_BIN_DIR}/true`];
/** The helper copies its static busybox into the shared volume (busybox's own `cp` applet). */
export const COPY_COMMAND = ['/bin/busybox', 'cp', '/bin/busybox', `${HELPER_BIN_DIR}/true`];

export const PREPULL_DEFAULTS = {
  name: 'hoist-prepull',
  namespace: 'default',
  maxUnavailable: '10%',
  /** The official busybox image's /bin/busybox is statically linked: it runs in any image. */
  helperImage: 'docker.io/library/busybox:1.36',
  pauseImage: 'registry.k8s.io/pause:3.10',
} as const;

export interface PrepullDaemonSetOptions {
  images: string[];
  name: string;
  namespace: string;
  tolerations: Toleration[];
  nodeSelector: Record<string, string>;
  maxUnavailable: number | string;
  helperImage: string;
  pauseImage: string;
}

const bad = (message: string) => new InstallError('INPUT_INVALID', message);

// Label syntax (apimachinery validation.IsQualifiedName / IsValidLabelValue).
const NAME_PART = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const QUALIFIED = new RegExp(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?${NAME_PART}$`);
const LABEL_VALUE = new RegExp(`^(${NAME_PART})?$`);
const EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;

/** An image reference, normalised as containerd names it (docker.io/library/busybox:1.36). */
export function normaliseImageRef(ref: string, flag = '--image'): string {
  try {
    return formatImageReference(parseImageReference(ref.trim()));
  } catch (err) {
    throw bad(`${flag} "${ref}": ${(err as Error).message}`);
  }
}

/** `KEY[=VALUE][:EFFECT]`: Equal with a value, Exists without; no effect tolerates every effect. */
export function parseToleration(spec: string): Toleration {
  const m = /^([^=:]+)(?:=([^:]*))?(?::(.*))?$/.exec(spec);
  const [key, value, effect] = [m?.[1], m?.[2], m?.[3]];
  if (key === undefined || !QUALIFIED.test(key)) {
    throw bad(
      `--toleration "${spec}": expected KEY[=VALUE][:EFFECT] with a label key, e.g. nvidia.com/gpu:NoSchedule`,
    );
  }
  if (value !== undefined && !LABEL_VALUE.test(value)) {
    throw bad(`--toleration "${spec}": "${value}" is not a valid label value`);
  }
  if (effect !== undefined && !(EFFECTS as readonly string[]).includes(effect)) {
    throw bad(`--toleration "${spec}": effect must be one of ${EFFECTS.join(', ')}`);
  }
  return {
    key,
    operator: value === undefined ? 'Exists' : 'Equal',
    ...(value !== undefined ? { value } : {}),
    ...(effect !== undefined ? { effect: effect as (typeof EFFECTS)[number] } : {}),
  };
}

export function parseNodeSelector(specs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const key = spec.slice(0, eq);
    const value = spec.slice(eq + 1);
    if (eq <= 0 || !QUALIFIED.test(key) || !LABEL_VALUE.test(value)) {
      throw bad(`--node-selector "${spec}": expected LABEL=VALUE, e.g. nvidia.com/gpu.present=true`);
    }
    if (key in out) throw bad(`--node-selector names ${key} twice`);
    out[key] = value;
  }
  return out;
}

/** `N` (at least 1) or `N%` (1% to 100%): the DaemonSet's rollingUpdate.maxUnavailable. */
export function parseMaxUnavailable(spec: string): number | string {
  if (/^([1-9]\d?|100)%$/.test(spec)) return spec;
  if (/^[1-9]\d{0,6}$/.test(spec)) return Number(spec);
  throw bad(`--max-unavailable "${spec}": expected a whole number from 1, or a percentage from 1% to 100%`);
}

export function checkObjectName(name: string, flag: string): string {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) {
    throw bad(`${flag} "${name}": use lowercase letters, digits and -, at most 63 characters`);
  }
  return name;
}

/** `pull-<n>-<last path segment>`, a valid and unique container name. */
function initName(index: number, image: string): string {
  const repo = image.replace(/[@:][^/]*$/, '');
  const slug = (repo.split('/').pop() ?? 'image').replace(/[^a-z0-9-]+/g, '-');
  return `pull-${index + 1}-${slug}`.slice(0, 63).replace(/-+$/, '');
}

/**
 * IfNotPresent, as the kubelet defaults it for a tag or digest: a restarted pod costs the
 * registry nothing (no manifest request per image and node, which Docker Hub rate-limits).
 * `latest` gets Always, as the kubelet defaults it, so the node holds what a workload would get.
 */
export function pullPolicyFor(image: string): 'Always' | 'IfNotPresent' {
  const ref = parseImageReference(image);
  return ref.digest === undefined && ref.tag === 'latest' ? 'Always' : 'IfNotPresent';
}

const SECURITY = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};
// The pull is the kubelet's work; the containers only start and stop.
const RESOURCES = { requests: { cpu: '1m', memory: '8Mi' }, limits: { memory: '32Mi' } };

export function buildPrepullDaemonSet(opts: PrepullDaemonSetOptions): KubeObject {
  if (opts.images.length === 0) throw bad('name at least one --image to pre-pull');
  const images = [...new Set(opts.images.map((i) => normaliseImageRef(i)))];
  const helperImage = normaliseImageRef(opts.helperImage, '--helper-image');
  const pauseImage = normaliseImageRef(opts.pauseImage, '--pause-image');
  const name = checkObjectName(opts.name, '--name');
  const namespace = checkObjectName(opts.namespace, '--namespace');
  const selector = { 'app.kubernetes.io/name': 'hoist-prepull', 'app.kubernetes.io/instance': name };
  const labels = { ...selector, 'app.kubernetes.io/part-of': 'hoist' };
  const binMount = { name: 'hoist-bin', mountPath: HELPER_BIN_DIR };
  const pulls = images.map((image, i) => ({
    name: initName(i, image),
    image,
    imagePullPolicy: pullPolicyFor(image),
    command: TRUE_COMMAND,
    // An existing directory: the image's own WORKDIR may be missing, and the root is read-only.
    workingDir: HELPER_BIN_DIR,
    resources: RESOURCES,
    securityContext: SECURITY,
    volumeMounts: [{ ...binMount, readOnly: true }],
  }));
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, namespace, labels },
    spec: {
      selector: { matchLabels: selector },
      // Staggers the pulls when the image list changes (each new pod is ready once its pulls are
      // done). A first rollout creates every pod at once: DaemonSets have no staggered creation.
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: opts.maxUnavailable } },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          // A fixed numeric user: an image whose USER names an account it has no /etc/passwd for
          // would otherwise fail to start.
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65534,
            runAsGroup: 65534,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          nodeSelector: { 'kubernetes.io/os': 'linux', ...opts.nodeSelector },
          ...(opts.tolerations.length > 0 ? { tolerations: opts.tolerations } : {}),
          initContainers: [
            {
              name: 'install-true',
              image: helperImage,
              imagePullPolicy: 'IfNotPresent',
              command: COPY_COMMAND,
              resources: RESOURCES,
              securityContext: SECURITY,
              volumeMounts: [binMount],
            },
            ...pulls,
          ],
          containers: [
            {
              name: 'pause',
              image: pauseImage,
              imagePullPolicy: 'IfNotPresent',
              resources: RESOURCES,
              securityContext: SECURITY,
            },
          ],
          volumes: [{ name: 'hoist-bin', emptyDir: { sizeLimit: '16Mi' } }],
        },
      },
    },
  };
}
