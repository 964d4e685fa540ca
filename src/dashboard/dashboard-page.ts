import { createHash } from 'node:crypto';

// The dashboard's one page: inline CSS and JS, nothing loaded from anywhere
// else (it must work with no internet). It polls api/state every POLL_MS and
// builds every element with textContent / setAttribute, never innerHTML, so a
// credential label, run name or error code can never become markup. The chart
// is hand-drawn SVG. Relative URLs keep it working behind a path prefix.

/** How often the page asks for fresh state. */
export const POLL_MS = 2_000;

const STYLE = `
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f6f7f9; --card:#fff; --ok:#12805c; --rest:#b54708; --bad:#b42318; --run:#175cd3; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; align-items:baseline; gap:16px; padding:14px 24px; background:var(--card); border-bottom:1px solid var(--line); }
header h1 { margin:0; font-size:18px; }
header .grow { flex:1; }
header a { color:var(--run); text-decoration:none; }
main { padding:16px 24px 32px; display:grid; gap:16px; max-width:1400px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px; overflow-x:auto; }
h2 { font-size:15px; margin:0 0 8px; }
h2 small { font-weight:normal; color:var(--muted); margin-left:8px; }
table { border-collapse:collapse; width:100%; font-variant-numeric: tabular-nums; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); white-space:nowrap; vertical-align:middle; }
th { font-weight:600; color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.03em; }
td.num, th.num { text-align:right; }
tr:last-child td { border-bottom:none; }
.muted { color:var(--muted); }
.empty { color:var(--muted); padding:8px 10px; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; background:#eef2f6; color:var(--muted); }
.badge.complete, .badge.ok { background:#dcfae6; color:var(--ok); }
.badge.running { background:#d1e9ff; color:var(--run); }
.badge.resting { background:#fef0c7; color:var(--rest); }
.badge.stopped, .badge.quarantined { background:#fee4e2; color:var(--bad); }
progress { width:140px; height:10px; vertical-align:middle; margin-right:8px; accent-color:var(--run); }
.errors { color:var(--bad); font-size:12px; }
#status.stale { color:var(--bad); font-weight:600; }
#chart { width:100%; height:auto; display:block; }
#chart .grid { stroke:var(--line); stroke-width:1; }
#chart .axis { fill:var(--muted); font-size:11px; }
#chart polyline { fill:none; stroke-width:2; stroke-linejoin:round; }
#chart polyline.rejected { stroke-dasharray:5 4; stroke-width:1.5; }
#legend { display:flex; flex-wrap:wrap; gap:6px 18px; margin-top:6px; font-size:12px; }
#legend svg { vertical-align:middle; margin-right:4px; }
`;

const SCRIPT = `
'use strict';
(function () {
  var POLL_MS = ${POLL_MS};
  var COLORS = ['#175cd3', '#12805c', '#c11574', '#b54708', '#6938ef', '#0e9384', '#e04f16', '#475467'];
  var SVG = 'http://www.w3.org/2000/svg';
  var last = null;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function td(text, cls) { return el('td', cls ? { class: cls } : null, text); }
  function badge(state, text) { return el('span', { class: 'badge ' + state }, text || state); }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function clock(ms) { return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }); }
  function when(iso) {
    if (!iso) return '';
    var d = new Date(iso);
    var today = new Date().toDateString() === d.toDateString();
    return today ? clock(d.getTime()) : d.toLocaleString();
  }
  function duration(s) {
    if (s === null || s === undefined || !isFinite(s)) return '';
    s = Math.round(s);
    if (s < 60) return s + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + String(s % 60).padStart(2, '0') + ' s';
    var h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + String(m % 60).padStart(2, '0') + ' min';
    return Math.round(h / 24) + ' d';
  }
  function replaceBody(id, rows, columns, emptyText) {
    var body = document.getElementById(id);
    body.replaceChildren.apply(body, rows);
    if (rows.length === 0) {
      var tr = el('tr');
      tr.appendChild(el('td', { colspan: columns, class: 'empty' }, emptyText));
      body.appendChild(tr);
    }
  }

  function renderRuns(state) {
    var rows = state.runs.map(function (r) {
      var finished = r.succeeded + r.failed;
      var pct = r.total > 0 ? Math.floor((100 * finished) / r.total) : (r.sealed ? 100 : 0);
      var tr = el('tr', { 'data-run': r.run, 'data-state': r.state, 'data-finished': finished, 'data-total': r.total });
      tr.appendChild(td(r.run));
      var st = td(null);
      st.appendChild(badge(r.state === 'writing output' || r.state === 'enqueueing' ? 'busy' : r.state, r.state));
      if (r.aborted) st.appendChild(el('div', { class: 'errors' }, r.aborted));
      tr.appendChild(st);
      var pr = td(null, 'progress');
      pr.appendChild(el('progress', { max: Math.max(r.total, 1), value: finished }));
      pr.appendChild(el('span', { class: 'progress-text' }, num(finished) + ' / ' + num(r.total) + (r.sealed ? '' : '+') + ' (' + pct + '%)'));
      tr.appendChild(pr);
      tr.appendChild(td(num(r.succeeded), 'num'));
      var failed = td(num(r.failed), 'num');
      var codes = Object.keys(r.errors).sort(function (a, b) { return r.errors[b] - r.errors[a]; });
      if (codes.length) failed.appendChild(el('div', { class: 'errors' }, codes.map(function (c) { return c + ' ' + num(r.errors[c]); }).join(', ')));
      tr.appendChild(failed);
      tr.appendChild(td(num(r.pending), 'num'));
      tr.appendChild(td(r.idsPerSecond >= 10 ? num(Math.round(r.idsPerSecond)) : r.idsPerSecond.toFixed(1), 'num'));
      tr.appendChild(td(r.state === 'complete' ? 'done' : duration(r.etaSeconds), 'num'));
      tr.appendChild(td(when(r.createdAt), 'muted'));
      tr.appendChild(td(r.finishedAt ? when(r.finishedAt) : '', 'muted'));
      return tr;
    });
    replaceBody('runs', rows, 10, 'No runs in this queue yet.');
    var j = state.jobs;
    document.getElementById('jobs').textContent = 'batch jobs: ' + (j.active || 0) + ' active, ' + (j.waiting || 0) + ' waiting, ' + (j.delayed || 0) + ' delayed, ' + (j.failed || 0) + ' failed';
  }

  function renderCredentials(state) {
    var rows = state.credentials.map(function (c) {
      var tr = el('tr', { 'data-credential': c.label, 'data-state': c.state });
      tr.appendChild(td(c.label));
      var st = td(null, 'state');
      st.appendChild(badge(c.state));
      if (c.until) {
        var left = Math.max(0, Math.round((Date.parse(c.until) - state.now) / 1000));
        st.appendChild(el('span', { class: 'muted' }, ' until ' + when(c.until) + ' (' + duration(left) + ')' + (c.reason ? ': ' + c.reason : '')));
      }
      tr.appendChild(st);
      tr.appendChild(td(c.budget));
      tr.appendChild(td(c.remaining === null ? '–' : num(c.remaining), 'num'));
      tr.appendChild(td(num(c.requests), 'num'));
      tr.appendChild(td(num(c.n429), 'num'));
      tr.appendChild(td(num(c.n401), 'num'));
      tr.appendChild(td(num(c.n403), 'num'));
      return tr;
    });
    replaceBody('credentials', rows, 8, 'No credentials configured.');
  }

  /**
   * Requests per second in each 10 s bucket, per credential, as step lines (a
   * bucket is a flat stretch). The chart covers the last hour, zoomed to where
   * there is data (at least a minute). The bucket under way is drawn once it
   * is 3 s old (workers add their counts every 2 s), at its rate so far.
   */
  function renderChart(state) {
    var tp = state.throughput;
    var W = 960, H = 260, L = 52, R = 16, T = 14, B = 28;
    var chart = document.getElementById('chart');
    chart.replaceChildren();
    var firstAt = null, busy = 0, total = 0;
    tp.points.forEach(function (p) {
      var n = p.accepted.concat(p.rejected).reduce(function (a, b) { return a + b; }, 0);
      if (n > 0) { busy++; total += n; if (firstAt === null) firstAt = p.at; }
    });
    var end = state.now;
    var span = firstAt === null ? 3600000 : Math.min(3600000, Math.max(60000, end - firstAt + tp.bucketMs));
    var start = end - span;
    var pts = tp.points.filter(function (p) { return p.at + tp.bucketMs > start && end - p.at >= 3000; });
    function perSecond(p, n) { return n / (Math.min(tp.bucketMs, end - p.at) / 1000); }
    var max = 0;
    pts.forEach(function (p) {
      p.accepted.forEach(function (n) { max = Math.max(max, perSecond(p, n)); });
      p.rejected.forEach(function (n) { max = Math.max(max, perSecond(p, n)); });
    });
    var step = niceStep(max / 4);
    var top = Math.max(step * 4, step * Math.ceil(max / step));
    function x(t) { return L + ((Math.min(Math.max(t, start), end) - start) / span) * (W - L - R); }
    function y(v) { return T + (1 - v / top) * (H - T - B); }
    for (var v = 0; v <= top + 1e-9; v += step) {
      chart.appendChild(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      chart.appendChild(svg('text', { class: 'axis', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, step < 1 ? v.toFixed(1) : Math.round(v)));
    }
    for (var i = 0; i <= 4; i++) {
      var t = start + (span * i) / 4;
      chart.appendChild(svg('text', { class: 'axis', x: x(t), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, clock(t)));
    }
    if (total === 0) chart.appendChild(svg('text', { class: 'axis', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no answers in the last hour'));
    var legend = document.getElementById('legend');
    legend.replaceChildren();
    tp.credentials.forEach(function (label, k) {
      var color = COLORS[k % COLORS.length];
      ['accepted', 'rejected'].forEach(function (kind) {
        if (!tp.points.some(function (p) { return p[kind][k] > 0; })) return;
        var coords = [];
        pts.forEach(function (p) {
          var yv = y(perSecond(p, p[kind][k])).toFixed(1);
          coords.push(x(p.at).toFixed(1) + ',' + yv, x(p.at + tp.bucketMs).toFixed(1) + ',' + yv);
        });
        chart.appendChild(svg('polyline', { class: kind, stroke: color, points: coords.join(' '), 'data-credential': label, 'data-kind': kind }));
        var item = el('span');
        var swatch = svg('svg', { width: 22, height: 8 });
        swatch.appendChild(svg('polyline', { points: '1,4 21,4', stroke: color, fill: 'none', 'stroke-width': 2, 'stroke-dasharray': kind === 'rejected' ? '4 3' : 'none' }));
        item.appendChild(swatch);
        item.appendChild(document.createTextNode(label + (kind === 'rejected' ? ' rejected (rate limited)' : ' accepted')));
        legend.appendChild(item);
      });
    });
    chart.setAttribute('data-buckets', String(busy));
    chart.setAttribute('data-requests', String(total));
    var shown = span < 120000 ? Math.round(span / 1000) + ' s' : Math.round(span / 60000) + ' min';
    document.getElementById('chart-span').textContent = 'requests/s per credential in 10 s buckets, last ' + shown + ' · ' + num(total) + ' answers in the last hour';
  }
  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }

  function render(state) {
    last = state;
    document.getElementById('queue').textContent = 'queue ' + state.queue;
    renderRuns(state);
    renderCredentials(state);
    renderChart(state);
    var status = document.getElementById('status');
    status.className = '';
    status.textContent = 'updated ' + clock(state.now);
  }
  function stale(why) {
    var status = document.getElementById('status');
    status.className = 'stale';
    status.textContent = (last ? 'last updated ' + clock(last.now) + ' · ' : '') + why + '; retrying';
  }
  function poll() {
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, 10000);
    fetch('api/state', { cache: 'no-store', signal: ctl.signal, headers: { accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) return res.json().catch(function () { return {}; }).then(function (b) { throw new Error(b.error || ('HTTP ' + res.status)); });
        return res.json();
      })
      .then(render, function (err) { stale(err.name === 'AbortError' ? 'no answer from the dashboard server' : String(err.message || err)); })
      .finally(function () { clearTimeout(timer); setTimeout(poll, POLL_MS); });
  }
  poll();
})();
`;

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>pullq dashboard</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>pullq</h1>
  <span id="queue" class="muted"></span>
  <span id="status" class="muted">loading…</span>
  <span class="grow"></span>
  <a href="queues/">Queue jobs (Bull Board) →</a>
</header>
<main>
  <section>
    <h2>Runs <small id="jobs"></small></h2>
    <table>
      <thead><tr><th>run</th><th>state</th><th>progress</th><th class="num">succeeded</th><th class="num">failed</th><th class="num">pending</th><th class="num">IDs/s</th><th class="num">ETA</th><th>started</th><th>finished</th></tr></thead>
      <tbody id="runs"></tbody>
    </table>
  </section>
  <section>
    <h2>Credentials</h2>
    <table>
      <thead><tr><th>credential</th><th>state</th><th>budget</th><th class="num">starts left now</th><th class="num">requests</th><th class="num">429</th><th class="num">401</th><th class="num">403</th></tr></thead>
      <tbody id="credentials"></tbody>
    </table>
  </section>
  <section>
    <h2>Throughput <small id="chart-span"></small></h2>
    <svg id="chart" viewBox="0 0 960 260" role="img" aria-label="requests per second per credential"></svg>
    <div id="legend"></div>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** The page, and a Content-Security-Policy that lets only its own inline style and script run and only this origin be fetched. */
export const DASHBOARD_PAGE = {
  html: HTML,
  csp: [
    "default-src 'none'",
    `script-src ${sha256(SCRIPT)}`,
    `style-src ${sha256(STYLE)}`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
} as const;
