/**
 * The demo page a gateway serves at /demo: connect to a WebSocket service
 * with a businessId, watch what arrives, and call echo over HTTP. A banner
 * says whether the gateway checks tokens; when it does, the page gets one
 * for the businessId from `/demo/token` and sends it with each request.
 */
export interface DemoPageOptions {
  /** WebSocket path, e.g. `/api/wstest`. */
  wsPath: string;
  /** HTTP path of the echo method, e.g. `/api/wstest/echo`. */
  echoPath: string;
}

export interface DemoPageMode {
  /** Does the gateway require tokens (`auth.jwt`)? */
  tokens: boolean;
  /** Does it serve `/demo/token` (`demo.issueTokens`)? */
  issueTokens: boolean;
}

function banner(mode: DemoPageMode): string {
  if (!mode.tokens) {
    return `<p id="mode" class="open"><strong>Open mode:</strong> this gateway checks no tokens, so any client can pick any businessId
and receive its pushes. The demo requires tokens when started with <code>WEFT_JWT_SECRET</code> set (32 characters or more).</p>`;
  }
  if (!mode.issueTokens) {
    return `<p id="mode" class="tokens"><strong>Tokens required:</strong> every request needs a token whose businessId claim is the businessId,
and this gateway issues no demo tokens, so this page will be refused (401).</p>`;
  }
  return `<p id="mode" class="tokens"><strong>Tokens required:</strong> every WebSocket and HTTP request needs a token whose <code>sub</code>
is the businessId. This page gets one from <code>/demo/token</code>, which signs a token for any businessId: a demo-only route.</p>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function demoPage(options: DemoPageOptions, mode: DemoPageMode = { tokens: false, issueTokens: false }): string {
  const config = JSON.stringify({ wsPath: options.wsPath, echoPath: options.echoPath, tokens: mode.tokens && mode.issueTokens }).replace(
    /</g,
    '\\u003c',
  );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>weft demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222 }
  fieldset { border: 1px solid #ccc; border-radius: 6px; margin-bottom: 1rem }
  input { font: inherit; padding: .25rem .4rem } button { font: inherit; padding: .25rem .8rem }
  #status { font-weight: 600 } #log { list-style: none; padding: 0; font-family: ui-monospace, monospace; font-size: 13px }
  #log li { border-bottom: 1px solid #eee; padding: .2rem 0 } #log li.system { color: #777 } #log li.error { color: #b00 }
  code { background: #f3f3f3; padding: 0 .2rem }
  #mode { border-radius: 6px; padding: .5rem .8rem } #mode.open { background: #fff4d6 } #mode.tokens { background: #e3f4e1 }
</style>
</head>
<body>
<h1>weft: push to a businessId</h1>
${banner(mode)}
<p>WebSocket service <code>${escapeHtml(options.wsPath)}</code>, echo at <code>${escapeHtml(options.echoPath)}</code>.
Open this page in two tabs with the same businessId: one echo reaches both.</p>
<fieldset>
  <legend>Session</legend>
  <label>businessId <input id="businessId" value="100" size="10"></label>
  <button id="connect">Connect</button> <button id="disconnect" disabled>Disconnect</button>
  <span id="status">disconnected</span>
</fieldset>
<fieldset>
  <legend>Push over HTTP</legend>
  <label>message <input id="msg" value="hello" size="24"></label>
  <button id="echo">Call echo</button>
  <div>HTTP answer: <code id="answer">-</code></div>
</fieldset>
<h2>Received</h2>
<ul id="log"></ul>
<script>
const config = ${config};
const $ = (id) => document.getElementById(id);
let socket;
/** The token of each businessId this page got one for (token mode). */
const tokens = new Map();
async function tokenFor(businessId) {
  if (!config.tokens) return undefined;
  if (tokens.has(businessId)) return tokens.get(businessId);
  const res = await fetch('/demo/token?businessId=' + encodeURIComponent(businessId));
  const body = await res.json();
  if (!res.ok) throw new Error(body.errorMessage || String(res.status));
  tokens.set(businessId, body.result.token);
  setTimeout(() => tokens.delete(businessId), (body.result.expiresIn - 30) * 1000);
  return body.result.token;
}
function log(text, kind) {
  const li = document.createElement('li');
  li.textContent = text;
  if (kind) li.className = kind;
  $('log').prepend(li);
}
function setStatus(text) { $('status').textContent = text; }
$('connect').onclick = async () => {
  const businessId = $('businessId').value;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let token;
  try {
    token = await tokenFor(businessId);
  } catch (e) {
    log('could not get a token: ' + e.message, 'error');
    return;
  }
  // Browsers cannot set headers on a WebSocket: the token goes in the query string.
  const auth = token ? '&token=' + encodeURIComponent(token) : '';
  socket = new WebSocket(scheme + '//' + location.host + config.wsPath + '?businessId=' + encodeURIComponent(businessId) + auth);
  setStatus('connecting');
  socket.onopen = () => { setStatus('connected as businessId ' + businessId); $('connect').disabled = true; $('disconnect').disabled = false; };
  socket.onmessage = (e) => log(typeof e.data === 'string' ? e.data : '[binary ' + e.data.size + ' bytes]', 'message');
  socket.onclose = (e) => { setStatus('closed (' + e.code + (e.reason ? ' ' + e.reason : '') + ')'); $('connect').disabled = false; $('disconnect').disabled = true; log('closed ' + e.code, 'system'); };
  socket.onerror = () => log('connection error (refused handshakes answer with a JSON body; see the network tab)', 'error');
};
$('disconnect').onclick = () => socket && socket.close(1000, 'bye');
$('echo').onclick = async () => {
  const businessId = $('businessId').value;
  const url = config.echoPath + '?businessId=' + encodeURIComponent(businessId) + '&msg=' + encodeURIComponent($('msg').value);
  try {
    const token = await tokenFor(businessId);
    const res = await fetch(url, { headers: token ? { authorization: 'Bearer ' + token } : {} });
    $('answer').textContent = res.status + ' ' + await res.text();
  } catch (e) {
    $('answer').textContent = 'failed: ' + e.message;
  }
};
</script>
</body>
</html>
`;
}
