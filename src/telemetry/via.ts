import { parseImageReference } from '../oci/index.js';
import type { Via } from './metrics.js';

/**
 * How a pull is told to have gone through Hoist (README "Pull telemetry"): the agent, once it has
 * written containerd's hosts.toml to send a registry through a Hoist mirror, lists that registry
 * in this annotation on its Node. A pull on that node from a listed registry went through Hoist;
 * anything else went direct.
 */
export const MIRRORED_REGISTRIES_ANNOTATION = 'hoist.dev/mirrored-registries';

/** The `registry` label of an image pull when its registry is none of the configured ones. */
export const OTHER_REGISTRY = 'other';

/** The annotation's registries: comma-separated hosts, lowercased; empty for a missing value. */
export function parseMirroredRegistries(value: string | undefined): Set<string> {
  const out = new Set<string>();
  for (const part of (value ?? '').split(',')) {
    const host = part.trim().toLowerCase();
    if (host) out.add(host);
  }
  return out;
}

/** The annotation value for these registries: sorted, so that rewriting it changes nothing. */
export function formatMirroredRegistries(registries: Iterable<string>): string {
  return [...new Set([...registries].map((r) => r.trim().toLowerCase()).filter(Boolean))].sort().join(',');
}

/** The image's registry host as containerd names it (docker.io for Docker Hub), or undefined. */
export function imageRegistry(image: string): string | undefined {
  try {
    return parseImageReference(image).registry.toLowerCase();
  } catch {
    return undefined;
  }
}

export function viaFor(mirrored: ReadonlySet<string> | undefined, registry: string | undefined): Via {
  return registry !== undefined && mirrored?.has(registry) ? 'hoist' : 'direct';
}

/** The bounded `registry` label: the host when it is a configured registry, else "other". */
export function registryLabel(known: ReadonlySet<string>, registry: string | undefined): string {
  return registry !== undefined && known.has(registry) ? registry : OTHER_REGISTRY;
}
