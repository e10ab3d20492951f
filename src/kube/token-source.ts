import { readFile, stat } from 'node:fs/promises';
import { KubeConfigError } from './errors.js';

/**
 * The bearer token for each request. A token file is re-read when it changes (inode, size or
 * mtime: the kubelet rotates projected service-account tokens by swapping a symlink), so a
 * long-running process never sends an expired token. Tokens never appear in errors or logs.
 */
export class TokenSource {
  private cached: { token: string; ino: number; size: number; mtimeMs: number } | undefined;

  constructor(
    private readonly token?: string,
    private readonly tokenFile?: string,
  ) {}

  async get(): Promise<string | undefined> {
    if (!this.tokenFile) return this.token || undefined;
    try {
      const st = await stat(this.tokenFile);
      const c = this.cached;
      if (c && c.ino === st.ino && c.size === st.size && c.mtimeMs === st.mtimeMs) return c.token;
      const token = (await readFile(this.tokenFile, 'utf8')).trim();
      if (token === '') return c?.token ?? (this.token || undefined);
      this.cached = { token, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
      return token;
    } catch (err) {
      // Mid-rotation the file can be missing for a moment: keep the last good token.
      if (this.cached) return this.cached.token;
      if (this.token) return this.token;
      throw new KubeConfigError(
        'KUBECONFIG_FILE_UNREADABLE',
        `cannot read the token file ${this.tokenFile}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}
