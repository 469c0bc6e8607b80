/**
 * The dashboard page a gateway serves at /dashboard: one HTML document with
 * its CSS and script inline (no build step, nothing fetched from elsewhere),
 * which polls /dashboard/data once a second and draws tables and SVG
 * sparklines. Everything from the data is written as text (textContent),
 * never as HTML: businessIds and service names are not the page's to trust.
 * With tokens on, the page is opened as /dashboard?token=... (the page
 * passes the gate too), and the script sends that token as
 * `Authorization: Bearer` to /dashboard/data.
 */
import { createHash } from 'node:crypto';

export interface DashboardPageMode {
  /** Does the gateway require tokens (`auth.jwt`)? */
  tokens: boolean;
}

const SCRIPT = String.raw`
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  // With tokens on, the page itself was opened with ?token= (the gate wants it for the page too).
  const token = new URLSearchParams(location.search).get('token');

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells) {
    const tr = document.createElement('tr');
    for (const c of cells) tr.append(c instanceof Node ? wrap(c) : el('td', c));
    return tr;
  }
  function wrap(node) {
    const td = document.createElement('td');
    td.append(node);
    return td;
  }
  function fill(id, rows, empty, columns) {
    const body = $(id);
    body.replaceChildren(...rows);
    if (rows.length === 0) {
      const td = el('td', empty, 'empty');
      td.colSpan = columns;
      const tr = document.createElement('tr');
      tr.append(td);
      body.append(tr);
    }
  }
  function badge(text) {
    const good = /^ok|^open/.test(text);
    const bad = /refused|unreachable|backing off|unavailable/.test(text);
    return el('span', text, 'badge ' + (good ? 'good' : bad ? 'bad' : 'warn'));
  }
  function age(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function sparkline(svg, values) {
    const w = 160, h = 36, n = 60;
    const data = values.slice(-n);
    const max = Math.max(1, ...data);
    const step = w / (n - 1);
    const x0 = w - (data.length - 1) * step;
    const pts = data.map((v, i) => (x0 + i * step).toFixed(1) + ',' + (h - 2 - (v / max) * (h - 4)).toFixed(1));
    svg.replaceChildren();
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    if (pts.length > 1) {
      const area = document.createElementNS(SVG, 'polygon');
      area.setAttribute('points', x0.toFixed(1) + ',' + h + ' ' + pts.join(' ') + ' ' + w + ',' + h);
      area.setAttribute('class', 'area');
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', pts.join(' '));
      line.setAttribute('class', 'line');
      svg.append(area, line);
    }
  }

  const RATES = [
    ['pushes', 'pushes / s', 'sent by this process'],
    ['deliveries', 'deliveries / s', 'written to client sockets here'],
    ['rpcCalls', 'RPC calls / s', 'made by this process'],
    ['linkFramesIn', 'link frames in / s', 'over links'],
    ['linkFramesOut', 'link frames out / s', 'over links'],
  ];
  const charts = {};
  for (const [key, label, note] of RATES) {
    const card = el('div', null, 'card');
    card.id = 'rate-' + key;
    const value = el('div', '-', 'value');
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'spark');
    card.append(el('div', label, 'label'), value, svg, el('div', note, 'note'));
    $('rates').append(card);
    charts[key] = { value, svg };
  }

  function render(d) {
    $('gateway').textContent = d.gateway.nodeId + ' · cluster ' + d.gateway.cluster + (d.gateway.draining ? ' · draining' : '');
    $('updated').textContent = 'updated ' + new Date(d.now).toLocaleTimeString();
    const series = d.rates.series;
    for (const [key] of RATES) {
      const values = series[key] || [];
      const last = values.length === 0 ? 0 : values[values.length - 1];
      charts[key].value.textContent = String(last);
      sparkline(charts[key].svg, values);
    }
    fill(
      'nodes',
      d.nodes.map((n) => {
        const tr = row([n.nodeId + (n.self ? ' (this gateway)' : ''), n.role, n.address, 'v' + n.protocol, age(d.now - n.startedAt), n.services.join(', ') || '-', badge(n.health)]);
        tr.dataset.node = n.nodeId;
        return tr;
      }),
      'no node in the registry view',
      7,
    );
    fill(
      'services',
      d.services.map((s) => {
        const routes = el('div', null, 'routes');
        for (const r of s.http) routes.append(el('code', r.verb + ' ' + r.path));
        if (s.websocket) routes.append(el('code', 'WS ' + s.websocket, 'ws'));
        const tr = row([s.name, String(s.hosts), routes, String(s.sessions), badge(s.available ? 'ok' : 'unavailable (503)')]);
        tr.dataset.service = s.name;
        return tr;
      }),
      'no service is registered',
      5,
    );
    const ss = d.sessions;
    $('sessions-total').textContent = ss.total + ' sessions (' + ss.open + ' open) of ' + ss.businessIds + ' businessIds';
    fill(
      'by-service',
      Object.entries(ss.byService).sort((a, b) => b[1] - a[1]).map(([name, n]) => {
        const tr = row([name, String(n)]);
        tr.dataset.service = name;
        return tr;
      }),
      'no session on this gateway',
      2,
    );
    fill(
      'top',
      ss.topBusinessIds.map((b) => row([b.businessId, String(b.sessions), b.services.join(', ')])),
      'no session on this gateway',
      3,
    );
    fill(
      'links',
      d.links.map((l) => row([l.nodeId, l.role, badge(l.state), l.kind || '-', String(l.count), String(l.queuedBytes)])),
      'no peer',
      6,
    );
  }

  let failures = 0;
  async function poll() {
    try {
      const headers = token ? { authorization: 'Bearer ' + token } : {};
      const res = await fetch('/dashboard/data', { headers, cache: 'no-store' });
      if (!res.ok) {
        let message = res.status + ' ' + res.statusText;
        try {
          const body = await res.json();
          if (body && body.errorMessage) message = res.status + ': ' + body.errorMessage;
        } catch {}
        throw new Error(message);
      }
      render(await res.json());
      failures = 0;
      $('status').textContent = 'live';
      $('status').className = 'badge good';
    } catch (e) {
      failures += 1;
      $('status').textContent = 'not updating: ' + (e && e.message ? e.message : e);
      $('status').className = 'badge bad';
    }
    setTimeout(poll, failures === 0 ? 1000 : Math.min(10000, 1000 * failures));
  }
  poll();
})();
`;

export function dashboardPage(mode: DashboardPageMode): { html: string; scriptHash: string } {
  const scriptHash = `sha256-${createHash('sha256').update(SCRIPT).digest('base64')}`;
  const auth = mode.tokens
    ? 'This gateway checks tokens: open this page as <code>/dashboard?token=…</code>; the page sends the token with each update.'
    : '';
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>weft dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<style>
  :root { --fg: #1d2430; --muted: #6b7280; --line: #e5e7eb; --accent: #2563eb; --bg: #f8fafc }
  * { box-sizing: border-box }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: var(--fg); background: var(--bg) }
  header { display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; padding: .8rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line) }
  header h1 { font-size: 1.15rem; margin: 0 } #gateway, #updated { color: var(--muted) }
  main { padding: 1rem 1.2rem; display: grid; gap: 1rem }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem }
  h2 { font-size: 1rem; margin: 0 0 .6rem } h2 small { font-weight: 400; color: var(--muted) }
  table { border-collapse: collapse; width: 100% } th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top }
  th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em }
  td.empty { color: var(--muted); font-style: italic }
  code { font: 12px ui-monospace, monospace; background: #f1f5f9; padding: 0 .25rem; border-radius: 3px; margin: 0 .3rem .2rem 0; display: inline-block }
  code.ws { background: #e0ecff }
  #rates { display: flex; gap: .8rem; flex-wrap: wrap }
  .card { border: 1px solid var(--line); border-radius: 8px; padding: .5rem .7rem; min-width: 11rem }
  .card .label { color: var(--muted); font-size: 12px } .card .value { font-size: 1.4rem; font-weight: 600 } .card .note { color: var(--muted); font-size: 11px }
  .spark { width: 160px; height: 36px; display: block } .spark .line { fill: none; stroke: var(--accent); stroke-width: 1.5 } .spark .area { fill: #dbeafe }
  .badge { border-radius: 999px; padding: .05rem .5rem; font-size: 12px; white-space: nowrap } .good { background: #dcfce7 } .warn { background: #fef3c7 } .bad { background: #fee2e2 }
  .two { display: grid; grid-template-columns: 1fr 2fr; gap: 1rem } @media (max-width: 800px) { .two { grid-template-columns: 1fr } }
  p.note { color: var(--muted); margin: .2rem 0 .6rem; font-size: 12px }
</style>
</head>
<body>
<header><h1>weft dashboard</h1><span id="gateway">…</span><span id="status" class="badge warn">loading</span><span id="updated"></span></header>
<main>
<section>
  <h2>Rates <small>per second, last 60 s, counted by this gateway's process</small></h2>
  <div id="rates"></div>
</section>
<section>
  <h2>Nodes <small>this gateway's registry view</small></h2>
  <table><thead><tr><th>node</th><th>role</th><th>link address</th><th>protocol</th><th>up</th><th>services</th><th>health</th></tr></thead><tbody id="nodes"></tbody></table>
</section>
<section>
  <h2>Services and routes</h2>
  <table><thead><tr><th>service</th><th>hosts</th><th>routes</th><th>sessions here</th><th>state</th></tr></thead><tbody id="services"></tbody></table>
</section>
<section>
  <h2>Sessions <small>on this gateway only</small></h2>
  <p class="note" id="sessions-total"></p>
  <div class="two">
    <table><thead><tr><th>service</th><th>sessions</th></tr></thead><tbody id="by-service"></tbody></table>
    <table><thead><tr><th>top businessIds</th><th>sessions</th><th>services</th></tr></thead><tbody id="top"></tbody></table>
  </div>
</section>
<section>
  <h2>Links <small>from this gateway to its peers</small></h2>
  <table><thead><tr><th>peer</th><th>role</th><th>state</th><th>kind</th><th>links</th><th>queued bytes</th></tr></thead><tbody id="links"></tbody></table>
</section>
<p class="note">${auth} Sessions and businessIds are this gateway's; other gateways hold their own. Rates count everything this process does (every weft node in it).</p>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
  return { html, scriptHash };
}
