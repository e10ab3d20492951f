/**
 * Word splitting, quote removal and variable substitution for the instructions that BuildKit
 * expands itself (ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG):
 * Dockerfile reference "Environment replacement". `$VAR`, `${VAR}`, `${VAR:-word}`,
 * `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`; single quotes stop expansion; the
 * escape character escapes the next character. Pure.
 */

export interface Words {
  words: string[];
  /** Variables referenced without a value or a default (they expanded to ''). */
  unresolved: string[];
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

class Lexer {
  pos = 0;
  readonly unresolved: string[] = [];
  constructor(
    private readonly text: string,
    private readonly vars: ReadonlyMap<string, string>,
    private readonly escape: string,
  ) {}

  /** Reads words until the end (split) or the whole text as one word (no split). */
  words(split: boolean): string[] {
    const out: string[] = [];
    let word = '';
    // A word that expands to nothing disappears unless it was quoted (`""` stays an empty word).
    let quoted = false;
    const t = this.text;
    while (this.pos < t.length) {
      const c = t[this.pos] ?? '';
      if (split && /\s/.test(c)) {
        if (word !== '' || quoted) out.push(word);
        word = '';
        quoted = false;
        this.pos++;
        continue;
      }
      if (c === "'" || c === '"') quoted = true;
      if (c === "'") {
        const end = t.indexOf("'", this.pos + 1);
        word += end < 0 ? t.slice(this.pos + 1) : t.slice(this.pos + 1, end);
        this.pos = end < 0 ? t.length : end + 1;
      } else if (c === '"') {
        this.pos++;
        word += this.doubleQuoted();
      } else if (c === this.escape) {
        word += t[this.pos + 1] ?? '';
        this.pos += 2;
      } else if (c === '$') {
        word += this.variable();
      } else {
        word += c;
        this.pos++;
      }
    }
    if (word !== '' || quoted || (!split && out.length === 0)) out.push(word);
    return out;
  }

  private doubleQuoted(): string {
    let s = '';
    const t = this.text;
    while (this.pos < t.length) {
      const c = t[this.pos] ?? '';
      if (c === '"') {
        this.pos++;
        return s;
      }
      if (c === this.escape && /["$`\\]/.test(t[this.pos + 1] ?? '')) {
        s += t[this.pos + 1] ?? '';
        this.pos += 2;
      } else if (c === '$') {
        s += this.variable();
      } else {
        s += c;
        this.pos++;
      }
    }
    return s;
  }

  /** At a `$`: expands `$NAME` or `${...}`; a lone `$` stays literal. */
  private variable(): string {
    const t = this.text;
    const next = t[this.pos + 1] ?? '';
    if (next === '{') {
      const close = matchingBrace(t, this.pos + 1);
      if (close < 0) {
        this.pos = t.length;
        return '';
      }
      const inner = t.slice(this.pos + 2, close);
      this.pos = close + 1;
      return this.braced(inner);
    }
    if (!NAME_START.test(next)) {
      this.pos++;
      return '$';
    }
    let end = this.pos + 1;
    while (end < t.length && NAME_CHAR.test(t[end] ?? '')) end++;
    const name = t.slice(this.pos + 1, end);
    this.pos = end;
    return this.lookup(name, true);
  }

  private braced(inner: string): string {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])([\s\S]*))?$/.exec(inner);
    if (!m?.[1]) return '';
    const name = m[1];
    const op = m[2];
    if (op === undefined) return this.lookup(name, true);
    const value = this.vars.get(name);
    const set = op.startsWith(':') ? value !== undefined && value !== '' : value !== undefined;
    const word = () => expandWord(m[3] ?? '', this.vars, this.escape, this.unresolved);
    if (op.endsWith('-')) return set ? (value ?? '') : word();
    if (op.endsWith('+')) return set ? word() : '';
    // ${VAR:?message}: BuildKit fails the build when unset; we note it and go on.
    if (!set) this.unresolved.push(name);
    return value ?? '';
  }

  private lookup(name: string, record: boolean): string {
    const value = this.vars.get(name);
    if (value === undefined && record && !this.unresolved.includes(name)) this.unresolved.push(name);
    return value ?? '';
  }
}

function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

function expandWord(
  text: string,
  vars: ReadonlyMap<string, string>,
  escape: string,
  unresolved: string[],
): string {
  const lexer = new Lexer(text, vars, escape);
  const out = lexer.words(false).join('');
  for (const u of lexer.unresolved) if (!unresolved.includes(u)) unresolved.push(u);
  return out;
}

/** Splits on unquoted whitespace, removes quotes and escapes, expands variables. */
export function splitWords(text: string, vars: ReadonlyMap<string, string>, escape = '\\'): Words {
  const lexer = new Lexer(text, vars, escape);
  const words = lexer.words(true);
  return { words, unresolved: lexer.unresolved };
}

/** The same as one word (no splitting), e.g. an ENV value. */
export function expandOne(text: string, vars: ReadonlyMap<string, string>, escape = '\\'): Words {
  const lexer = new Lexer(text, vars, escape);
  return { words: [lexer.words(false).join('')], unresolved: lexer.unresolved };
}
