import { isDeepStrictEqual } from 'node:util';
import { parse } from 'smol-toml';

/**
 * Sets one string key in one table of a TOML file by editing its text, so every other byte
 * (comments, spacing, key order, line ends) stays as the user wrote it: containerd's config.toml
 * is the operator's file, and `hoist node unconfigure` must be able to tell whether it changed
 * since. The result is parsed back and compared with the original document plus that one key;
 * when the text is laid out in a way this edit cannot handle (the table defined inline or by
 * dotted keys, a multi-line value), it returns undefined rather than guess. Pure.
 */

const HEADER = /^\s*\[(?!\[)\s*(.+?)\s*\](?!\])\s*(?:#.*)?$/;
const ANY_HEADER = /^\s*\[/;

/** Splits a dotted TOML key (`plugins."io.containerd.cri.v1.images".registry`) into its parts. */
export function splitTomlKey(key: string): string[] | undefined {
  const parts: string[] = [];
  let i = 0;
  while (i < key.length) {
    while (key[i] === ' ' || key[i] === '\t') i++;
    const quote = key[i];
    if (quote === '"' || quote === "'") {
      const end = key.indexOf(quote, i + 1);
      if (end < 0) return undefined;
      const raw = key.slice(i + 1, end);
      // Escapes in basic-string keys are rare in config files; refuse rather than mis-read them.
      if (quote === '"' && raw.includes('\\')) return undefined;
      parts.push(raw);
      i = end + 1;
    } else {
      const m = /^[A-Za-z0-9_-]+/.exec(key.slice(i));
      if (!m) return undefined;
      parts.push(m[0]);
      i += m[0].length;
    }
    while (key[i] === ' ' || key[i] === '\t') i++;
    if (i < key.length) {
      if (key[i] !== '.') return undefined;
      i++;
    }
  }
  return parts;
}

export function tomlKey(parts: string[]): string {
  return parts.map((k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k))).join('.');
}

function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

function withKey(doc: unknown, table: string[], key: string, value: string): unknown {
  const out = plain(doc) as Record<string, unknown>;
  let node = out;
  for (const k of table) {
    if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
    node = node[k] as Record<string, unknown>;
  }
  node[key] = value;
  return out;
}

/** `text` with `[table] key = "value"` set; undefined when no safe text edit gives that document. */
export function setTomlString(text: string, table: string[], key: string, value: string): string | undefined {
  let before: unknown;
  try {
    before = parse(text);
  } catch {
    return undefined;
  }
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = text.split(/\r?\n/);
  const assignment = (indent: string) => `${indent}${key} = ${JSON.stringify(value)}`;
  const keyLine = new RegExp(`^(\\s*)${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*=`);
  const start = lines.findIndex((line) => {
    const m = HEADER.exec(line);
    const parts = m?.[1] === undefined ? undefined : splitTomlKey(m[1]);
    return parts !== undefined && isDeepStrictEqual(parts, table);
  });
  let out: string[];
  if (start >= 0) {
    let end = lines.findIndex((line, i) => i > start && ANY_HEADER.test(line));
    if (end < 0) end = lines.length;
    const at = lines.findIndex((line, i) => i > start && i < end && keyLine.test(line));
    out = [...lines];
    if (at >= 0) {
      out[at] = assignment(keyLine.exec(lines[at] ?? '')?.[1] ?? '');
    } else {
      const sibling = lines.slice(start + 1, end).find((l) => /^\s*[A-Za-z0-9_"'-]/.test(l));
      out.splice(start + 1, 0, assignment(sibling ? (/^\s*/.exec(sibling)?.[0] ?? '  ') : '  '));
    }
  } else {
    out = [...lines];
    // Keep the file's final newline (or its absence) where it was, then add the new table.
    if (out.length > 0 && out[out.length - 1] === '') out.pop();
    if (out.length > 0) out.push('');
    out.push(`[${tomlKey(table)}]`, assignment('  '), '');
  }
  const result = out.join(eol);
  let after: unknown;
  try {
    after = parse(result);
  } catch {
    return undefined;
  }
  return isDeepStrictEqual(plain(after), withKey(before, table, key, value)) ? result : undefined;
}
