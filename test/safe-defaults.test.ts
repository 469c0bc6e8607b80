/**
 * Identity and safe defaults at the gateway's edge: which origins may open a
 * WebSocket, CORS for HTTP routes, JSON bodies only as JSON, what headers and
 * address a service sees, and which businessIds are refused.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { WeftError, createGateway, memoryCluster, type AuthRequest } from '../src/index.js';
import { businessIdProblem } from '../src/gateway/auth/business-id.js';
import type { SeenContext } from './fixtures/services.js';
import { startStack } from './fixtures/stack.js';
import { connectWs, httpJson, quietLogger, refusedWs } from './helpers/index.js';

/** A POST with exactly these bytes and headers (no content type unless given). */
function rawPost(
  url: string,
  body: Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: { code: string; errorMessage: string | null } }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-length': String(body.length), ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { code: string; errorMessage: string | null } }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const ITEM = Buffer.from(JSON.stringify({ name: 'lamp', qty: 2 }));

test('by default a handshake from another origin is refused 403, while the own origin and clients without Origin pass', async (t) => {
  const stack = await startStack(t);
  const foreign = await refusedWs(`${stack.wsUrl}/api/chat?businessId=1`, { headers: { origin: 'https://evil.example' } });
  assert.equal(foreign.status, 403);
  assert.equal(foreign.body.code, 'Unauthorized');
  assert.match(foreign.body.errorMessage ?? '', /origin "https:\/\/evil\.example" is not this gateway's; list it in the gateway's allowedOrigins/);
  const nullOrigin = await refusedWs(`${stack.wsUrl}/api/chat?businessId=1`, { headers: { origin: 'null' } });
  assert.equal(nullOrigin.status, 403);
  const otherPort = await refusedWs(`${stack.wsUrl}/api/chat?businessId=1`, { headers: { origin: 'http://127.0.0.1:1' } });
  assert.equal(otherPort.status, 403);

  const own = await connectWs(`${stack.wsUrl}/api/chat?businessId=1`, { headers: { origin: stack.url } });
  t.after(() => own.ws.terminate());
  const tlsProxy = await connectWs(`${stack.wsUrl}/api/chat?businessId=1`, { headers: { origin: 'https://app.example', host: 'app.example' } });
  t.after(() => tlsProxy.ws.terminate());
  const noOrigin = await connectWs(`${stack.wsUrl}/api/chat?businessId=1`);
  t.after(() => noOrigin.ws.terminate());
  assert.equal(await stack.chats[0]!.count('1'), 3);
});

test('with allowedOrigins only the listed origins open sessions, and * lets any in', async (t) => {
  const listed = await startStack(t, { gateway: { allowedOrigins: ['https://app.example.com'] } });
  const ok = await connectWs(`${listed.wsUrl}/api/chat?businessId=1`, { headers: { origin: 'https://app.example.com' } });
  t.after(() => ok.ws.terminate());
  const own = await refusedWs(`${listed.wsUrl}/api/chat?businessId=1`, { headers: { origin: listed.url } });
  assert.equal(own.status, 403);
  assert.match(own.body.errorMessage ?? '', /is not in the gateway's allowedOrigins/);
  const noOrigin = await connectWs(`${listed.wsUrl}/api/chat?businessId=1`);
  t.after(() => noOrigin.ws.terminate());

  const any = await startStack(t, { gateway: { allowedOrigins: '*' } });
  const anywhere = await connectWs(`${any.wsUrl}/api/chat?businessId=1`, { headers: { origin: 'https://anywhere.example' } });
  t.after(() => anywhere.ws.terminate());
});

test('origins that are not origins, and credentials for every origin, are refused as options', () => {
  const base = { cluster: memoryCluster(), logger: quietLogger() };
  assert.throws(
    () => createGateway({ ...base, allowedOrigins: ['https://app.example.com/'] }),
    (e: WeftError) => e.code === 'InvalidOption' && /allowedOrigins/.test(e.message),
  );
  assert.throws(
    () => createGateway({ ...base, cors: { origins: ['app.example.com'] } }),
    (e: WeftError) => e.code === 'InvalidOption' && /cors\.origins/.test(e.message),
  );
  assert.throws(
    () => createGateway({ ...base, cors: { origins: '*', credentials: true } }),
    (e: WeftError) => e.code === 'InvalidOption' && /cors\.credentials/.test(e.message),
  );
});

test('without the cors option there are no CORS headers and OPTIONS is 404', async (t) => {
  const stack = await startStack(t);
  const get = await httpJson(`${stack.url}/api/test/echo?value=hi`, { headers: { origin: 'https://app.example.com' } });
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('access-control-allow-origin'), null);
  const preflight = await httpJson(`${stack.url}/api/test/echo`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' },
  });
  assert.equal(preflight.status, 404);
  assert.equal(preflight.headers.get('access-control-allow-origin'), null);
});

test('with cors, a preflight from a listed origin is answered 204 and answers to it carry Allow-Origin and Vary', async (t) => {
  const stack = await startStack(t, { gateway: { cors: { origins: ['https://app.example.com'], credentials: true, maxAgeSeconds: 120 } } });
  const preflight = await httpJson(`${stack.url}/api/test/item`, {
    method: 'OPTIONS',
    headers: {
      origin: 'https://app.example.com',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'Content-Type, Authorization',
    },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example.com');
  assert.equal(preflight.headers.get('access-control-allow-methods'), 'GET, POST', 'the verbs routed at the path (GET /api/test/{id} too)');
  assert.equal(preflight.headers.get('access-control-allow-headers'), 'content-type, authorization');
  assert.equal(preflight.headers.get('access-control-max-age'), '120');
  assert.equal(preflight.headers.get('access-control-allow-credentials'), 'true');
  assert.equal(preflight.headers.get('vary'), 'Origin');

  const get = await httpJson(`${stack.url}/api/test/echo?value=hi`, { headers: { origin: 'https://app.example.com' } });
  assert.equal(get.headers.get('access-control-allow-origin'), 'https://app.example.com');
  assert.equal(get.headers.get('vary'), 'Origin');
  const missing = await httpJson(`${stack.url}/api/nothing`, { headers: { origin: 'https://app.example.com' } });
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('access-control-allow-origin'), 'https://app.example.com', 'errors are readable by the page too');

  const other = await httpJson(`${stack.url}/api/test/echo?value=hi`, { headers: { origin: 'https://evil.example' } });
  assert.equal(other.status, 200);
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  const otherPreflight = await httpJson(`${stack.url}/api/test/item`, {
    method: 'OPTIONS',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  });
  assert.equal(otherPreflight.status, 404);
  assert.equal(otherPreflight.headers.get('access-control-allow-origin'), null);

  const any = await startStack(t, { gateway: { cors: { origins: '*' } } });
  const anyGet = await httpJson(`${any.url}/api/test/echo?value=hi`, { headers: { origin: 'https://anywhere.example' } });
  assert.equal(anyGet.headers.get('access-control-allow-origin'), '*');
  assert.equal(anyGet.headers.get('access-control-allow-credentials'), null);
});

test('a body without a JSON content type is answered 415, and invalid UTF-8 400', async (t) => {
  const stack = await startStack(t);
  const url = `${stack.url}/api/test/item`;
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']) {
    const res = await rawPost(url, ITEM, { 'content-type': type });
    assert.equal(res.status, 415, type);
    assert.equal(res.body.code, 'UnsupportedMediaType');
  }
  const none = await rawPost(url, ITEM);
  assert.equal(none.status, 415);
  assert.match(none.body.errorMessage ?? '', /must be JSON/);
  for (const type of ['application/json', 'application/json; charset=UTF-8', 'application/merge-patch+json']) {
    const res = await rawPost(url, ITEM, { 'content-type': type });
    assert.equal(res.status, 200, type);
  }
  const badUtf8 = await rawPost(url, Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","qty":1}')]), {
    'content-type': 'application/json',
  });
  assert.equal(badUtf8.status, 400);
  assert.equal(badUtf8.body.code, 'BadRequest');
  assert.match(badUtf8.body.errorMessage ?? '', /not valid UTF-8/);
  const noBodyRoute = await httpJson(`${stack.url}/api/test?a=2&b=40`, { method: 'POST' });
  assert.equal(noBodyRoute.status, 200, 'a route that binds no body does not look at the content type');
});

test('WebSocket services see only forwardHeaders, never cookies or a client x-user-id, and the client address', async (t) => {
  const stack = await startStack(t);
  const client = await connectWs(`${stack.wsUrl}/api/chat?businessId=7`, {
    headers: { cookie: 'sid=secret', 'x-user-id': 'admin', 'accept-language': 'fr', 'x-forwarded-for': '6.6.6.6' },
  });
  t.after(() => client.ws.terminate());
  const session = stack.chats[0]!.sessions[0]!;
  assert.equal(session.headers['cookie'], undefined);
  assert.equal(session.headers['x-user-id'], undefined);
  assert.equal(session.headers['accept-language'], 'fr', 'a default forwardHeaders entry');
  assert.equal(session.headers['x-forwarded-for'], '127.0.0.1', "an untrusted client's own x-forwarded-for is dropped");
  assert.equal(session.remoteAddress, '127.0.0.1');

  const http2 = await httpJson(`${stack.url}/api/test/context`, {
    headers: { cookie: 'sid=secret', 'x-user-id': 'admin', 'x-forwarded-for': '6.6.6.6' },
  });
  const seen = http2.body.result as SeenContext;
  assert.equal(seen.headers['cookie'], undefined);
  assert.equal(seen.headers['x-user-id'], undefined);
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
});

test('behind a trusted proxy the client address comes from X-Forwarded-For and the peer is appended', async (t) => {
  const seenByHook: AuthRequest[] = [];
  const stack = await startStack(t, {
    gateway: {
      trustedProxies: ['127.0.0.1'],
      authenticate: (req) => {
        seenByHook.push(req);
      },
    },
  });
  const client = await connectWs(`${stack.wsUrl}/api/chat?businessId=7`, { headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.9' } });
  t.after(() => client.ws.terminate());
  const session = stack.chats[0]!.sessions[0]!;
  assert.equal(session.remoteAddress, '203.0.113.9', 'the last address before the trusted proxy');
  assert.equal(session.headers['x-forwarded-for'], '6.6.6.6, 203.0.113.9, 127.0.0.1');
  assert.equal(seenByHook[0]?.remoteAddress, '203.0.113.9');

  const res = await httpJson(`${stack.url}/api/test/context`, { headers: { 'x-forwarded-for': '198.51.100.4' } });
  assert.equal((res.body.result as SeenContext).headers['x-forwarded-for'], '198.51.100.4, 127.0.0.1');
  assert.equal(seenByHook[1]?.remoteAddress, '198.51.100.4');
});

test('a businessId of only whitespace, zero-width or control characters is refused 400', async (t) => {
  const stack = await startStack(t);
  for (const id of ['%20%20', '%09', '%E2%80%8B', '%E2%80%8B%EF%BB%BF%E2%81%A0', 'a%7Fb', 'a%C2%85b', 'x'.repeat(257)]) {
    const ws = await refusedWs(`${stack.wsUrl}/api/chat?businessId=${id}`);
    assert.equal(ws.status, 400, id);
    assert.equal(ws.body.code, 'BadRequest');
    const res = await httpJson(`${stack.url}/api/chat/count?businessId=${id}`);
    assert.equal(res.status, 400, `HTTP ${id}`);
  }
  const visible = await connectWs(`${stack.wsUrl}/api/chat?businessId=%20acme%E2%80%8B`);
  t.after(() => visible.ws.terminate());
  assert.equal(businessIdProblem('x'.repeat(256)), undefined, '256 characters is the limit');
  assert.match(businessIdProblem('\u200d') ?? '', /visible text/);
});
