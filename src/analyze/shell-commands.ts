/**
 * Just enough of POSIX shell syntax to find the simple commands in a RUN script: split on `&&`,
 * `||`, `;`, `|`, `&` and newlines outside quotes, words with quotes removed, leading variable
 * assignments and wrappers (`sudo`, `env`) dropped. Not a shell: enough to recognise
 * `apt-get install`, `pip install -r` and their flags. Pure.
 */

export interface SimpleCommand {
  /** Program name without its directory, e.g. `pip3`. */
  program: string;
  /** Arguments after the program. */
  args: string[];
  /** The command's words as written (quotes removed), for messages. */
  text: string;
  /** Leading `NAME=value` assignments (`UV_NO_CACHE=1 uv sync`): the command's own environment. */
  env: Record<string, string>;
}

const WRAPPERS = new Set(['sudo', 'env', 'time', 'exec', 'nice', 'nohup', 'command']);

/** Splits a script into commands, each a list of words. */
export function splitCommands(script: string): SimpleCommand[] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  const flushWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const flushCommand = () => {
    flushWord();
    if (words.length) commands.push(words);
    words = [];
  };
  const s = script.replace(/\\\r?\n/g, ' ');
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? '';
    if (c === "'" || c === '"') {
      const end = s.indexOf(c, i + 1);
      word += end < 0 ? s.slice(i + 1) : s.slice(i + 1, end);
      inWord = true;
      i = end < 0 ? s.length : end;
    } else if (c === '\\') {
      word += s[i + 1] ?? '';
      inWord = true;
      i++;
    } else if (c === '#' && !inWord) {
      // A comment runs to the end of the line.
      const nl = s.indexOf('\n', i);
      i = nl < 0 ? s.length : nl - 1;
    } else if (c === '\n' || c === ';' || c === '&' || c === '|' || c === '(' || c === ')') {
      flushCommand();
    } else if (/\s/.test(c)) {
      flushWord();
    } else {
      word += c;
      inWord = true;
    }
  }
  flushCommand();
  const out: SimpleCommand[] = [];
  for (const cmd of commands) {
    let k = 0;
    const env: Record<string, string> = {};
    while (k < cmd.length) {
      const w = cmd[k] ?? '';
      const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(w);
      if (assignment) {
        env[assignment[1] ?? ''] = assignment[2] ?? '';
        k++;
      } else if (WRAPPERS.has(w)) k++;
      else if (w.startsWith('-') && k > 0 && WRAPPERS.has(cmd[k - 1] ?? '')) k++;
      else break;
    }
    const programPath = cmd[k];
    if (programPath === undefined || ['if', 'then', 'else', 'fi', 'do', 'done'].includes(programPath)) {
      if (programPath !== undefined && cmd.length > k + 1) {
        // `if apt-get install ...; then`: look at the command after the keyword.
        out.push(...splitCommands(cmd.slice(k + 1).join(' ')));
      }
      continue;
    }
    const program = programPath.slice(programPath.lastIndexOf('/') + 1);
    out.push({ program, args: cmd.slice(k + 1), text: cmd.slice(k).join(' '), env });
  }
  return out;
}

/** The first argument that is not an option (`apt-get -y install` → `install`). */
export function subcommand(cmd: SimpleCommand): string | undefined {
  return cmd.args.find((a) => !a.startsWith('-'));
}

/** Arguments after the subcommand that are not options. */
export function operands(cmd: SimpleCommand): string[] {
  const sub = cmd.args.findIndex((a) => !a.startsWith('-'));
  return sub < 0 ? [] : cmd.args.slice(sub + 1).filter((a) => !a.startsWith('-'));
}
