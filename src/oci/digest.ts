import { createHash, type Hash } from 'node:crypto';
import { OciParseError } from './errors.js';

/**
 * A content digest, `algorithm:encoded`, per OCI image-spec descriptor.md#digests.
 * Only registered algorithms are accepted (sha256, sha512): an unknown algorithm cannot be
 * verified, and Hoist never serves bytes it has not verified.
 */
export interface Digest {
  readonly algorithm: 'sha256' | 'sha512';
  readonly hex: string;
  /** The canonical string form, `sha256:...`. */
  readonly value: string;
}

const ENCODED_LENGTH = { sha256: 64, sha512: 128 } as const;
const HEX = /^[a-f0-9]+$/;

export function parseDigest(input: string): Digest {
  const colon = input.indexOf(':');
  if (colon < 0) throw new OciParseError('DIGEST_INVALID', `digest "${clip(input)}" has no algorithm prefix`);
  const algorithm = input.slice(0, colon);
  const hex = input.slice(colon + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new OciParseError('DIGEST_INVALID', `digest algorithm "${clip(algorithm)}" is not supported`);
  }
  if (hex.length !== ENCODED_LENGTH[algorithm] || !HEX.test(hex)) {
    throw new OciParseError(
      'DIGEST_INVALID',
      `digest "${clip(input)}" must be ${ENCODED_LENGTH[algorithm]} lowercase hex characters after "${algorithm}:"`,
    );
  }
  return { algorithm, hex, value: input };
}

export function isDigest(input: string): boolean {
  try {
    parseDigest(input);
    return true;
  } catch {
    return false;
  }
}

export function digestOf(data: Uint8Array | string, algorithm: Digest['algorithm'] = 'sha256'): Digest {
  const hex = createHash(algorithm).update(data).digest('hex');
  return { algorithm, hex, value: `${algorithm}:${hex}` };
}

/** Incremental digester for streamed content. */
export class Digester {
  readonly algorithm: Digest['algorithm'];
  private readonly hash: Hash;
  private bytes = 0;

  constructor(algorithm: Digest['algorithm'] = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.byteLength;
  }

  get size(): number {
    return this.bytes;
  }

  digest(): Digest {
    const hex = this.hash.digest('hex');
    return { algorithm: this.algorithm, hex, value: `${this.algorithm}:${hex}` };
  }
}

/** Shortens untrusted input before it goes into an error message. */
export function clip(s: string, max = 80): string {
  return s.length <= max ? s : `${s.slice(0, max)}...`;
}
