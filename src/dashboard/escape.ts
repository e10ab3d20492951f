/**
 * Escaping for the dashboard page. Values from the cluster (status messages are free text an
 * agent or a registry wrote) reach the page two ways: inside the HTML document, as the initial
 * state in a `<script type="application/json">` block, and later through SSE, where the page's
 * script puts them into the DOM with textContent only. In the JSON block a `</script>` or `<!--`
 * in a value would end the block (HTML's script data state), so every `<`, `>` and `&` becomes a
 * JSON \u escape; U+2028/2029 too, which older parsers took as line ends.
 */

const JSON_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

/** JSON safe to place between `<script type="application/json">` and `</script>`. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => JSON_ESCAPES[c]!);
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text safe in HTML element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}
