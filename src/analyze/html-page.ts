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

const CSS = `
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:960px;color:#1f2933;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}.sub{color:#52606d;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #d9e2ec;border-radius:8px;padding:.6rem .9rem;min-width:150px}
.card b{display:block;font-size:1.3rem}.card span{color:#52606d;font-size:.85rem}
section{margin:1.6rem 0}h2{font-size:1.15rem;border-bottom:1px solid #e4e7eb;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eef1f4}
td.n{text-align:right;font-variant-numeric:tabular-nums}
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

function cell(v: string | number, i: number): string {
  return typeof v === 'number' || (i > 0 && /^[\d.,]+( [KMGT]?B| s|%)?$/.test(v))
    ? `<td class="n">${escapeXml(String(v))}</td>`
    : `<td>${escapeXml(String(v))}</td>`;
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
      if (s.table) {
        html += `<table><thead><tr>${s.table.columns.map((c) => `<th>${escapeXml(c)}</th>`).join('')}</tr></thead><tbody>`;
        html += s.table.rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('');
        html += '</tbody></table>';
      }
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
