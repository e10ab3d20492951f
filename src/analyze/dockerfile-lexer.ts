import { AnalyzeError } from './errors.js';

/**
 * The first pass over a Dockerfile, as BuildKit's frontend parser does it
 * (frontend/dockerfile/parser): parser directives at the top (`# escape=`, `# syntax=`), comment
 * lines, line continuations with the escape character (also across comment and empty lines, which
 * are dropped), and heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`) for RUN, COPY and ADD. Pure.
 */

export interface Heredoc {
  name: string;
  /** Lines between the marker line and the terminator, joined with \n (plus a final \n). */
  body: string;
  /** `<<"EOF"` or `<<'EOF'`: the body is taken literally, without variable expansion. */
  expand: boolean;
  /** `<<-EOF`: leading tabs were removed from each body line. */
  stripTabs: boolean;
}

export interface RawInstruction {
  /** Upper-case keyword: FROM, RUN, COPY... */
  keyword: string;
  /** Everything after the keyword, continuations joined, heredoc bodies excluded. */
  rest: string;
  /** 1-based line where the instruction starts. */
  line: number;
  /** 1-based line where it ends (the heredoc terminator, if any). */
  endLine: number;
  heredocs: Heredoc[];
}

export interface LexedDockerfile {
  directives: Record<string, string>;
  escape: '\\' | '`';
  instructions: RawInstruction[];
}

export const KEYWORDS = new Set([
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
]);

const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);
const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$/;
// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`, optionally after a file descriptor (`3<<EOF`); not `<<<`.
const HEREDOC_MARKER = /(?<![<\w])\d*<<(-?)(["']?)([A-Za-z0-9_][A-Za-z0-9_.-]*)\2(?!\w)/g;

export function lexDockerfile(text: string, path = 'Dockerfile'): LexedDockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const fail = (line: number, what: string): never => {
    throw new AnalyzeError('DOCKERFILE_INVALID', `${path}:${line}: ${what}`);
  };

  // Parser directives: only before any instruction, comment or empty line (Dockerfile reference,
  // "Parser directives"); each at most once.
  const directives: Record<string, string> = {};
  let i = 0;
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i] ?? '');
    if (!m?.[1]) break;
    const key = m[1].toLowerCase();
    if (key in directives) fail(i + 1, `the "${key}" parser directive is given twice; keep one`);
    directives[key] = m[2] ?? '';
  }
  const escapeValue = directives.escape ?? '\\';
  if (escapeValue !== '\\' && escapeValue !== '`') {
    fail(1, `invalid escape directive "${escapeValue}": use \\ or \``);
  }
  const escape = escapeValue as '\\' | '`';
  const continuation = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  const isComment = (line: string) => line.trimStart().startsWith('#');

  const instructions: RawInstruction[] = [];
  while (i < lines.length) {
    const first = lines[i] ?? '';
    if (first.trim() === '' || isComment(first)) {
      i++;
      continue;
    }
    const start = i + 1;
    let logical = '';
    let current = first;
    // Join continuation lines; comment and empty lines inside a continuation are dropped.
    while (continuation.test(current)) {
      logical += current.replace(continuation, '');
      i++;
      while (i < lines.length && ((lines[i] ?? '').trim() === '' || isComment(lines[i] ?? ''))) i++;
      if (i >= lines.length) {
        current = '';
        break;
      }
      current = lines[i] ?? '';
    }
    logical += current;
    i++;

    const m = /^\s*(\S+)(?:\s+([\s\S]*))?$/.exec(logical);
    const word = m?.[1] ?? '';
    const keyword = word.toUpperCase();
    if (!KEYWORDS.has(keyword)) {
      fail(
        start,
        `unknown instruction "${word.slice(0, 40)}"; check the spelling or a missing line continuation`,
      );
    }
    const rest = (m?.[2] ?? '').trim();

    const heredocs: Heredoc[] = [];
    if (HEREDOC_KEYWORDS.has(keyword) || (keyword === 'ONBUILD' && /^\s*(RUN|COPY|ADD)\b/i.test(rest))) {
      for (const hm of rest.matchAll(HEREDOC_MARKER)) {
        const stripTabs = hm[1] === '-';
        const name = hm[3] ?? '';
        const body: string[] = [];
        for (;;) {
          if (i >= lines.length) fail(start, `heredoc <<${name} is not terminated; add a line "${name}"`);
          const raw = lines[i] ?? '';
          i++;
          const content = stripTabs ? raw.replace(/^\t+/, '') : raw;
          if (content === name) break;
          body.push(content);
        }
        heredocs.push({
          name,
          body: body.length ? `${body.join('\n')}\n` : '',
          expand: hm[2] === '',
          stripTabs,
        });
      }
    }
    instructions.push({ keyword, rest, line: start, endLine: i, heredocs });
  }
  return { directives, escape, instructions };
}
