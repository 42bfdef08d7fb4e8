import { createHash } from 'node:crypto';

// The status page (GET / on the admin listener): one self-contained document, no build step, no
// URL outside the admin origin. It polls GET /status every second and derives rates, error ratios
// and p99 from the difference between two reports, so the server keeps no history and a report
// built from metrics aggregated over worker processes works unchanged. Every value reaches the DOM
// through textContent or an attribute, never as markup. The script and style are plain strings
// (no backticks, no template placeholders) so their CSP hashes are computed from the exact text.

const STYLE = `
:root { color-scheme: light; --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa;
  --ok: #1a7f37; --ok-bg: #dafbe1; --warn: #9a6700; --warn-bg: #fff8c5; --bad: #cf222e; --bad-bg: #ffebe9;
  --off: #57606a; --off-bg: #eaeef2; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #fff; }
header { padding: 12px 20px; background: var(--bg); border-bottom: 1px solid var(--line); display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0 12px 0 0; }
.fact { color: var(--muted); }
.fact b { color: var(--fg); font-weight: 600; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
main { padding: 8px 20px 24px; }
h2 { font-size: 15px; margin: 20px 0 8px; }
h3 { font-size: 14px; margin: 16px 0 6px; display: flex; gap: 10px; align-items: baseline; }
table { border-collapse: collapse; width: 100%; max-width: 1200px; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.unmatched td { color: var(--muted); font-style: italic; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.state-healthy { color: var(--ok); background: var(--ok-bg); }
.state-ejected { color: var(--warn); background: var(--warn-bg); }
.state-unhealthy { color: var(--bad); background: var(--bad-bg); }
.state-draining { color: var(--off); background: var(--off-bg); }
.panic { color: var(--bad); background: var(--bad-bg); }
.why { color: var(--muted); margin-left: 6px; }
.why + .why::before { content: "· "; }
.bad { color: var(--bad); font-weight: 600; }
.result-success { color: var(--ok); font-weight: 600; }
.result-failure { color: var(--bad); font-weight: 600; }
ul.errors { margin: 4px 0 0; padding-left: 20px; color: var(--bad); }
#banner { padding: 10px 20px; background: var(--bad); color: #fff; font-weight: 600; }
#banner[hidden] { display: none; }
.empty { color: var(--muted); }
footer { padding: 0 20px 16px; color: var(--muted); font-size: 12px; }
`;

const SCRIPT = `
'use strict';
(function () {
  var POLL_MS = 1000;
  // Rates cover about this much of the recent past: steadier than one poll, still live.
  var WINDOW_MS = 5000;
  var history = [];

  function byId(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) for (var name in attrs) if (attrs[name] !== null && attrs[name] !== undefined) node.setAttribute(name, String(attrs[name]));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function cell(field, text, cls) { return el('td', { 'data-field': field, 'class': cls }, text); }

  function fmtRate(perSecond) {
    if (perSecond === null) return '\\u2013';
    return perSecond < 10 ? perSecond.toFixed(1) : String(Math.round(perSecond));
  }

  function fmtPercent(ratio) {
    if (ratio === null) return '\\u2013';
    if (ratio === 0) return '0%';
    var p = ratio * 100;
    return (p < 10 ? p.toFixed(1) : String(Math.round(p))) + '%';
  }

  function fmtMs(ms) {
    if (ms === null) return '\\u2013';
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 100) return ms.toFixed(1) + ' ms';
    return String(Math.round(ms)) + ' ms';
  }

  function fmtTime(iso) {
    if (!iso) return '\\u2013';
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
  }

  function fmtAgo(iso, nowMs) {
    var s = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  // Figures of the same thing in the newest report and the one WINDOW_MS earlier: null until two
  // reports exist, or when a counter went backwards (the process restarted).
  function delta(now, then, dt) {
    if (!then || dt <= 0) return null;
    var requests = now.requests - then.requests;
    var errors = now.errors5xx - then.errors5xx;
    if (requests < 0 || errors < 0) return null;
    return { rate: requests / dt, errorRatio: requests > 0 ? errors / requests : null, requests: requests };
  }

  // histogram_quantile over the bucket increments, interpolating linearly inside the bucket.
  function quantileMs(q, now, then) {
    if (!then) return null;
    // Before its first observation a histogram reports no buckets at all: every one was zero.
    var fromZero = then.count === 0;
    if (!fromZero && now.bounds.length !== then.bounds.length) return null;
    var total = now.count - then.count;
    if (!(total > 0)) return null;
    var rank = q * total;
    var below = 0;
    for (var i = 0; i < now.bounds.length; i++) {
      if (!fromZero && now.bounds[i] !== then.bounds[i]) return null;
      var upto = now.counts[i] - (fromZero ? 0 : then.counts[i]);
      if (upto >= rank) {
        var lower = i === 0 ? 0 : now.bounds[i - 1];
        var inBucket = upto - below;
        var share = inBucket > 0 ? (rank - below) / inBucket : 1;
        return { ms: (lower + (now.bounds[i] - lower) * share) * 1000, beyond: false };
      }
      below = upto;
    }
    // Beyond the last finite bucket: its bound is all that is known.
    return now.bounds.length === 0 ? null : { ms: now.bounds[now.bounds.length - 1] * 1000, beyond: true };
  }

  function fmtQuantile(q) {
    if (q === null) return fmtMs(null);
    return (q.beyond ? '> ' : '') + fmtMs(q.ms);
  }

  function remember(report) {
    var t = Date.parse(report.generatedAt);
    var last = history[history.length - 1];
    if (last && t < last.t) history = [];
    history.push({ t: t, report: report });
    while (history.length > 2 && t - history[1].t >= WINDOW_MS) history.shift();
    var base = history.length > 1 ? history[0] : null;
    return { base: base ? base.report : null, dt: base ? (t - base.t) / 1000 : 0 };
  }

  function matchText(route) {
    var text = (route.host ? route.host : '*') + ' ' + route.prefix;
    if (route.methods && route.methods.length) text += ' (' + route.methods.join(', ') + ')';
    return text;
  }

  function upstreamText(route) {
    if (route.upstream) return route.upstream;
    if (!route.split) return '\\u2013';
    var total = 0;
    route.split.forEach(function (s) { total += s.weight; });
    return route.split.map(function (s) { return s.upstream + ' ' + Math.round(total > 0 ? s.weight / total * 100 : 0) + '%'; }).join(' / ');
  }

  function renderHeader(report) {
    var version = byId('version');
    version.textContent = report.version || 'none loaded';
    var loaded = byId('loaded-at');
    loaded.textContent = report.loadedAt ? fmtTime(report.loadedAt) + ' (' + fmtAgo(report.loadedAt, Date.parse(report.generatedAt)) + ')' : '\\u2013';
    var reload = byId('last-reload');
    var errors = byId('reload-errors');
    var r = report.lastReload;
    errors.replaceChildren();
    if (!r) {
      reload.removeAttribute('data-result');
      reload.replaceChildren(el('span', null, 'none yet'));
      return;
    }
    reload.setAttribute('data-result', r.result);
    var parts = [el('span', { 'class': 'result-' + r.result, 'data-field': 'reload-result' }, r.result)];
    if (r.version) parts.push(el('span', null, ' \\u00b7 ' + r.version + (r.changed === false ? ' (unchanged)' : '')));
    parts.push(el('span', { 'class': 'fact' }, ' \\u00b7 ' + fmtTime(r.at)));
    reload.replaceChildren.apply(reload, parts);
    (r.errors || []).forEach(function (message) { errors.appendChild(el('li', null, message)); });
  }

  function renderRoutes(report, base, dt) {
    var rows = [];
    report.routes.forEach(function (route) {
      var then = base ? base.routes.find(function (r) { return r.name === route.name; }) : null;
      var d = delta(route, then, dt);
      var row = el('tr', { 'data-route': route.name });
      row.appendChild(cell('name', route.name));
      row.appendChild(cell('match', matchText(route), 'mono'));
      row.appendChild(cell('upstream', upstreamText(route)));
      row.appendChild(cell('rps', fmtRate(d ? d.rate : null), 'num'));
      row.appendChild(cell('errors', fmtPercent(d ? d.errorRatio : null), 'num' + (d && d.errorRatio > 0 ? ' bad' : '')));
      row.appendChild(cell('p99', fmtQuantile(then ? quantileMs(0.99, route.latency, then.latency) : null), 'num'));
      rows.push(row);
    });
    var u = delta(report.unmatched, base ? base.unmatched : null, dt);
    if (report.unmatched.requests > 0) {
      var row = el('tr', { 'data-unmatched': '', 'class': 'unmatched' });
      row.appendChild(cell('name', 'no route matched'));
      row.appendChild(cell('match', '\\u2013'));
      row.appendChild(cell('upstream', '\\u2013'));
      row.appendChild(cell('rps', fmtRate(u ? u.rate : null), 'num'));
      row.appendChild(cell('errors', fmtPercent(u ? u.errorRatio : null), 'num'));
      row.appendChild(cell('p99', '\\u2013', 'num'));
      rows.push(row);
    }
    if (rows.length === 0) {
      var empty = el('tr');
      empty.appendChild(el('td', { colspan: 6, 'class': 'empty' }, 'no routes'));
      rows.push(empty);
    }
    byId('routes').replaceChildren.apply(byId('routes'), rows);
  }

  function stateCell(endpoint, nowMs) {
    var td = el('td', { 'data-field': 'state' });
    td.appendChild(el('span', { 'class': 'badge state-' + endpoint.state }, endpoint.state));
    if (endpoint.state === 'ejected' && endpoint.ejection) {
      td.appendChild(el('span', { 'class': 'why', 'data-field': 'reason', title: endpoint.ejection.detail }, endpoint.ejection.reason));
      if (endpoint.ejectedUntil) {
        var left = Math.max(0, Math.ceil((Date.parse(endpoint.ejectedUntil) - nowMs) / 1000));
        td.appendChild(el('span', { 'class': 'why', 'data-field': 'time-left', 'data-seconds': left }, left + ' s left'));
      }
      td.appendChild(el('span', { 'class': 'why', 'data-field': 'detail' }, endpoint.ejection.detail));
    } else if (endpoint.state === 'unhealthy') {
      var why = endpoint.lastCheck || (endpoint.ejection ? endpoint.ejection.detail : null);
      if (endpoint.ejection) td.appendChild(el('span', { 'class': 'why', 'data-field': 'reason' }, endpoint.ejection.reason));
      if (why) td.appendChild(el('span', { 'class': 'why', 'data-field': 'detail' }, why));
    }
    return td;
  }

  function renderPools(report, base, dt) {
    var nowMs = Date.parse(report.generatedAt);
    var sections = report.pools.map(function (pool) {
      var thenPool = base ? base.pools.find(function (p) { return p.name === pool.name; }) : null;
      var section = el('section', { 'data-pool': pool.name });
      var usable = pool.endpoints.filter(function (e) { return e.state === 'healthy'; }).length;
      var title = el('h3');
      title.appendChild(el('span', null, pool.name));
      title.appendChild(el('span', { 'class': 'fact' }, pool.balancer + ' \\u00b7 ' + usable + '/' + pool.endpoints.length + ' healthy'));
      if (pool.panic) title.appendChild(el('span', { 'class': 'badge panic', 'data-field': 'panic' }, 'panic'));
      section.appendChild(title);
      var table = el('table');
      var head = el('tr');
      ['endpoint', 'state', 'weight', 'in flight', 'latency (ewma)', 'req/s', 'errors'].forEach(function (name, i) {
        head.appendChild(el('th', i >= 2 ? { 'class': 'num' } : null, name));
      });
      table.appendChild(el('thead')).appendChild(head);
      var body = table.appendChild(el('tbody'));
      pool.endpoints.forEach(function (e) {
        var then = thenPool ? thenPool.endpoints.find(function (x) { return x.address === e.address; }) : null;
        var d = delta(e, then, dt);
        var row = el('tr', { 'data-endpoint': e.address, 'data-state': e.state });
        row.appendChild(cell('address', e.address, 'mono'));
        row.appendChild(stateCell(e, nowMs));
        row.appendChild(cell('weight', e.weight, 'num'));
        row.appendChild(cell('in-flight', e.inFlight, 'num'));
        row.appendChild(cell('latency', fmtMs(e.latencyEwmaMs > 0 ? e.latencyEwmaMs : null), 'num'));
        row.appendChild(cell('rps', fmtRate(d ? d.rate : null), 'num'));
        row.appendChild(cell('errors', fmtPercent(d ? d.errorRatio : null), 'num' + (d && d.errorRatio > 0 ? ' bad' : '')));
        body.appendChild(row);
      });
      if (pool.endpoints.length === 0) {
        var empty = body.appendChild(el('tr'));
        empty.appendChild(el('td', { colspan: 7, 'class': 'empty' }, 'no endpoints'));
      }
      section.appendChild(table);
      return section;
    });
    if (sections.length === 0) sections.push(el('p', { 'class': 'empty' }, 'no upstreams'));
    byId('pools').replaceChildren.apply(byId('pools'), sections);
  }

  function render(report) {
    var since = remember(report);
    renderHeader(report);
    renderRoutes(report, since.base, since.dt);
    renderPools(report, since.base, since.dt);
    byId('updated').textContent = 'updated ' + fmtTime(report.generatedAt) + (since.base ? ' \\u00b7 rates over the last ' + Math.round(since.dt) + ' s' : ' \\u00b7 rates after the next update');
    document.body.setAttribute('data-updated', report.generatedAt);
  }

  function connected() {
    document.body.setAttribute('data-connection', 'ok');
    byId('banner').hidden = true;
  }

  function disconnected(reason) {
    document.body.setAttribute('data-connection', 'lost');
    var banner = byId('banner');
    banner.textContent = 'Disconnected: ' + reason + ' \\u2014 retrying every second. The figures below are from ' + (history.length ? fmtTime(history[history.length - 1].report.generatedAt) : 'no update yet') + '.';
    banner.hidden = false;
  }

  function poll() {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, 5000);
    fetch('./status', { cache: 'no-store', headers: { accept: 'application/json' }, signal: controller.signal })
      .then(function (res) {
        if (!res.ok) throw new Error('GET /status answered ' + res.status);
        return res.json();
      })
      .then(function (report) {
        connected();
        render(report);
      }, function (err) {
        disconnected(err && err.name === 'AbortError' ? 'no answer within 5 s' : (err && err.message) || String(err));
      })
      .then(function () {
        clearTimeout(timer);
        setTimeout(poll, POLL_MS);
      });
  }

  poll();
})();
`;

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * Only this page's own script and style may run (by hash: no 'unsafe-inline'), it may fetch only
 * its own origin, and it loads nothing else: no images, fonts, frames or forms.
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  // The browser asks for /favicon.ico on its own; an empty data: icon stops it.
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Gateway status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body data-connection="connecting">
<div id="banner" role="alert" data-testid="disconnected" hidden></div>
<header>
  <h1>Gateway status</h1>
  <span class="fact">config <b><code id="version" data-field="version">\u2013</code></b></span>
  <span class="fact">loaded <b id="loaded-at" data-field="loaded-at">\u2013</b></span>
  <span class="fact">last reload <b id="last-reload" data-field="last-reload">\u2013</b></span>
</header>
<ul class="errors" id="reload-errors" data-field="reload-errors"></ul>
<main>
  <h2>Routes</h2>
  <table>
    <thead><tr><th>route</th><th>host / prefix</th><th>upstream</th><th class="num">req/s</th><th class="num">errors (5xx)</th><th class="num">p99</th></tr></thead>
    <tbody id="routes"><tr><td colspan="6" class="empty">loading\u2026</td></tr></tbody>
  </table>
  <h2>Upstream pools</h2>
  <div id="pools"></div>
</main>
<footer id="updated">waiting for the first update\u2026</footer>
<noscript>This page needs JavaScript; the same data is at <a href="status">/status</a>.</noscript>
<script>${SCRIPT}</script>
</body>
</html>
`;
