/**
 * Keys tokens are verified with: a public key PEM, and a JWKS served over
 * HTTP (fetched once, cached, fetched again for a key it does not hold and
 * when stale), and what a JWKS that is down or silent does to a request.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { importPKCS8 } from 'jose';
import { IChatAppService } from './fixtures/services.js';
import { startStack } from './fixtures/stack.js';
import { connectWs, httpJson, refusedWs } from './helpers/index.js';
import { newSigningKey, signToken, signWith, startJwksServer, tokenFor } from './helpers/tokens.js';

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

test('tokens signed for a public key PEM are accepted with its own algorithm, others are refused', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const signing = await importPKCS8(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'EdDSA');
  const stack = await startStack(t, { gateway: { auth: { jwt: { publicKey: pem } } } });
  const good = await signToken({ sub: 'acme' }, signing, { alg: 'EdDSA' });
  const res = await httpJson(`${stack.url}/api/test/echo?value=ok`, { headers: bearer(good) });
  assert.equal(res.status, 200);
  const client = await connectWs(`${stack.wsUrl}/api/chat?token=${good}`);
  t.after(() => client.ws.terminate());
  assert.equal(await stack.hosts[0]!.proxy(IChatAppService).count('acme'), 1);
  // An HS256 token, even one "signed" with the PEM text as its secret, is not accepted.
  const confused = await signToken({ sub: 'acme' }, new TextEncoder().encode(pem));
  assert.equal((await httpJson(`${stack.url}/api/test/echo?value=x`, { headers: bearer(confused) })).status, 401);
});

test('a JWKS served over HTTP verifies tokens, is fetched once, and a rotated-in key is fetched when a token names it', async (t) => {
  const first = await newSigningKey('k1');
  const jwks = await startJwksServer(t, [first.publicJwk]);
  const stack = await startStack(t, { gateway: { auth: { jwt: { jwksUrl: jwks.url, jwksCooldownMs: 0 } } } });
  for (const value of ['a', 'b']) {
    const res = await httpJson(`${stack.url}/api/test/echo?value=${value}`, { headers: bearer(await signWith(first, { sub: 'acme' })) });
    assert.equal(res.status, 200);
  }
  assert.equal(jwks.fetches, 1, 'cached after the first fetch');

  // Rotation: the issuer publishes k2 and signs with it; the gateway has never seen k2.
  const second = await newSigningKey('k2', 'RS256');
  jwks.keys = [first.publicJwk, second.publicJwk];
  const rotated = await signWith(second, { sub: 'acme' });
  assert.equal((await httpJson(`${stack.url}/api/test/echo?value=c`, { headers: bearer(rotated) })).status, 200);
  assert.equal(jwks.fetches, 2, 'fetched again for the unknown key');
  const client = await connectWs(`${stack.wsUrl}/api/chat`, { headers: bearer(rotated) });
  t.after(() => client.ws.terminate());

  // A key nobody publishes is refused (and, within the cooldown, causes no fetch storm: see jwksCooldownMs).
  const stranger = await newSigningKey('k3');
  const refused = await httpJson(`${stack.url}/api/test/echo?value=d`, { headers: bearer(await signWith(stranger, { sub: 'acme' })) });
  assert.equal(refused.status, 401);
  assert.match(refused.body.errorMessage ?? '', /no key of the JWKS/);
});

test('a key removed from the JWKS is refused once the cached set is stale and fetched again', async (t) => {
  const old = await newSigningKey('old');
  const next = await newSigningKey('new');
  const jwks = await startJwksServer(t, [old.publicJwk]);
  // A cache that is stale at once: every verification fetches the set.
  const stack = await startStack(t, { gateway: { auth: { jwt: { jwksUrl: jwks.url, jwksCacheMaxAgeMs: 1 } } } });
  const oldToken = await signWith(old, { sub: 'acme' });
  assert.equal((await httpJson(`${stack.url}/api/test/echo?value=a`, { headers: bearer(oldToken) })).status, 200);
  jwks.keys = [next.publicJwk];
  await new Promise((r) => setTimeout(r, 5));
  assert.equal((await httpJson(`${stack.url}/api/test/echo?value=b`, { headers: bearer(oldToken) })).status, 401);
  assert.equal((await httpJson(`${stack.url}/api/test/echo?value=c`, { headers: bearer(await signWith(next, { sub: 'acme' })) })).status, 200);
});

test('a JWKS that cannot be fetched answers 503, one that never answers 504, both with the JSON body', async (t) => {
  const key = await newSigningKey('k1');
  const down = await startJwksServer(t, []);
  const downUrl = down.url.replace(/:\d+\//, ':1/'); // nothing listens on port 1
  const unreachable = await startStack(t, { gateway: { auth: { jwt: { jwksUrl: downUrl } } } });
  const token = await signWith(key, { sub: 'acme' });
  const res = await httpJson(`${unreachable.url}/api/test/echo?value=x`, { headers: bearer(token) });
  assert.equal(res.status, 503);
  assert.equal(res.body.code, 'ServiceUnavailable');
  assert.match(res.body.errorMessage ?? '', /could not fetch the JWKS/);

  const silent = await startJwksServer(t, [key.publicJwk]);
  silent.hang();
  const slow = await startStack(t, { gateway: { authTimeoutMs: 300, auth: { jwt: { jwksUrl: silent.url } } } });
  const http504 = await httpJson(`${slow.url}/api/test/echo?value=x`, { headers: bearer(token) });
  assert.equal(http504.status, 504);
  assert.equal(http504.body.code, 'Timeout');
  const ws504 = await refusedWs(`${slow.wsUrl}/api/chat?token=${token}`);
  assert.equal(ws504.status, 504);
  assert.equal(ws504.body.code, 'Timeout');
  assert.equal(slow.gateway.sessionCount, 0);
});

test('an HS256 token is refused by a JWKS gateway', async (t) => {
  const key = await newSigningKey('k1');
  const jwks = await startJwksServer(t, [key.publicJwk]);
  const stack = await startStack(t, { gateway: { auth: { jwt: { jwksUrl: jwks.url } } } });
  const res = await httpJson(`${stack.url}/api/test/echo?value=x`, { headers: bearer(await tokenFor('acme')) });
  assert.equal(res.status, 401);
  assert.match(res.body.errorMessage ?? '', /algorithm/);
});
