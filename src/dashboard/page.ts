import { randomBytes } from 'node:crypto';
import { jsonForScript } from './escape.js';
import { PAGE_SCRIPT } from './page-script.js';
import type { DashboardState } from './state.js';

/**
 * The dashboard page: one self-contained HTML document (inline CSS and script, system fonts, no
 * external asset), so it works in an air-gapped cluster. The Content-Security-Policy allows only
 * this response's own inline script and style (by nonce) and connections back to the same origin
 * (the SSE stream), so even a value that slipped past escaping could load or run nothing.
 */

const STYLE = `
:root { color-scheme: light dark; --ok:#1a7f37; --run:#0969da; --wait:#9a6700; --bad:#cf222e; --mute:#6e7781;
  --bg:#ffffff; --fg:#1f2328; --line:#d0d7de; --soft:#f6f8fa; }
@media (prefers-color-scheme: dark) { :root { --bg:#0d1117; --fg:#e6edf3; --line:#30363d; --soft:#161b22; } }
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; padding: .75rem 1rem;
  border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.2rem; margin: 0; }
header .meta { color: var(--mute); font-size: .85rem; overflow-wrap: anywhere; }
.live { font-size: .8rem; padding: .1rem .5rem; border-radius: 1rem; border: 1px solid var(--line); }
.live.on { color: var(--ok); } .live.off { color: var(--bad); }
main { padding: 0 1rem 2rem; max-width: 100%; }
section { margin-top: 1.25rem; min-width: 0; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
.scroll { overflow-x: auto; max-width: 100%; border: 1px solid var(--line); border-radius: 6px; }
#summary { display: flex; flex-wrap: wrap; gap: .5rem; }
.stat { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: .4rem .7rem; min-width: 6rem; }
.stat .num { display: block; font-size: 1.3rem; font-weight: 600; }
.stat .label { color: var(--mute); font-size: .8rem; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
th, td { padding: .3rem .5rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
td { overflow-wrap: break-word; }
thead th { background: var(--soft); position: sticky; top: 0; }
table.matrix { width: auto; }
table.matrix th.img { max-width: 12rem; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
table.matrix tbody th { white-space: nowrap; position: sticky; left: 0; background: var(--bg); }
td.cell { white-space: nowrap; font-size: .8rem; border-left: 1px solid var(--line); }
td.cell .sym { font-weight: 700; }
td.Succeeded { color: var(--ok); background: color-mix(in srgb, var(--ok) 12%, transparent); }
td.Pulling { color: var(--run); background: color-mix(in srgb, var(--run) 12%, transparent); }
td.Pending { color: var(--wait); background: color-mix(in srgb, var(--wait) 10%, transparent); }
td.Failed { color: var(--bad); background: color-mix(in srgb, var(--bad) 14%, transparent); font-weight: 600; }
td.Absent { color: var(--mute); }
.empty { color: var(--mute); font-style: italic; margin: .25rem 0; }
.note { color: var(--mute); font-size: .8rem; margin: .25rem 0; }
.filter { display: flex; gap: .5rem; align-items: center; margin-bottom: .5rem; flex-wrap: wrap; }
.filter input { font: inherit; padding: .25rem .5rem; border: 1px solid var(--line); border-radius: 4px;
  background: var(--bg); color: var(--fg); width: 16rem; max-width: 100%; }
.bar-row { display: grid; grid-template-columns: 8rem minmax(3rem, 1fr) auto; gap: .5rem; align-items: center; margin: .25rem 0; }
.bar-track { background: var(--soft); border: 1px solid var(--line); height: .9rem; border-radius: 3px; overflow: hidden; }
.bar { display: block; height: 100%; } .bar.up { background: var(--wait); } .bar.hit { background: var(--ok); }
.bar.peer { background: var(--run); }
.bar-val { font-size: .8rem; white-space: nowrap; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 28rem), 1fr)); gap: 0 1.5rem; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
@media (max-width: 480px) { td.cell .txt { display: none; } .bar-row { grid-template-columns: 6rem 1fr; }
  .bar-val { grid-column: 2; } }
`;

export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The page with `state` as its first drawing, and the CSP header that goes with it. */
export function renderPage(state: DashboardState): { html: string; csp: string } {
  const nonce = randomBytes(16).toString('base64');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hoist dashboard</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<header>
  <h1>Hoist</h1>
  <span id="live" class="live off" role="status">connecting…</span>
  <span class="meta" id="replica"></span>
  <span class="meta" id="updated"></span>
</header>
<main>
  <section aria-labelledby="h-summary"><h2 id="h-summary">Pre-pulls</h2>
    <div id="summary"></div>
    <div class="scroll" id="prepulls"></div>
  </section>
  <section aria-labelledby="h-matrix"><h2 id="h-matrix">Nodes × images</h2>
    <div class="filter"><label for="filter">Filter nodes</label>
      <input id="filter" type="search" placeholder="node name contains…" autocomplete="off" maxlength="253"></div>
    <p class="note" id="matrix-note"></p>
    <div class="scroll" id="matrix"></div>
  </section>
  <div class="grid2">
    <section aria-labelledby="h-cache"><h2 id="h-cache">Node caches</h2><div class="scroll" id="cache"></div></section>
    <section aria-labelledby="h-bytes"><h2 id="h-bytes">Bytes by source</h2><div id="bytes"></div></section>
  </div>
  <section aria-labelledby="h-slowest"><h2 id="h-slowest">Slowest recent pulls</h2><div class="scroll" id="slowest"></div></section>
  <section aria-labelledby="h-ba"><h2 id="h-ba">Pull time before / after Hoist</h2><div class="scroll" id="before-after"></div></section>
</main>
<script type="application/json" id="initial-state">${jsonForScript(state)}</script>
<script nonce="${nonce}">${PAGE_SCRIPT}</script>
</body>
</html>
`;
  return { html, csp: contentSecurityPolicy(nonce) };
}
