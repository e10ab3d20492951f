import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, jsonForScript } from './escape.js';
import { renderPage } from './page.js';
import { buildState } from './state.js';

const HOSTILE = '</script><script>alert(1)</script><!--<img src=x onerror=alert(2)>\u2028&amp;';

describe('dashboard page escaping', () => {
  it('escapes text for HTML content and attributes', () => {
    assert.equal(
      escapeHtml(`<a href="x" title='y'>&</a>`),
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });

  it('keeps JSON inside a script block: no <, >, & or line separators, and it parses back', () => {
    const json = jsonForScript({ v: HOSTILE });
    assert.doesNotMatch(json, /[<>&\u2028\u2029]/);
    assert.deepEqual(JSON.parse(json), { v: HOSTILE });
  });

  it('puts a hostile status message into the page only as escaped JSON', () => {
    const state = buildState({
      prePulls: [],
      nodePulls: [
        {
          metadata: { name: 'n1' },
          spec: {
            nodeName: 'n1',
            maxConcurrentPulls: 1,
            images: [
              {
                image: 'a',
                pin: false,
                retryLimit: 1,
                retryBackoffSeconds: 1,
                progressTimeoutSeconds: 10,
                sources: [],
              },
            ],
          },
          status: { images: [{ image: 'a', phase: 'Failed', reason: 'X', message: HOSTILE }] },
        },
      ],
      identity: '<b>r</b>',
      leader: false,
      synced: true,
      now: new Date(0),
    });
    const { html, csp } = renderPage(state);
    assert.ok(!html.includes('alert('.concat('1)</script>')), 'no raw script from the value');
    assert.ok(!html.includes('<img'), 'no raw markup from the value');
    assert.ok(!html.includes('<b>r</b>'));
    // Exactly the page's own two scripts and one style, the executable one carrying the nonce.
    assert.equal(html.match(/<script/g)?.length, 2);
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    assert.ok(nonce);
    assert.ok(html.includes(`<script nonce="${nonce}">`));
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /connect-src 'self'/);
    assert.doesNotMatch(html, /\b(src|href)=["']?(https?:)?\/\//, 'no external resources');
    const block = /<script type="application\/json" id="initial-state">([^<]*)<\/script>/.exec(html);
    assert.ok(block, 'the state block ends where the page ends it');
    assert.equal(JSON.parse(block[1]!).matrix.rows[0].cells[0].message, HOSTILE);
  });
});
