/**
 * The WebSocket front door (DESIGN.md section 7): which handshakes it refuses
 * and with what answer, how it binds sessions to hosts, and what clients see
 * when a gateway drains or a host goes away.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { WebSocketModule, WeftError, createHost, implement } from '../src/index.js';
import { ChatAppService, IChatAppService } from './fixtures/services.js';
import { connectWs, eventually, httpJson, quietLogger, type OpenedClient } from './helpers/index.js';
import { startStack, type Stack } from './fixtures/stack.js';

interface Refusal {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { result: unknown; status: number; code: string; errorMessage: string; validErrors: unknown };
}

/** Opens a WebSocket that must be refused; resolves with the HTTP answer. */
async function refused(url: string, options: { headers?: Record<string, string> } = {}): Promise<Refusal> {
  try {
    const client = await connectWs(url, options);
    client.ws.terminate();
  } catch (e) {
    const err = e as { status?: number; headers?: Refusal['headers']; body?: string };
    if (err.status === undefined) throw e;
    return { status: err.status, headers: err.headers ?? {}, body: JSON.parse(err.body ?? '') as Refusal['body'] };
  }
  throw new Error(`handshake to ${url} was accepted; expected a refusal`);
}

/** Sends a WebSocket upgrade request on a raw socket; resolves with everything the gateway wrote before it closed. */
function rawUpgrade(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(data));
    socket.setTimeout(10_000, () => socket.destroy(new Error('gateway kept the refused socket open')));
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}

/** Lines `open <businessId> <sessionId> ua=<ua>` that a host's ChatAppService logged. */
function opens(stack: Stack, hostIndex: number): { businessId: string; sessionId: string }[] {
  return stack.chats[hostIndex]!.log.filter((l) => l.startsWith('open ')).map((l) => {
    const [, businessId, sessionId] = l.split(' ');
    return { businessId: businessId!, sessionId: sessionId! };
  });
}

function closeAll(clients: OpenedClient[]): void {
  for (const c of clients) c.ws.terminate();
}

test('refuses a handshake without a businessId with 400 and a JSON body, and does not upgrade', async (t) => {
  const stack = await startStack(t);
  for (const url of [`${stack.wsUrl}/api/chat`, `${stack.wsUrl}/api/chat?businessId=`, `${stack.wsUrl}/api/chat?other=1`]) {
    const r = await refused(url);
    assert.equal(r.status, 400, url);
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.equal(r.body.code, 'BadRequest');
    assert.equal(r.body.result, null);
    assert.match(r.body.errorMessage, /businessId/);
  }
  // On the wire: a 400 status line, never 101, and the socket is closed after the answer.
  const raw = await rawUpgrade(stack.gateway.port, '/api/chat');
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.doesNotMatch(raw, /101 Switching Protocols/i);
  assert.equal((JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Refusal['body']).code, 'BadRequest');
  assert.equal(stack.gateway.sessionCount, 0);
  assert.deepEqual(opens(stack, 0), [], 'the host was never asked to open a session');
});

test('accepts the businessId from a request header', async (t) => {
  const stack = await startStack(t);
  const client = await connectWs(`${stack.wsUrl}/api/chat`, { headers: { businessId: 'from-header' } });
  t.after(() => closeAll([client]));
  assert.deepEqual(
    opens(stack, 0).map((o) => o.businessId),
    ['from-header'],
  );
  const res = await httpJson(`${stack.url}/api/chat/push?businessId=from-header&msg=hi`);
  assert.equal(res.status, 200);
  assert.equal(res.body.result, 1);
  assert.deepEqual(await client.waitFor(1), ['hi']);
});

test("matches the businessId name case-insensitively and accepts Silky's spelling bussinessId", async (t) => {
  const stack = await startStack(t);
  const clients = [
    await connectWs(`${stack.wsUrl}/api/chat?BusinessID=q-mixed`),
    await connectWs(`${stack.wsUrl}/api/chat`, { headers: { BUSINESSID: 'h-upper' } }),
    await connectWs(`${stack.wsUrl}/api/chat?bussinessId=q-silky`),
    await connectWs(`${stack.wsUrl}/api/chat`, { headers: { BussinessId: 'h-silky' } }),
  ];
  t.after(() => closeAll(clients));
  assert.deepEqual(
    opens(stack, 0).map((o) => o.businessId),
    ['q-mixed', 'h-upper', 'q-silky', 'h-silky'],
  );
  // Each session is reachable under the businessId it gave.
  for (const [i, businessId] of ['q-mixed', 'h-upper', 'q-silky', 'h-silky'].entries()) {
    assert.equal(await stack.chats[0]!.push(businessId, `to ${businessId}`), 1);
    assert.deepEqual(await clients[i]!.waitFor(1), [`to ${businessId}`]);
  }
});

test('answers 404 with a JSON body for a path that is no WebSocket service', async (t) => {
  const stack = await startStack(t);
  for (const path of ['/api/nosuch?businessId=1', '/api/chat/echo?businessId=1', '/?businessId=1']) {
    const r = await refused(`${stack.wsUrl}${path}`);
    assert.equal(r.status, 404, path);
    assert.equal(r.body.code, 'NotFound');
    assert.match(String(r.headers['content-type']), /application\/json/);
  }
  assert.equal(stack.gateway.sessionCount, 0);
});

test('answers 503 with Retry-After and a JSON body when the service has no live host', async (t) => {
  const stack = await startStack(t, { gateway: { retryAfterSeconds: 3 } });
  const before = await connectWs(`${stack.wsUrl}/api/chat?businessId=1`);
  await stack.hosts[0]!.stop();
  assert.equal((await before.closed).code, 1012);
  const r = await refused(`${stack.wsUrl}/api/chat?businessId=1`);
  assert.equal(r.status, 503);
  assert.equal(r.headers['retry-after'], '3');
  assert.equal(r.body.code, 'ServiceUnavailable');
  assert.equal(r.body.result, null);
  assert.equal(stack.gateway.sessionCount, 0);
  // Worth retrying: once a host serves the service again, the same handshake opens.
  const chat = new ChatAppService();
  const host = await createHost({
    cluster: stack.cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IChatAppService, chat)],
  }).start();
  t.after(() => host.stop());
  const after = (await eventually(
    () => connectWs(`${stack.wsUrl}/api/chat?businessId=1`).catch(() => undefined),
    5000,
    'a session on the new host',
  ))!;
  t.after(() => after.ws.terminate());
  assert.equal(chat.log.filter((l) => l.startsWith('open 1 ')).length, 1);
});

test('refuses a handshake with 401 or 403 when the gateway authenticate hook throws, before any upgrade', async (t) => {
  const stack = await startStack(t, {
    gateway: {
      authenticate: (req) => {
        if (req.kind !== 'websocket') return;
        const token = req.query['auth'];
        if (token === undefined) throw new WeftError('Unauthenticated', 'no token');
        if (token !== 'good') throw new WeftError('Unauthorized', 'token does not allow chat');
        return { 'x-user': 'u1' };
      },
    },
  });
  const missing = await refused(`${stack.wsUrl}/api/chat?businessId=1`);
  assert.equal(missing.status, 401);
  assert.equal(missing.body.code, 'Unauthenticated');
  const denied = await refused(`${stack.wsUrl}/api/chat?businessId=1&auth=other`);
  assert.equal(denied.status, 403);
  assert.equal(denied.body.code, 'Unauthorized');
  assert.deepEqual(opens(stack, 0), [], 'refused handshakes never reach the host');
  assert.equal(stack.gateway.sessionCount, 0);
  // The same door lets a good token in.
  const ok = await connectWs(`${stack.wsUrl}/api/chat?businessId=1&auth=good`);
  t.after(() => closeAll([ok]));
  assert.equal(opens(stack, 0).length, 1);
});

test('refuses with 401 or 403 when the service onOpen throws Unauthenticated or Unauthorized, and keeps no session', async (t) => {
  const stack = await startStack(t);
  const chat = stack.chats[0]!;
  const bad = await refused(`${stack.wsUrl}/api/chat?businessId=7&token=bad`);
  assert.equal(bad.status, 401);
  assert.equal(bad.body.code, 'Unauthenticated');
  assert.equal(bad.body.errorMessage, 'bad token');
  const forbidden = await refused(`${stack.wsUrl}/api/chat?businessId=7&token=forbidden`);
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.body.code, 'Unauthorized');
  assert.equal(await chat.count(), 0);
  assert.equal(await chat.count('7'), 0);
  assert.equal(await chat.has('7'), false);
  assert.equal(stack.gateway.sessionCount, 0);
  assert.ok(!chat.log.some((l) => l.startsWith('close ')), 'a refused session never closes: it never opened');
  // Pushes find nobody, and a good token still opens.
  assert.equal(await chat.push('7', 'x'), 0);
  const ok = await connectWs(`${stack.wsUrl}/api/chat?businessId=7&token=fine`);
  t.after(() => closeAll([ok]));
  assert.equal(await chat.count('7'), 1);
});

test('a draining gateway closes open sessions with 1001 and answers new upgrades 503', async (t) => {
  const stack = await startStack(t, { gateway: { stopTimeoutMs: 2000 } });
  const a = await connectWs(`${stack.wsUrl}/api/chat?businessId=d`);
  // A client that does not read holds the drain open (it never answers the close), so the window is observable.
  const stuck = await connectWs(`${stack.wsUrl}/api/chat?businessId=d`);
  (stuck.ws as unknown as { _socket: net.Socket })._socket.pause();
  t.after(() => closeAll([a, stuck]));
  const stopping = stack.gateway.stop();
  const closed = await a.closed;
  assert.equal(closed.code, 1001);
  const r = await refused(`${stack.wsUrl}/api/chat?businessId=d`);
  assert.equal(r.status, 503);
  assert.ok(r.headers['retry-after'] !== undefined, 'a 503 carries Retry-After');
  assert.equal(r.body.code, 'Draining');
  await stopping;
  assert.equal(stack.gateway.sessionCount, 0);
  // The host heard both sessions end.
  await eventually(() => stack.chats[0]!.log.filter((l) => l.startsWith('close ')).length === 2, 5000, 'both sessions closed on the host');
});

test('binds every session of one businessId to the same host and spreads businessIds over the hosts', async (t) => {
  const stack = await startStack(t, { hosts: 2 });
  const clients: OpenedClient[] = [];
  t.after(() => closeAll(clients));
  for (let i = 0; i < 4; i++) clients.push(await connectWs(`${stack.wsUrl}/api/chat?businessId=same`));
  const sameOn = [0, 1].map((h) => opens(stack, h).filter((o) => o.businessId === 'same').length);
  assert.deepEqual([...sameOn].sort(), [0, 4], `sessions of one businessId per host: ${sameOn.join(',')}`);
  // 24 businessIds all on one of two hosts would happen with probability 2^-23.
  for (let i = 0; i < 24; i++) clients.push(await connectWs(`${stack.wsUrl}/api/chat?businessId=spread-${i}`));
  const spreadOn = [0, 1].map((h) => opens(stack, h).filter((o) => o.businessId.startsWith('spread-')).length);
  assert.equal(spreadOn[0]! + spreadOn[1]!, 24);
  assert.ok(spreadOn[0]! > 0 && spreadOn[1]! > 0, `businessIds per host: ${spreadOn.join(',')}`);
  // A second session of a spread businessId joins the host that holds the first.
  for (let i = 0; i < 24; i += 6) {
    clients.push(await connectWs(`${stack.wsUrl}/api/chat?businessId=spread-${i}`));
    const holders = [0, 1].filter((h) => opens(stack, h).some((o) => o.businessId === `spread-${i}`));
    assert.equal(holders.length, 1, `spread-${i} is on hosts ${holders.join(',')}`);
  }
});

test('when the host holding sessions stops, their clients are closed with 1012 and reconnect to the remaining host', async (t) => {
  const stack = await startStack(t, { hosts: 2 });
  const first = [await connectWs(`${stack.wsUrl}/api/chat?businessId=move`), await connectWs(`${stack.wsUrl}/api/chat?businessId=move`)];
  t.after(() => closeAll(first));
  const holder = opens(stack, 0).some((o) => o.businessId === 'move') ? 0 : 1;
  const other = 1 - holder;
  assert.equal(opens(stack, holder).filter((o) => o.businessId === 'move').length, 2);
  // A session of a businessId bound to the other host must not be disturbed.
  let bystanderId = 0;
  while (opens(stack, other).length === 0) {
    first.push(await connectWs(`${stack.wsUrl}/api/chat?businessId=bystander-${++bystanderId}`));
  }
  const bystander = first[first.length - 1]!;
  const bystanderBusiness = opens(stack, other)[0]!.businessId;

  await stack.hosts[holder]!.stop();
  for (const c of first.slice(0, 2)) {
    const { code } = await c.closed;
    assert.ok(code === 1012 || code === 1011, `close code ${code}`);
  }
  const again = [await connectWs(`${stack.wsUrl}/api/chat?businessId=move`), await connectWs(`${stack.wsUrl}/api/chat?businessId=move`)];
  t.after(() => closeAll(again));
  assert.equal(opens(stack, other).filter((o) => o.businessId === 'move').length, 2, 'both reconnected to the remaining host');
  const res = await httpJson(`${stack.url}/api/chat/echo?businessId=move&msg=back`);
  assert.equal(res.status, 200);
  assert.equal(res.body.result, 2);
  for (const c of again) assert.match((await c.waitFor(1))[0]!, /^message:back,sessionId:/);
  // The session on the remaining host stayed open throughout.
  assert.equal(bystander.ws.readyState, bystander.ws.OPEN);
  assert.equal(await stack.chats[other]!.push(bystanderBusiness, 'still here'), 1);
  assert.deepEqual(await bystander.waitFor(1), ['still here']);
});
