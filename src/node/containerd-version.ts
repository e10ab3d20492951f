import { execFile } from 'node:child_process';

/**
 * Which containerd reads the config: it decides where the registry `config_path` lives and whether
 * a ':' list of folders works. containerd 1.6/1.7 read config version 2 (and 1); 2.x reads 3 and
 * migrates 1 and 2 in memory at start. From 2.1 the CRI image service pulls through the transfer
 * service, which takes `config_path` as ONE folder (containerd#12415).
 */
export interface ContainerdVersion {
  major: number;
  minor: number;
  /** As reported, e.g. "v2.4.2" or "1.6.20~ds1". */
  raw: string;
  /** Where it came from: the CRI socket's Version call, `containerd --version`, or the user. */
  source: 'cri' | 'binary' | 'flag';
}

/**
 * Reads "v2.4.2", "2.1", "1.6.20~ds1" or a whole `containerd --version` line
 * ("containerd github.com/containerd/containerd/v2 v2.4.2 <commit>"); undefined when none is there.
 */
export function parseContainerdVersion(
  text: string,
  source: ContainerdVersion['source'],
): ContainerdVersion | undefined {
  // The last word that looks like a version: the module path before it may hold "/v2".
  const words = text.trim().split(/\s+/);
  for (const word of words.reverse()) {
    const m = /^v?(\d+)\.(\d+)(?:[.~+-]\S*)?$/.exec(word);
    if (m) return { major: Number(m[1]), minor: Number(m[2]), raw: word, source };
  }
  return undefined;
}

export function formatVersion(v: ContainerdVersion): string {
  return `${v.major}.${v.minor}`;
}

/** `containerd --version` from PATH; undefined when there is no such binary or it says nothing usable. */
export function containerdBinaryVersion(
  bin = 'containerd',
  timeoutMs = 5_000,
): Promise<ContainerdVersion | undefined> {
  return new Promise((resolve) => {
    execFile(bin, ['--version'], { timeout: timeoutMs }, (err, stdout) => {
      resolve(err ? undefined : parseContainerdVersion(String(stdout), 'binary'));
    });
  });
}
