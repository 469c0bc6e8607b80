/**
 * The demo page a gateway serves at /demo: connect to a WebSocket service
 * with a businessId through weft/client (served at /weft-client.js), watch
 * what arrives with its position, call echo and notify over HTTP, and drop
 * the connection for a few seconds to see the client resume; with a chat
 * room service, join a room, send typed messages and see their replies and
 * the room's pushes. A banner
 * says whether the gateway checks tokens; when it does, the page gets one
 * for the businessId from `/demo/token` and sends it with each request.
 */
export interface DemoPageOptions {
  /** WebSocket path, e.g. `/api/wstest`. */
  wsPath: string;
  /** HTTP path of the echo method, e.g. `/api/wstest/echo`. */
  echoPath: string;
  /** HTTP path of a method that pushes to the whole businessId with history, e.g. `/api/wstest/notify`. */
  notifyPath?: string | undefined;
  /** WebSocket path of a chat room service with a `{room}` segment, e.g. `/api/{room}/chat`. */
  chatPath?: string | undefined;
}

export interface DemoPageMode {
  /** Does the gateway require tokens (`auth.jwt`)? */
  tokens: boolean;
  /** Does it serve `/demo/token` (`demo.issueTokens`)? */
  issueTokens: boolean;
  /** The sha384 integrity of /weft-client.js; undefined when it was not built. */
  clientIntegrity?: string | undefined;
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
  const config = JSON.stringify({
    wsPath: options.wsPath,
    echoPath: options.echoPath,
    notifyPath: options.notifyPath ?? null,
    chatPath: options.chatPath ?? null,
    tokens: mode.tokens && mode.issueTokens,
  }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>weft demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
${mode.clientIntegrity === undefined ? '' : `<link rel="modulepreload" href="/weft-client.js" integrity="${mode.clientIntegrity}">`}
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222 }
  fieldset { border: 1px solid #ccc; border-radius: 6px; margin-bottom: 1rem }
  input { font: inherit; padding: .25rem .4rem } button { font: inherit; padding: .25rem .8rem }
  #status { font-weight: 600 } #log { list-style: none; padding: 0; font-family: ui-monospace, monospace; font-size: 13px }
  #log li { border-bottom: 1px solid #eee; padding: .2rem 0 } #log li.system { color: #777 } #log li.error { color: #b00 }
  #log .pos { color: #36c; margin-right: .5rem }
  code { background: #f3f3f3; padding: 0 .2rem }
  #mode { border-radius: 6px; padding: .5rem .8rem } #mode.open { background: #fff4d6 } #mode.tokens { background: #e3f4e1 }
  #chatLog { list-style: none; padding: 0; font-size: 14px } #chatLog li { padding: .1rem 0 } #chatLog .from { font-weight: 600; margin-right: .4rem }
</style>
</head>
<body>
<h1>weft: push to a businessId</h1>
${banner(mode)}
<p>WebSocket service <code>${escapeHtml(options.wsPath)}</code>, echo at <code>${escapeHtml(options.echoPath)}</code>${
    options.notifyPath === undefined ? '' : `, notify at <code>${escapeHtml(options.notifyPath)}</code>`
  }.
Open this page in two tabs with the same businessId: one echo reaches both. Notify keeps each push with its position
(<code>epoch:offset</code>): drop the connection, notify meanwhile, and the client gets what it missed when it is back.</p>
<fieldset>
  <legend>Session</legend>
  <label>businessId <input id="businessId" value="100" size="10"></label>
  <button id="connect">Connect</button> <button id="disconnect" disabled>Disconnect</button>
  <button id="drop" disabled>Drop connection for 5 s</button>
  <div><span id="status">disconnected</span> · position <code id="position">-</code></div>
</fieldset>
<fieldset>
  <legend>Push over HTTP</legend>
  <label>message <input id="msg" value="hello" size="24"></label>
  <button id="echo">Call echo</button> <button id="notify"${options.notifyPath === undefined ? ' hidden' : ''}>Call notify</button>
  <div>HTTP answer: <code id="answer">-</code></div>
</fieldset>
<fieldset id="chat"${options.chatPath === undefined ? ' hidden' : ''}>
  <legend>Chat room</legend>
  <p>Sessions join a room in the service's <code>onOpen</code>; <code>say</code> is a typed message whose reply says how many members the
  room push reached, on every gateway. Join the same room from two tabs.</p>
  <label>name <input id="chatName" value="ann" size="10"></label>
  <label>room <input id="chatRoom" value="lobby" size="10"></label>
  <button id="chatJoin">Join</button> <button id="chatLeave" disabled>Leave</button>
  <div><label>message <input id="chatText" value="hi all" size="28"></label> <button id="chatSay" disabled>Say</button>
  reply <code id="chatReply">-</code></div>
  <ul id="chatLog"></ul>
</fieldset>
<h2>Received</h2>
<ul id="log"></ul>
<script type="module">
import { connectSession } from '/weft-client.js';
const config = ${config};
const $ = (id) => document.getElementById(id);
let session;
/** The token of each businessId this page got one for (token mode). */
const tokens = new Map();
async function tokenFor(businessId, fresh) {
  if (!config.tokens) return undefined;
  if (!fresh && tokens.has(businessId)) return tokens.get(businessId);
  const res = await fetch('/demo/token?businessId=' + encodeURIComponent(businessId));
  const body = await res.json();
  if (!res.ok) throw new Error(body.errorMessage || String(res.status));
  tokens.set(businessId, body.result.token);
  setTimeout(() => tokens.delete(businessId), (body.result.expiresIn - 30) * 1000);
  return body.result.token;
}
function log(text, kind, position) {
  const li = document.createElement('li');
  if (position) {
    const pos = document.createElement('span');
    pos.className = 'pos';
    pos.textContent = position.epoch + ':' + position.offset;
    li.append(pos);
  }
  li.append(text);
  if (kind) li.className = kind;
  $('log').prepend(li);
}
function setStatus(text) { $('status').textContent = text; }
function showPosition() { const p = session && session.position; $('position').textContent = p ? p.epoch + ':' + p.offset : '-'; }
function connected(yes) { $('connect').disabled = yes; $('disconnect').disabled = !yes; $('drop').disabled = !yes; }
$('connect').onclick = () => {
  const businessId = $('businessId').value;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  connected(true);
  setStatus('connecting');
  session = connectSession(scheme + '//' + location.host + config.wsPath, {
    businessId,
    // Browsers cannot set headers on a WebSocket: weft/client sends the token in the query string.
    ...(config.tokens ? { getToken: () => tokenFor(businessId, true) } : {}),
    onTokenError: (e) => log('token: ' + e.message, 'error'),
    onOpen: (info) => {
      setStatus('connected as businessId ' + businessId);
      if (info.resumed) log(info.recovered ? 'resumed: ' + info.replayed + ' missed push(es) replayed' : 'resumed without recovery (' + info.reason + '): reload your state', 'system');
      showPosition();
    },
    onMessage: (data, info) => {
      log(typeof data === 'string' ? data : '[binary ' + data.length + ' bytes]', 'message', info.position);
      showPosition();
    },
    onClose: (code, reason, again) => {
      setStatus('closed (' + code + (reason ? ' ' + reason : '') + ')' + (again ? ', reconnecting' : ''));
      log('closed ' + code + (again ? ', will reconnect' : ''), 'system');
      if (!again) connected(false);
    },
  });
};
$('disconnect').onclick = () => { if (session) session.close(); connected(false); setStatus('disconnected'); };
$('drop').onclick = () => { if (session) { log('dropping the connection for 5 s', 'system'); session.reconnect(5000); } };
async function call(path) {
  const businessId = $('businessId').value;
  const url = path + '?businessId=' + encodeURIComponent(businessId) + '&msg=' + encodeURIComponent($('msg').value);
  try {
    const token = await tokenFor(businessId);
    const res = await fetch(url, { headers: token ? { authorization: 'Bearer ' + token } : {} });
    $('answer').textContent = res.status + ' ' + await res.text();
  } catch (e) {
    $('answer').textContent = 'failed: ' + e.message;
  }
}
let chat;
function chatLine(from, text) {
  const li = document.createElement('li');
  const who = document.createElement('span');
  who.className = 'from';
  who.textContent = from;
  li.append(who, text);
  $('chatLog').prepend(li);
}
function chatting(yes) { $('chatJoin').disabled = yes; $('chatLeave').disabled = !yes; $('chatSay').disabled = !yes; }
$('chatJoin').onclick = () => {
  const name = $('chatName').value;
  const room = $('chatRoom').value;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  chatting(true);
  chat = connectSession(scheme + '//' + location.host + config.chatPath.replace('{room}', encodeURIComponent(room)), {
    businessId: name,
    ...(config.tokens ? { getToken: () => tokenFor(name, true) } : {}),
    onOpen: () => chatLine('*', 'you are in room ' + room + ' as ' + name),
    onClose: (code, reason, again) => { if (!again) { chatting(false); chatLine('*', 'left (' + code + ')'); } },
  });
  // Named, typed pushes of the service: said and joined.
  chat.on('said', (m) => chatLine(m.from, m.text));
  chat.on('joined', (m) => chatLine('*', m.who + ' joined (' + m.members + ' here)'));
};
$('chatLeave').onclick = () => { if (chat) chat.close(); chatting(false); };
$('chatSay').onclick = async () => {
  try {
    const reply = await chat.call('say', { text: $('chatText').value });
    $('chatReply').textContent = 'reached ' + reply.reached;
  } catch (e) {
    $('chatReply').textContent = (e.code || 'error') + ': ' + e.message;
  }
};
$('echo').onclick = () => call(config.echoPath);
$('notify').onclick = () => config.notifyPath && call(config.notifyPath);
</script>
</body>
</html>
`;
}
