/**
 * `--platform os/arch[/variant]`: parsing and matching, with the normalisation containerd's
 * `platforms.Normalize` applies (so `linux/arm64/v8` selects `linux/arm64`, `linux/arm` selects
 * `linux/arm/v7`), which is what `ctr-remote image convert --platform` uses to choose manifests.
 */
import type { Platform } from '../oci/index.js';
import { EstargzError } from './errors.js';

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

const SEGMENT = /^[a-z0-9._-]+$/;

/** Parses `os/arch[/variant]`; anything else is refused with what a valid one looks like. */
export function parsePlatform(text: string): PlatformSpec {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => SEGMENT.test(p))) {
    throw new EstargzError(
      'PLATFORM_INVALID',
      `--platform "${text}" is not os/arch[/variant], e.g. linux/amd64 or linux/arm/v7`,
    );
  }
  const [os = '', architecture = '', variant] = parts;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** containerd platforms/database.go normalizeArch: aliases and default variants. */
function normalize(p: PlatformSpec): { os: string; architecture: string; variant: string } {
  const os = p.os.toLowerCase();
  let arch = p.architecture.toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  switch (arch) {
    case 'i386':
      arch = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (variant === '8' || variant === 'v8') variant = '';
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '') variant = 'v7';
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
  }
  return { os, architecture: arch, variant };
}

/** Whether an index entry's platform is the one asked for (after normalisation). */
export function platformMatches(wanted: PlatformSpec, platform: Platform | PlatformSpec): boolean {
  const a = normalize(wanted);
  const b = normalize(platform);
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}
