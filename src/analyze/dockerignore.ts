/**
 * `.dockerignore` matching as BuildKit does it (moby/patternmatcher): one pattern a line, `#`
 * comments, paths relative to the context root (a leading `/` is dropped), `*` and `?` within a
 * path component, `**` across components, `!` re-includes, the last matching pattern wins, and a
 * pattern that matches a directory matches everything under it. Pure.
 */

interface Pattern {
  regex: RegExp;
  exclude: boolean;
}

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? '';
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more directories; a trailing `**` matches everything below.
        if (glob[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else {
      re += c.replace(/[.+^${}()|\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

/** Normalises a path the way filepath.Clean does for relative paths (no `.`, `..`, `//`). */
export function cleanPath(path: string): string {
  const out: string[] = [];
  for (const part of path.replace(/\\/g, '/').split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

export class DockerIgnore {
  private readonly patterns: Pattern[];

  constructor(text: string) {
    this.patterns = [];
    for (const rawLine of text.split(/\r?\n/)) {
      let line = rawLine.trim();
      if (line === '' || line.startsWith('#')) continue;
      const exclude = !line.startsWith('!');
      if (!exclude) line = line.slice(1).trim();
      const clean = cleanPath(line);
      if (clean === '') continue;
      this.patterns.push({ regex: globToRegExp(clean), exclude });
    }
  }

  /** With `!` patterns, a file under an ignored directory may come back: walk into it anyway. */
  get hasExceptions(): boolean {
    return this.patterns.some((p) => !p.exclude);
  }

  /** True when the context path (relative, `/`-separated) is left out of the build context. */
  ignores(path: string): boolean {
    const clean = cleanPath(path);
    const parents: string[] = [];
    const parts = clean.split('/');
    for (let i = 1; i <= parts.length; i++) parents.push(parts.slice(0, i).join('/'));
    let ignored = false;
    for (const p of this.patterns) {
      if (parents.some((candidate) => p.regex.test(candidate))) ignored = p.exclude;
    }
    return ignored;
  }
}
