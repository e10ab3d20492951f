import type { Advice } from './pull-report.js';
import { escapeXml } from './svg-charts.js';

/**
 * One self-contained HTML file: inline CSS, inline SVG charts, one inline script, and a
 * Content-Security-Policy that forbids loading anything from elsewhere. The script marks the page
 * as rendered for automated checks: `document.title` becomes `ok:<charts>` once every chart has
 * drawn marks, or `error:<what>` on a script error or an empty chart. Pure.
 */

export interface Section {
  title: string;
  /** An SVG chart (from svg-charts.ts) or nothing. */
  chart?: string;
  table?: { columns: string[]; rows: Array<Array<string | number>> };
  note?: string;
}

export interface Page {
  title: string;
  subtitle: string;
  summary: Array<[string, string]>;
  advice: Advice[];
  sections: Section[];
}

/*
 * Layout rules that keep the report inside any window, from a phone to a wide screen: the page
 * never scrolls sideways; a table wider than its section scrolls inside its own `.scroll` box;
 * names (image references, digests) wrap only at `<wbr>` points after `/` and before `:` and `@`,
 * and words too long for a line wrap rather than overflow; a number and its unit never part.
 */
const CSS = `
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2933;padding:0 1rem;overflow-wrap:break-word}
h1{font-size:1.6rem;margin-bottom:.2rem}.sub{color:#52606d;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #d9e2ec;border-radius:8px;padding:.6rem .9rem;min-width:150px}
.card b{display:block;font-size:1.3rem;white-space:nowrap}.card span{color:#52606d;font-size:.85rem}
section{margin:1.6rem 0;min-width:0}h2{font-size:1.15rem;border-bottom:1px solid #e4e7eb;padding-bottom:.3rem}
svg.chart{display:block;max-width:100%;height:auto}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{text-align:left;vertical-align:top;padding:.25rem .5rem;border-bottom:1px solid #eef1f4}
th{white-space:nowrap}
td.n,th.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.msg{min-width:16em}
.advice li{margin:.4rem 0}.fix{color:#3e4c59}.topic{font-weight:600}
`;

const SCRIPT = `
(function(){
  window.onerror=function(m){document.title='error:'+m;};
  try{
    var charts=document.querySelectorAll('svg.chart');
    for(var i=0;i<charts.length;i++){
      var marks=charts[i].querySelectorAll('rect,path,circle,line');
      var box=charts[i].getBoundingClientRect();
      if(marks.length===0||box.width===0){document.title='error:empty chart '+charts[i].getAttribute('aria-label');return;}
    }
    document.title='ok:'+charts.length;
  }catch(e){document.title='error:'+e.message;}
})();
`;

/** A number, or a number with its unit: `12`, `1.5 s`, `3.4 MB`, `12.0 MB/s`, `40%`. */
const NUMERIC = /^[\d.,]+( ?[KMGT]?i?B(\/s)?| ?s|%)?$/;

const isNumeric = (v: string | number, column: number) =>
  typeof v === 'number' || (column > 0 && NUMERIC.test(v));

/**
 * A name (no spaces: an image reference, a digest, a node) with `<wbr>` where it may wrap: after
 * each `/`, and before `:` and `@`, so `registry/path/name:tag` breaks between its parts.
 */
function breakable(text: string): string {
  const escaped = escapeXml(text);
  return /\s/.test(text) ? escaped : escaped.replace(/\//g, '/<wbr>').replace(/([:@])/g, '<wbr>$1');
}

function cell(v: string | number, column: number): string {
  if (isNumeric(v, column)) return `<td class="n">${escapeXml(String(v))}</td>`;
  const text = String(v);
  return /\s/.test(text) && text.length > 40
    ? `<td class="msg">${escapeXml(text)}</td>`
    : `<td>${breakable(text)}</td>`;
}

function table(t: NonNullable<Section['table']>, title: string): string {
  // A column whose every cell is a number is headed like one: right-aligned over its digits.
  const numeric = t.columns.map((_, c) => t.rows.length > 0 && t.rows.every((r) => isNumeric(r[c] ?? '', c)));
  const head = t.columns.map((c, i) => `<th${numeric[i] ? ' class="n"' : ''}>${escapeXml(c)}</th>`).join('');
  const body = t.rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('');
  // A focusable, labelled region, so that a keyboard can scroll a table wider than the window.
  return `<div class="scroll" role="region" tabindex="0" aria-label="${escapeXml(title)}"><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

export function renderPage(page: Page): string {
  const cards = page.summary
    .map(
      ([label, value]) =>
        `<div class="card"><b>${escapeXml(value)}</b><span>${escapeXml(label)}</span></div>`,
    )
    .join('');
  const advice = page.advice.length
    ? `<section><h2>What to change</h2><ul class="advice">${page.advice
        .map(
          (a) =>
            `<li><span class="topic">${escapeXml(a.topic)}</span>: ${escapeXml(a.message)}<br><span class="fix">→ ${escapeXml(a.fix)}</span></li>`,
        )
        .join('')}</ul></section>`
    : '';
  const sections = page.sections
    .map((s) => {
      let html = `<section><h2>${escapeXml(s.title)}</h2>`;
      if (s.note) html += `<p class="sub">${escapeXml(s.note)}</p>`;
      if (s.chart) html += s.chart;
      if (s.table) html += table(s.table, s.title);
      return `${html}</section>`;
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(page.title)}</title><style>${CSS}</style></head>
<body><h1>${escapeXml(page.title)}</h1><p class="sub">${escapeXml(page.subtitle)}</p>
<div class="cards">${cards}</div>
${advice}
${sections}
<script>${SCRIPT}</script>
</body></html>
`;
}
