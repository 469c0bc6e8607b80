/**
 * Built-in token authentication of WebSocket handshakes (auth.jwt): the
 * token from a Bearer header, the token query parameter or a weft.token.
 * subprotocol; the session's businessId bound to the token; the identity on
 * the host's session, and the token nowhere a service looks.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { WeftError } from '../src/index.js';
import { IChatAppService } from './fixtures/services.js';
import { startStack } from './fixtures/stack.js';
import { connectWs, eventually, refusedWs } from './helpers/index.js';
import { SECRET, tokenFor } from './helpers/tokens.js';

const JWT = { auth: { jwt: { secret: SECRET } } };

/** A raw upgrade request; resolves with the head of the answer (status line and headers). */
function rawUpgrade(port: number, path: string, extraHeaders: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () =>
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`,
      ),
    );
    let data = '';
    socket.on('data', (c: Buffer) => {
      data += c.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(data.slice(0, end));
      }
    });
    socket.on('error', reject);
  });
}

test('with auth.jwt, a handshake without a token or with a bad one is refused 401 before any host is asked', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const none = await refusedWs(`${stack.wsUrl}/api/chat?businessId=acme`);
  assert.equal(none.status, 401);
  assert.equal(none.body.code, 'Unauthenticated');
  assert.equal(none.headers['www-authenticate'], 'Bearer');
  const expired = await refusedWs(`${stack.wsUrl}/api/chat?token=${await tokenFor('acme', {}, { expiresIn: -60 })}`);
  assert.equal(expired.status, 401);
  assert.equal(expired.body.errorMessage, 'token expired');
  assert.match(String(expired.headers['www-authenticate']), /error="invalid_token"/);
  assert.deepEqual(stack.chats[0]!.log, [], 'the host was never asked');
  assert.equal(stack.gateway.sessionCount, 0);
});

test('a token for alice with a businessId of bob, in any lookup place, is refused 403 and bob gets nothing of it', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const alice = await tokenFor('alice');
  for (const [query, headers] of [
    ['businessId=bob', {}],
    ['bussinessId=bob', {}],
    ['', { businessId: 'bob' }],
    ['', { bussinessId: 'bob' }],
    ['businessId=alice', { businessId: 'bob' }],
  ] as const) {
    const refused = await refusedWs(`${stack.wsUrl}/api/chat?${query}&token=${alice}`, { headers });
    assert.equal(refused.status, 403, `${query} ${JSON.stringify(headers)}`);
    assert.equal(refused.body.code, 'Unauthorized');
    assert.match(refused.body.errorMessage ?? '', /"bob" is not the one the token's "sub" claim names/);
  }
  assert.equal(await stack.hosts[0]!.proxy(IChatAppService).count('bob'), 0);
  assert.deepEqual(stack.chats[0]!.log, []);
});

test('with no businessId given, the session is the token sub and receives that business pushes only', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const chat = stack.hosts[0]!.proxy(IChatAppService);
  const alice = await connectWs(`${stack.wsUrl}/api/chat?token=${await tokenFor('alice')}`);
  t.after(() => alice.ws.terminate());
  const same = await connectWs(`${stack.wsUrl}/api/chat?businessId=alice&token=${await tokenFor('alice')}`);
  t.after(() => same.ws.terminate());
  assert.equal(await chat.count('alice'), 2);
  assert.equal(await chat.push('alice', 'for alice'), 2);
  assert.equal(await chat.push('bob', 'for bob'), 0);
  assert.deepEqual(await alice.waitFor(1), ['for alice']);
  assert.deepEqual(await same.waitFor(1), ['for alice']);
});

test('a numeric businessId claim, or another configured claim, names the business', async (t) => {
  const stack = await startStack(t, { gateway: { auth: { jwt: { secret: SECRET, businessIdClaim: 'tenant' } } } });
  const chat = stack.hosts[0]!.proxy(IChatAppService);
  const ok = await connectWs(`${stack.wsUrl}/api/chat?token=${await tokenFor('user-1', { tenant: 100 })}`);
  t.after(() => ok.ws.terminate());
  assert.equal(await chat.count('100'), 1);
  const missing = await refusedWs(`${stack.wsUrl}/api/chat?token=${await tokenFor('user-1')}`);
  assert.equal(missing.status, 403);
  assert.match(missing.body.errorMessage ?? '', /no "tenant" claim/);
});

test('the host session has the identity in its own field, and neither the token nor a client x-weft-identity', async (t) => {
  const stack = await startStack(t, { gateway: { ...JWT, forwardHeaders: ['authorization', 'x-app'] } });
  const token = await tokenFor('acme', { name: 'Alice' });
  const client = await connectWs(`${stack.wsUrl}/api/chat?token=${token}&room=7`, {
    headers: { authorization: `Bearer ${token}`, 'x-weft-identity': '{"sub":"evil"}', 'x-app': 'demo' },
  });
  t.after(() => client.ws.terminate());
  const session = stack.chats[0]!.sessions[0]!;
  assert.equal(session.businessId, 'acme');
  assert.equal(session.identity?.['sub'], 'acme');
  assert.equal(session.identity?.['name'], 'Alice');
  assert.ok(Object.isFrozen(session.identity));
  assert.deepEqual(session.query, { room: '7' });
  assert.equal(session.headers['authorization'], undefined);
  assert.equal(session.headers['x-weft-identity'], undefined);
  assert.equal(session.headers['x-app'], 'demo');
  assert.ok(!JSON.stringify({ h: session.headers, q: session.query }).includes(token));
});

test('without auth.jwt a session has no identity and keeps its token query parameter for its own hooks', async (t) => {
  const stack = await startStack(t);
  const client = await connectWs(`${stack.wsUrl}/api/chat?businessId=1&token=fine`);
  t.after(() => client.ws.terminate());
  const session = stack.chats[0]!.sessions[0]!;
  assert.equal(session.identity, undefined);
  assert.equal(session.query['token'], 'fine');
});

test('a token in a weft.token. subprotocol is accepted and never chosen as the answer subprotocol', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const token = await tokenFor('acme');
  const client = await connectWs(`${stack.wsUrl}/api/chat`, { protocols: [`weft.token.${token}`, 'chat.v1'] });
  t.after(() => client.ws.terminate());
  assert.equal(client.ws.protocol, 'chat.v1');
  assert.equal(await stack.hosts[0]!.proxy(IChatAppService).count('acme'), 1);
  // Offered alone, the gateway answers with no subprotocol at all (browsers accept that; ws clients refuse it).
  const head = await rawUpgrade(stack.gateway.port, '/api/chat', `Sec-WebSocket-Protocol: weft.token.${token}\r\n`);
  assert.match(head, /^HTTP\/1.1 101 /);
  assert.doesNotMatch(head, /sec-websocket-protocol/i);
  assert.ok(!head.includes(token));
});

test('a custom authenticate hook sees the businessId the gateway found, in any lookup place, without tokens', async (t) => {
  const seen: (string | undefined)[] = [];
  const stack = await startStack(t, {
    gateway: {
      authenticate: (req) => {
        seen.push(req.businessId);
        if (req.headers['x-user'] !== req.businessId) throw new WeftError('Unauthorized', 'not your business');
      },
    },
  });
  const own = await connectWs(`${stack.wsUrl}/api/chat`, { headers: { bussinessId: 'u1', 'x-user': 'u1' } });
  t.after(() => own.ws.terminate());
  const other = await refusedWs(`${stack.wsUrl}/api/chat?bussinessId=u2`, { headers: { 'x-user': 'u1' } });
  assert.equal(other.status, 403);
  assert.deepEqual(seen, ['u1', 'u2']);
});

test('a hook on a token gateway sees the identity of a handshake and the session business', async (t) => {
  const seen: unknown[] = [];
  const stack = await startStack(t, {
    gateway: {
      ...JWT,
      authenticate: (req) => {
        seen.push([req.kind, req.businessId, req.identity?.['sub']]);
      },
    },
  });
  const client = await connectWs(`${stack.wsUrl}/api/chat?token=${await tokenFor('acme')}`);
  t.after(() => client.ws.terminate());
  await eventually(() => stack.chats[0]!.sessions.length === 1, 5000, 'the session opened');
  assert.deepEqual(seen, [['websocket', 'acme', 'acme']]);
});
