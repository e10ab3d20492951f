/**
 * The dashboard page's script, as text (it runs in the browser, not in Node). It draws the state
 * from the JSON block, then from each SSE `state` event, without a reload. Every value from the
 * cluster goes into the DOM through textContent or an attribute set by the DOM API, never through
 * innerHTML, so no value can become markup.
 */
export const PAGE_SCRIPT = String.raw`
'use strict';
(function () {
  var PHASES = {
    Succeeded: { sym: '\u2713', text: 'pulled' },
    Pulling: { sym: '\u21bb', text: 'pulling' },
    Pending: { sym: '\u2026', text: 'pending' },
    Failed: { sym: '\u2717', text: 'failed' },
    Absent: { sym: '\u00b7', text: 'not targeted' }
  };
  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function bytes(n) {
    if (n === undefined || n === null) return '\u2013';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + '\u00a0' + units[i];
  }
  // Column heads: the repository and a short digest; the full reference is in the title.
  function shortImage(ref) {
    var s = ref.replace(/^[^/]*[.:][^/]*\//, '');
    return s.replace(/@(sha256:[0-9a-f]{12})[0-9a-f]+$/, '@$1\u2026');
  }
  function secs(n) { return n === undefined || n === null ? '\u2013' : n.toFixed(1) + '\u00a0s'; }
  function pct(n) { return n === undefined || n === null ? '\u2013' : (n * 100).toFixed(1) + '\u00a0%'; }
  function table(head, rows) {
    var t = el('table');
    var tr = el('tr');
    head.forEach(function (h) { tr.appendChild(el('th', h)); });
    var thead = el('thead'); thead.appendChild(tr); t.appendChild(thead);
    var tb = el('tbody');
    rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (c) { row.appendChild(el('td', c)); });
      tb.appendChild(row);
    });
    t.appendChild(tb);
    return t;
  }
  function section(id, build) {
    var box = $(id);
    clear(box);
    var content = build();
    if (content === null) box.appendChild(el('p', 'no data yet', 'empty'));
    else box.appendChild(content);
  }

  function drawSummary(s) {
    var c = s.counts;
    var items = [['PrePulls', c.prePulls], ['nodes', c.nodes], ['images', c.images],
      ['pulled', c.succeeded], ['pulling', c.pulling], ['pending', c.pending], ['failed', c.failed]];
    var box = $('summary');
    clear(box);
    items.forEach(function (it) {
      var d = el('div', null, 'stat');
      d.appendChild(el('span', it[1], 'num'));
      d.appendChild(el('span', it[0], 'label'));
      d.dataset.stat = it[0];
      box.appendChild(d);
    });
    $('replica').textContent = 'replica ' + s.replica.identity +
      (s.replica.leader ? ' (leader)' : ' (standby)') + (s.replica.synced ? '' : ', caches syncing');
    section('prepulls', function () {
      if (s.prePulls.length === 0) return null;
      return table(['PrePull', 'images', 'nodes', 'pulled', 'pulling', 'failed', 'ready'],
        s.prePulls.map(function (p) {
          return [p.namespace + '/' + p.name, p.images, p.nodes.desired, p.nodes.succeeded,
            p.nodes.pulling, p.nodes.failed, p.ready ? p.ready.status + ' ' + p.ready.reason : '\u2013'];
        }));
    });
  }

  function drawMatrix(s) {
    var m = s.matrix;
    var note = 'showing ' + m.rows.length + ' of ' + m.matchingNodes + ' nodes' +
      (m.filter ? ' matching \u201c' + m.filter + '\u201d' : '') + ', ' + m.images.length + ' of ' +
      m.totalImages + ' images';
    $('matrix-note').textContent = note;
    section('matrix', function () {
      if (m.rows.length === 0) return null;
      var t = el('table', null, 'matrix');
      var cap = el('caption', 'Pre-pull state of each image on each node'); cap.className = 'sr'; t.appendChild(cap);
      var head = el('tr');
      head.appendChild(el('th', 'node'));
      m.images.forEach(function (img) {
        var th = el('th', shortImage(img), 'img'); th.title = img; th.scope = 'col'; head.appendChild(th);
      });
      var thead = el('thead'); thead.appendChild(head); t.appendChild(thead);
      var tb = el('tbody');
      m.rows.forEach(function (r) {
        var tr = el('tr');
        tr.dataset.node = r.node;
        var th = el('th', r.node); th.scope = 'row'; tr.appendChild(th);
        r.cells.forEach(function (c, i) {
          var p = PHASES[c.phase] || PHASES.Absent;
          var td = el('td', null, 'cell ' + c.phase);
          td.dataset.image = m.images[i];
          td.dataset.phase = c.phase;
          td.appendChild(el('span', p.sym, 'sym'));
          td.appendChild(el('span', ' ' + p.text + (c.reason ? ': ' + c.reason : ''), 'txt'));
          var label = r.node + ', ' + m.images[i] + ': ' + p.text +
            (c.reason ? ' (' + c.reason + ')' : '') + (c.message ? ' \u2013 ' + c.message : '') +
            (c.attempts ? ', attempt ' + c.attempts : '');
          td.title = label;
          td.setAttribute('aria-label', label);
          tr.appendChild(td);
        });
        tb.appendChild(tr);
      });
      t.appendChild(tb);
      return t;
    });
  }

  function drawCache(s) {
    section('cache', function () {
      if (!s.cache) return null;
      var wrap = el('div');
      if (s.cacheMatching > s.cache.length)
        wrap.appendChild(el('p', 'showing ' + s.cache.length + ' of ' + s.cacheMatching + ' nodes', 'note'));
      wrap.appendChild(table(['node', 'cache use', 'blob hit ratio', 'served', 'from upstream', 'from peers', 'read at',
        'read by'],
        s.cache.map(function (c) {
          return [c.node, bytes(c.storeBytes), pct(c.hitRatio), bytes(c.servedBytes), bytes(c.upstreamBytes),
            bytes(c.peerBytes), c.error ? 'error: ' + c.error : c.scrapedAt,
            c.source === 'agent' ? 'node agent' : 'controller'];
        })));
      return wrap;
    });
    section('bytes', function () {
      var b = s.bytes;
      if (!b) return null;
      var total = b.upstream + b.cache + (b.peers || 0);
      var wrap = el('div');
      [['from upstream', b.upstream, 'up'], ['from cache', b.cache, 'hit'], ['from peers', b.peers, 'peer']]
        .forEach(function (r) {
          var row = el('div', null, 'bar-row');
          row.appendChild(el('span', r[0], 'bar-label'));
          var bar = el('span', null, 'bar ' + r[2]);
          var frac = total > 0 && r[1] ? r[1] / total : 0;
          bar.style.width = (frac * 100).toFixed(1) + '%';
          row.appendChild(el('span', null, 'bar-track')).appendChild(bar);
          row.appendChild(el('span', r[1] === undefined ? 'not reported yet' : bytes(r[1]) + ' (' + pct(frac) + ')', 'bar-val'));
          wrap.appendChild(row);
        });
      return wrap;
    });
  }

  function drawPulls(s) {
    section('slowest', function () {
      if (!s.slowest) return null;
      return table(['seconds', 'image', 'node', 'pod', 'via', 'outcome', 'cause'],
        s.slowest.map(function (r) {
          return [secs(r.seconds), r.image, r.node, r.namespace + '/' + r.pod, r.via, r.outcome, r.cause || '\u2013'];
        }));
    });
    section('before-after', function () {
      if (!s.beforeAfter) return null;
      function cell(x) { return x ? secs(x.medianSeconds) + ' (p90 ' + secs(x.p90Seconds) + ', n=' + x.count + ')' : '\u2013'; }
      return table(['image', 'direct (before)', 'through Hoist (after)', 'change'],
        s.beforeAfter.map(function (r) {
          var change = r.direct && r.hoist && r.direct.medianSeconds > 0
            ? ((r.hoist.medianSeconds / r.direct.medianSeconds - 1) * 100).toFixed(0) + '\u00a0%' : '\u2013';
          return [r.image, cell(r.direct), cell(r.hoist), change];
        }));
    });
  }

  function draw(s) {
    drawSummary(s);
    drawMatrix(s);
    drawCache(s);
    drawPulls(s);
    $('updated').textContent = 'updated ' + s.generatedAt;
    document.body.dataset.generated = s.generatedAt;
  }

  var source = null;
  function connect(filter) {
    if (source) source.close();
    var url = 'api/v1/events' + (filter ? '?node=' + encodeURIComponent(filter) : '');
    source = new EventSource(url);
    source.addEventListener('state', function (ev) {
      $('live').textContent = 'live';
      $('live').className = 'live on';
      draw(JSON.parse(ev.data));
    });
    source.onerror = function () {
      $('live').textContent = 'reconnecting\u2026';
      $('live').className = 'live off';
    };
  }

  draw(JSON.parse($('initial-state').textContent));
  var timer = null;
  $('filter').addEventListener('input', function (ev) {
    clearTimeout(timer);
    var v = ev.target.value;
    timer = setTimeout(function () { connect(v.trim()); }, 300);
  });
  connect('');
})();
`;
