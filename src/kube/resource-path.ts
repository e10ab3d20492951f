import type { ResourceRef } from './types.js';

/**
 * The URL path of a resource (API conventions, "Resource URIs"):
 *   core:   /api/v1[/namespaces/NS]/PLURAL[/NAME[/SUBRESOURCE]]
 *   groups: /apis/GROUP/VERSION[/namespaces/NS]/PLURAL[/NAME[/SUBRESOURCE]]
 * Without a namespace, a namespaced plural names the collection across all namespaces.
 */
export function resourcePath(ref: ResourceRef): string {
  for (const [field, value] of [
    ['version', ref.version],
    ['plural', ref.plural],
  ] as const) {
    if (!value) throw new TypeError(`resourcePath: ${field} is empty`);
  }
  if (ref.subresource !== undefined && !ref.name) {
    throw new TypeError(`resourcePath: subresource '${ref.subresource}' needs a name`);
  }
  for (const [field, value] of [
    ['namespace', ref.namespace],
    ['name', ref.name],
    ['subresource', ref.subresource],
  ] as const) {
    if (value === '') throw new TypeError(`resourcePath: ${field} is empty; leave it out instead`);
  }
  const seg = encodeURIComponent;
  let path = ref.group === '' ? `/api/${seg(ref.version)}` : `/apis/${seg(ref.group)}/${seg(ref.version)}`;
  if (ref.namespace !== undefined) path += `/namespaces/${seg(ref.namespace)}`;
  path += `/${seg(ref.plural)}`;
  if (ref.name !== undefined) path += `/${seg(ref.name)}`;
  if (ref.subresource !== undefined) path += `/${seg(ref.subresource)}`;
  return path;
}

/** `path?k=v&...` leaving out undefined values; values are URL-encoded. */
export function withQuery(
  path: string,
  query?: Record<string, string | number | boolean | undefined>,
): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.append(k, String(v));
  const qs = params.toString();
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}
