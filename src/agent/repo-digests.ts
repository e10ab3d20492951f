/**
 * Pure helpers over CRI ImageStatus repo digests (`registry/repository@sha256:...`): which
 * manifest digest the runtime holds for an image reference's repository.
 */

/** The repository part of `registry/repository:tag@digest`. */
export function repositoryOf(image: string): string {
  const name = image.split('@')[0]!;
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name;
}

/** True when the repo digests hold `digest` for the image's repository. */
export function holdsDigest(
  image: string,
  repoDigests: readonly string[] | undefined,
  digest: string,
): boolean {
  return (repoDigests ?? []).includes(`${repositoryOf(image)}@${digest}`);
}

/** The digest held for the image's repository (else the first one), or undefined. */
export function heldDigest(image: string, repoDigests: readonly string[] | undefined): string | undefined {
  const repo = repositoryOf(image);
  const match = (repoDigests ?? []).find((rd) => rd.split('@')[0] === repo) ?? repoDigests?.[0];
  return match?.split('@')[1];
}
