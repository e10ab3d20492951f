import { formatImageReference, parseImageReference } from '../oci/index.js';

/**
 * Pure parsing of pull assignments, whatever brings them (the HTTP endpoint, an images file,
 * later the PrePull controller). References are normalised as containerd names images
 * (`nginx` -> `docker.io/library/nginx:latest`), so one image is one queue entry.
 */

export class AssignmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssignmentError';
  }
}

export function normaliseImage(image: string): string {
  try {
    return formatImageReference(parseImageReference(image.trim()));
  } catch (err) {
    throw new AssignmentError((err as Error).message);
  }
}

/** `{"images": [...]}` as POST /v1/pulls takes it. */
export function parseAssignmentBody(value: unknown): string[] {
  const images = (value as { images?: unknown } | null)?.images;
  if (!Array.isArray(images) || images.length === 0 || !images.every((i) => typeof i === 'string')) {
    throw new AssignmentError('body must be JSON {"images": ["registry/repository:tag", ...]}');
  }
  return images.map(normaliseImage);
}

/** An images file: one reference per line; blank lines and `#` comments are skipped. */
export function parseImagesFile(text: string, where: string): string[] {
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    try {
      out.push(normaliseImage(line));
    } catch (err) {
      throw new AssignmentError(`${where}:${i + 1}: ${(err as Error).message}`);
    }
  });
  return out;
}
