/**
 * Built-in token authentication of HTTP routes (auth.jwt): no token or a bad
 * one is 401 with WWW-Authenticate, a businessId that is not the token's is
 * 403, and a good token's claims reach the service in its call context (the
 * x-weft-identity header) while the token itself does not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WeftError } from '../src/index.js';
import type { SeenContext } from './fixtures/services.js';
import { startStack } from './fixtures/stack.js';
import { connectWs, httpJson } from './helpers/index.js';
import { SECRET, signToken, tokenFor } from './helpers/tokens.js';

const JWT = { auth: { jwt: { secret: SECRET } } };

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

test('with auth.jwt, a route without a token is answered 401 with the JSON body and WWW-Authenticate: Bearer', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const res = await httpJson(`${stack.url}/api/test/echo?value=x`);
  assert.equal(res.status, 401);
  assert.equal(res.body.code, 'Unauthenticated');
  assert.equal(res.body.result, null);
  assert.match(res.body.errorMessage ?? '', /token is required/);
  assert.equal(res.headers.get('www-authenticate'), 'Bearer');
  // An Authorization header of another scheme is no token either.
  const basic = await httpJson(`${stack.url}/api/test/echo?value=x`, { headers: { authorization: 'Basic dXNlcjpwdw==' } });
  assert.equal(basic.status, 401);
});

test('a token with a bad signature, an expired one, a malformed one or one without exp is answered 401 invalid_token', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const cases = [
    { token: await signToken({ sub: 'a' }, new TextEncoder().encode('another-secret-of-thirty-two-byt')), message: /signature/ },
    { token: await tokenFor('a', {}, { expiresIn: -60 }), message: /token expired/ },
    { token: 'not.a.jwt', message: /malformed/ },
    { token: await tokenFor('a', {}, { expiresIn: null }), message: /"exp" claim/ },
  ];
  for (const { token, message } of cases) {
    const res = await httpJson(`${stack.url}/api/test/echo?value=x`, { headers: bearer(token) });
    assert.equal(res.status, 401, token);
    assert.equal(res.body.code, 'Unauthenticated');
    assert.match(res.body.errorMessage ?? '', message);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token", error_description="[^"]+"$/);
  }
});

test('a token signed with an algorithm the gateway does not allow is refused, even with the right secret', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const hs512 = await tokenFor('a', {}, { alg: 'HS512' });
  const res = await httpJson(`${stack.url}/api/test/echo?value=x`, { headers: bearer(hs512) });
  assert.equal(res.status, 401);
  assert.match(res.body.errorMessage ?? '', /algorithm/);
});

test('issuer and audience are checked when configured', async (t) => {
  const stack = await startStack(t, { gateway: { auth: { jwt: { secret: SECRET, issuer: 'https://idp.test', audience: 'weft' } } } });
  const right = await tokenFor('a', {}, { issuer: 'https://idp.test', audience: 'weft' });
  assert.equal((await httpJson(`${stack.url}/api/test/echo?value=x`, { headers: bearer(right) })).status, 200);
  for (const wrong of [
    await tokenFor('a', {}, { issuer: 'https://other.test', audience: 'weft' }),
    await tokenFor('a', {}, { issuer: 'https://idp.test' }),
  ]) {
    const res = await httpJson(`${stack.url}/api/test/echo?value=x`, { headers: bearer(wrong) });
    assert.equal(res.status, 401);
    assert.match(res.body.errorMessage ?? '', /"(iss|aud)" claim/);
  }
});

test('a good token reaches the service as x-weft-identity; the token and a client x-weft-identity do not', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const token = await tokenFor('acme', { name: 'Alice', roles: ['admin'] });
  const forged = JSON.stringify({ sub: 'evil' });
  const res = await httpJson(`${stack.url}/api/test/context?token=${token}`, { headers: { ...bearer(token), 'x-weft-identity': forged } });
  assert.equal(res.status, 200);
  const seen = res.body.result as SeenContext;
  const identity = JSON.parse(seen.headers['x-weft-identity'] ?? 'null') as Record<string, unknown>;
  assert.equal(identity['sub'], 'acme');
  assert.equal(identity['name'], 'Alice');
  assert.deepEqual(identity['roles'], ['admin']);
  assert.equal(typeof identity['exp'], 'number');
  assert.equal(seen.headers['authorization'], undefined, 'the Bearer token is not forwarded');
  assert.ok(!JSON.stringify(seen).includes(token), 'the token appears nowhere the service sees');
  // The token in the query string works as well (what a browser WebSocket has).
  const viaQuery = await httpJson(`${stack.url}/api/test/echo?value=q&token=${token}`);
  assert.equal(viaQuery.status, 200);
  assert.equal(viaQuery.body.result, 'q');
});

test('an HTTP businessId that is not the token sub is refused 403; with none, the token sub is bound to the businessId parameter', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const alice = await tokenFor('alice');
  const bobSession = await connectWs(`${stack.wsUrl}/api/chat`, { headers: bearer(await tokenFor('bob')) });
  t.after(() => bobSession.ws.terminate());
  const aliceSession = await connectWs(`${stack.wsUrl}/api/chat`, { headers: bearer(alice) });
  t.after(() => aliceSession.ws.terminate());

  for (const [url, headers] of [
    [`${stack.url}/api/chat/push?businessId=bob&msg=x`, {}],
    [`${stack.url}/api/chat/push?bussinessId=bob&msg=x`, {}],
    [`${stack.url}/api/chat/push?msg=x`, { businessid: 'bob' }],
    // Every place is checked, not only the first found.
    [`${stack.url}/api/chat/push?businessId=alice&msg=x`, { bussinessid: 'bob' }],
  ] as const) {
    const res = await httpJson(url, { headers: { ...bearer(alice), ...headers } });
    assert.equal(res.status, 403, url);
    assert.equal(res.body.code, 'Unauthorized');
    assert.match(res.body.errorMessage ?? '', /"sub" claim/);
    assert.equal(res.headers.get('www-authenticate'), null);
  }
  assert.deepEqual(bobSession.messages, [], 'bob received nothing');

  const named = await httpJson(`${stack.url}/api/chat/push?businessId=alice&msg=one`, { headers: bearer(alice) });
  assert.equal(named.status, 200);
  assert.equal(named.body.result, 1);
  const unnamed = await httpJson(`${stack.url}/api/chat/push?msg=two`, { headers: bearer(alice) });
  assert.equal(unnamed.status, 200);
  assert.equal(unnamed.body.result, 1, 'the businessId parameter was bound to the token sub');
  assert.deepEqual(await aliceSession.waitFor(2), ['one', 'two']);
  assert.deepEqual(bobSession.messages, []);
});

test('the authenticate hook runs after the token check and sees the businessId and the identity', async (t) => {
  const seen: { kind: string; businessId: string | undefined; sub: unknown }[] = [];
  const stack = await startStack(t, {
    gateway: {
      ...JWT,
      authenticate: (req) => {
        seen.push({ kind: req.kind, businessId: req.businessId, sub: req.identity?.['sub'] });
        if (req.identity?.['plan'] !== 'pro') throw new WeftError('Unauthorized', 'pro plan only');
        return { 'x-plan': 'pro' };
      },
    },
  });
  const free = await httpJson(`${stack.url}/api/test/context`, { headers: bearer(await tokenFor('acme', { plan: 'free' })) });
  assert.equal(free.status, 403);
  assert.equal(free.body.errorMessage, 'pro plan only');
  const pro = await httpJson(`${stack.url}/api/test/context`, { headers: bearer(await tokenFor('acme', { plan: 'pro' })) });
  assert.equal(pro.status, 200);
  assert.equal((pro.body.result as SeenContext).headers['x-plan'], 'pro');
  // No token: refused before the hook runs.
  assert.equal((await httpJson(`${stack.url}/api/test/context`)).status, 401);
  assert.deepEqual(seen, [
    { kind: 'http', businessId: 'acme', sub: 'acme' },
    { kind: 'http', businessId: 'acme', sub: 'acme' },
  ]);
});

test('health, OpenAPI and an unknown route need no token', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  assert.equal((await httpJson(`${stack.url}/healthz`)).status, 200);
  assert.equal((await httpJson(`${stack.url}/swagger.json`)).status, 200);
  assert.equal((await httpJson(`${stack.url}/api/nowhere`)).status, 404);
});

test('GET /demo/token exists only with demo.issueTokens, and signs a token for that businessId only', async (t) => {
  const demo = { wsPath: '/api/chat', echoPath: '/api/chat/echo' };
  const open = await startStack(t, { gateway: { demo } });
  assert.equal((await httpJson(`${open.url}/demo/token?businessId=acme`)).status, 404);
  const tokensOn = await startStack(t, { gateway: { ...JWT, demo } });
  assert.equal(
    (await httpJson(`${tokensOn.url}/demo/token?businessId=acme`)).status,
    404,
    'a token gateway with a demo page still issues none unasked',
  );

  const issuing = await startStack(t, { gateway: { ...JWT, demo: { ...demo, issueTokens: true } } });
  assert.equal((await httpJson(`${issuing.url}/demo/token`)).status, 400);
  const issued = await httpJson(`${issuing.url}/demo/token?businessId=acme`);
  assert.equal(issued.status, 200);
  assert.equal(issued.headers.get('cache-control'), 'no-store');
  const { token, expiresIn } = issued.body.result as { token: string; expiresIn: number };
  assert.equal(expiresIn, 600);
  const client = await connectWs(`${issuing.wsUrl}/api/chat?businessId=acme&token=${token}`);
  t.after(() => client.ws.terminate());
  const other = await httpJson(`${issuing.url}/api/chat/push?businessId=bob&msg=x`, { headers: bearer(token) });
  assert.equal(other.status, 403);
});
