/**
 * WsAppServiceBase services as the seed has them: echo by businessId over
 * HTTP and RPC, per-session hooks, and the session manager reaching sessions
 * wherever they are bound.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type, createHost, defineContract, implement, param, type SessionManager, type WsSession } from '../src/index.js';
import { ChatAppService, IChatAppService } from './fixtures/services.js';
import { connectWs, eventually, httpJson, quietLogger, type OpenedClient } from './helpers/index.js';
import { startStack, type Stack } from './fixtures/stack.js';

interface Opened {
  client: OpenedClient;
  sessionId: string;
  /** Index of the host the session is bound to. */
  host: number;
}

let tagCounter = 0;

/** Opens a session and finds, from what the hosts' onOpen logged, its id and host (each client gets its own user-agent). */
async function open(stack: Stack, businessId: string, t: { after: (fn: () => void) => void }): Promise<Opened> {
  const tag = `tag-${++tagCounter}`;
  const client = await connectWs(`${stack.wsUrl}/api/chat?businessId=${encodeURIComponent(businessId)}`, { headers: { 'user-agent': tag } });
  t.after(() => client.ws.terminate());
  for (const [host, chat] of stack.chats.entries()) {
    const line = chat.log.find((l) => l.startsWith(`open ${businessId} `) && l.endsWith(` ua=${tag}`));
    if (line !== undefined) return { client, sessionId: line.split(' ')[2]!, host };
  }
  throw new Error(`no host logged the session of ${tag}`);
}

/** The service's own session manager (what its methods use). */
function managerOf(chat: ChatAppService): SessionManager {
  return (chat as unknown as { sessionManager: SessionManager }).sessionManager;
}

test('echo over HTTP sends message:<msg>,sessionId:<id> to every session of the businessId and answers how many it reached', async (t) => {
  const stack = await startStack(t);
  const a = await open(stack, '100', t);
  const b = await open(stack, '100', t);
  const other = await open(stack, '200', t);
  const res = await httpJson(`${stack.url}/api/chat/echo?businessId=100&msg=hello`);
  assert.equal(res.status, 200);
  assert.equal(res.body.code, 'Success');
  assert.equal(res.body.result, 2);
  assert.deepEqual(await a.client.waitFor(1), [`message:hello,sessionId:${a.sessionId}`]);
  assert.deepEqual(await b.client.waitFor(1), [`message:hello,sessionId:${b.sessionId}`]);
  assert.notEqual(a.sessionId, b.sessionId);
  // The other businessId hears nothing; a push to it is the first message it gets.
  assert.equal(await stack.chats[0]!.push('200', 'only 200'), 1);
  assert.deepEqual(await other.client.waitFor(1), ['only 200']);
  assert.equal(a.client.messages.length, 1);
  assert.equal(b.client.messages.length, 1);
});

test('the acknowledgements of pushes in one turn come back together, and each push resolves with its own count', async (t) => {
  const stack = await startStack(t);
  const a = await open(stack, '100', t);
  const b = await open(stack, '100', t);
  await open(stack, '200', t);
  const before = stack.hosts[0]!.stats().framesReceived;
  const pushes = 200;
  const reached = await Promise.all(Array.from({ length: pushes }, (_, i) => stack.chats[0]!.push(i % 2 === 0 ? '100' : '200', `p${i}`)));
  assert.deepEqual(
    reached,
    Array.from({ length: pushes }, (_, i) => (i % 2 === 0 ? 2 : 1)),
  );
  const after = stack.hosts[0]!.stats().framesReceived;
  const ackFrames = (f: Record<string, number>): number => (f['PushAck'] ?? 0) + (f['PushAcks'] ?? 0);
  assert.ok((after['PushAcks'] ?? 0) > (before['PushAcks'] ?? 0), 'batched acknowledgements');
  assert.ok(ackFrames(after) - ackFrames(before) < pushes, `fewer ack frames than pushes: ${ackFrames(after) - ackFrames(before)}`);
  assert.equal((await a.client.waitFor(pushes / 2)).length, pushes / 2);
  assert.equal((await b.client.waitFor(pushes / 2)).length, pushes / 2);
});

test('echo with no session answers HTTP 400 with status 1000, code BusinessError and a message naming the businessId', async (t) => {
  const stack = await startStack(t);
  const someoneElse = await open(stack, '1', t);
  const res = await httpJson(`${stack.url}/api/chat/echo?businessId=424242&msg=hello`);
  assert.equal(res.status, 400);
  assert.equal(res.body.status, 1000);
  assert.equal(res.body.code, 'BusinessError');
  assert.equal(res.body.result, null);
  assert.equal(res.body.errorMessage, 'no session exists for businessId 424242');
  assert.deepEqual(someoneElse.client.messages, []);
});

const ICallerAppService = defineContract({
  name: 'ICallerAppService',
  methods: {
    relay: { params: [param('businessId', Type.String()), param('msg', Type.String())], returns: Type.Integer() },
  },
});

test('another service calling echo through the typed proxy gets an error whose code is BusinessError', async (t) => {
  const stack = await startStack(t);
  // A host of its own that serves no chat: every call to IChatAppService crosses a link.
  const caller = await createHost({
    cluster: stack.cluster,
    logger: quietLogger(),
    services: [implement(ICallerAppService, ({ proxy }) => ({ relay: (businessId, msg) => proxy(IChatAppService).echo(businessId, msg) }))],
  }).start();
  t.after(() => caller.stop());
  await assert.rejects(caller.proxy(IChatAppService).echo('nobody', 'hi'), (e: unknown) => {
    const err = e as { code?: string; message?: string };
    assert.equal(err.code, 'BusinessError');
    assert.equal(err.message, 'no session exists for businessId nobody');
    return true;
  });
  // Two hops (HTTP -> caller -> chat): the code survives both.
  const relayed = (await eventually(
    async () => {
      const r = await httpJson(`${stack.url}/api/caller/relay?businessId=nobody&msg=hi`);
      return r.status === 404 ? undefined : r;
    },
    5000,
    'the caller route',
  ))!;
  assert.equal(relayed.status, 400);
  assert.equal(relayed.body.code, 'BusinessError');
  // With a session, the same proxy call reaches it.
  const s = await open(stack, 'somebody', t);
  assert.equal(await caller.proxy(IChatAppService).echo('somebody', 'hi'), 1);
  assert.deepEqual(await s.client.waitFor(1), [`message:hi,sessionId:${s.sessionId}`]);
});

class RecordingChat extends ChatAppService {
  readonly opened: WsSession[] = [];
  readonly messaged: WsSession[] = [];
  override onOpen(session: WsSession): void {
    super.onOpen(session);
    this.opened.push(session);
  }
  override async onMessage(session: WsSession, message: string | Buffer): Promise<void> {
    this.messaged.push(session);
    await super.onMessage(session, message);
  }
}

test('hooks see the session id, businessId, the forwarded handshake headers and query', async (t) => {
  const chat = new RecordingChat();
  const stack = await startStack(t, {
    host: { services: [implement(IChatAppService, chat)] },
    gateway: { forwardHeaders: ['user-agent', 'x-custom'] },
  });
  const client = await connectWs(`${stack.wsUrl}/api/chat?businessId=500&room=blue`, {
    headers: { 'user-agent': 'weft-test/1.0', 'x-custom': 'abc', 'x-other': 'not listed' },
  });
  t.after(() => client.ws.terminate());
  assert.equal(chat.opened.length, 1);
  const session = chat.opened[0]!;
  assert.equal(session.businessId, '500');
  assert.equal(session.service, 'IChatAppService');
  assert.equal(session.gatewayNodeId, stack.gateway.nodeId);
  assert.equal(session.headers['user-agent'], 'weft-test/1.0');
  assert.equal(session.headers['x-custom'], 'abc');
  assert.equal(session.headers['x-other'], undefined, 'a header not in forwardHeaders is not passed on');
  assert.equal(session.headers['sec-websocket-key'], undefined, 'handshake internals are not passed on');
  assert.equal(session.headers['connection'], undefined);
  assert.equal(session.query['room'], 'blue');
  assert.equal(session.query['businessid'], '500');
  assert.match(session.remoteAddress, /127\.0\.0\.1/);
  // The id the hook sees is the one the echo names, and later hooks get the same session.
  assert.equal(await chat.echo('500', 'x'), 1);
  assert.deepEqual(await client.waitFor(1), [`message:x,sessionId:${session.id}`]);
  client.ws.send('hi');
  await client.waitFor(2);
  assert.equal(chat.messaged[0], session);
  assert.ok(chat.log.includes(`message ${session.id} hi`));
});

test('onMessage receives text and binary messages from the client', async (t) => {
  const stack = await startStack(t);
  const s = await open(stack, 'm', t);
  s.client.ws.send('hello');
  s.client.ws.send(Buffer.from([1, 2, 3, 4, 5]));
  s.client.ws.send('ünïcode ✓');
  assert.deepEqual(await s.client.waitFor(3), ['got:hello', 'got:binary:5', 'got:ünïcode ✓']);
  const log = stack.chats[0]!.log;
  assert.ok(log.includes(`message ${s.sessionId} hello`));
  assert.ok(log.includes(`message ${s.sessionId} binary:5`));
});

test('onClose runs with the close code and reason the client sent', async (t) => {
  const stack = await startStack(t);
  const s = await open(stack, 'c', t);
  const stays = await open(stack, 'c', t);
  s.client.ws.close(4001, 'leaving now');
  await eventually(() => stack.chats[0]!.log.includes(`close ${s.sessionId} 4001 leaving now`), 5000, 'onClose with 4001');
  assert.ok(!stack.chats[0]!.log.some((l) => l.startsWith(`close ${stays.sessionId}`)));
  await eventually(async () => (await stack.chats[0]!.count('c')) === 1, 5000, 'one session left');
});

test('a hook that throws calls onError and the session stays usable', async (t) => {
  const stack = await startStack(t);
  const s = await open(stack, 'e', t);
  s.client.ws.send('throw');
  await eventually(() => stack.chats[0]!.log.includes(`error ${s.sessionId} hook failure`), 5000, 'onError');
  s.client.ws.send('after');
  assert.deepEqual(await s.client.waitFor(1), ['got:after']);
  assert.equal(s.client.ws.readyState, s.client.ws.OPEN);
  assert.equal(await stack.chats[0]!.push('e', 'pushed'), 1);
  assert.deepEqual(await s.client.waitFor(2), ['got:after', 'pushed']);
});

test('sessionManager sendTo reaches one session, pushToBusiness says how many it reached, broadcast reaches every session', async (t) => {
  const stack = await startStack(t);
  const chat = stack.chats[0]!;
  const a1 = await open(stack, 'A', t);
  const a2 = await open(stack, 'A', t);
  const b = await open(stack, 'B', t);
  assert.equal(await chat.sendTo(a2.sessionId, 'just you'), true);
  assert.deepEqual(await a2.client.waitFor(1), ['just you']);
  assert.equal(await chat.push('A', 'all of A'), 2);
  assert.equal(await chat.push('nobody', 'lost'), 0);
  assert.deepEqual(await a1.client.waitFor(1), ['all of A']);
  assert.deepEqual(await a2.client.waitFor(2), ['just you', 'all of A']);
  // Bytes go as a binary frame.
  assert.equal(await managerOf(chat).pushToBusiness('B', new Uint8Array([9, 9, 9])), 1);
  assert.deepEqual(await b.client.waitFor(1), ['binary:3']);
  assert.equal(await chat.broadcast('everyone'), 3);
  assert.deepEqual(await a1.client.waitFor(2), ['all of A', 'everyone']);
  assert.deepEqual(await a2.client.waitFor(3), ['just you', 'all of A', 'everyone']);
  assert.deepEqual(await b.client.waitFor(2), ['binary:3', 'everyone']);
});

test('sessionManager close ends a session with the given code and reason', async (t) => {
  const stack = await startStack(t);
  const chat = stack.chats[0]!;
  const s = await open(stack, 'k', t);
  const stays = await open(stack, 'k', t);
  assert.equal(await chat.kick(s.sessionId, 4000, 'bye'), true);
  assert.deepEqual(await s.client.closed, { code: 4000, reason: 'bye' });
  await eventually(() => chat.log.includes(`close ${s.sessionId} 4000 bye`), 5000, 'onClose on the host');
  await eventually(async () => (await chat.count('k')) === 1, 5000, 'one session left');
  // A code a server may not send is refused, and the session stays.
  await assert.rejects(chat.kick(stays.sessionId, 1005, 'no'), (e: unknown) => (e as { code?: string }).code === 'BadRequest');
  assert.equal(await chat.push('k', 'still'), 1);
  assert.deepEqual(await stays.client.waitFor(1), ['still']);
});

test('closeBusiness closes every session of a businessId, and only those', async (t) => {
  const stack = await startStack(t);
  const chat = stack.chats[0]!;
  const revoked = [await open(stack, 'revoked', t), await open(stack, 'revoked', t)];
  const other = await open(stack, 'other', t);
  assert.equal(await chat.kickBusiness('revoked', 4003, 'access revoked'), 2);
  for (const s of revoked) assert.deepEqual(await s.client.closed, { code: 4003, reason: 'access revoked' });
  await eventually(async () => (await chat.count('revoked')) === 0, 5000, 'the revoked sessions gone from the directory');
  assert.equal(await chat.push('other', 'still here'), 1);
  assert.deepEqual(await other.client.waitFor(1), ['still here']);
  assert.equal(await chat.kickBusiness('nobody', 4003, 'none'), 0);
});

test('count, has and list answer for the whole service on every host', async (t) => {
  const stack = await startStack(t, { hosts: 2 });
  const opened: Opened[] = [await open(stack, 'shared', t), await open(stack, 'shared', t)];
  for (let i = 0; opened.filter((o) => o.host === 0).length === 0 || opened.filter((o) => o.host === 1).length === 0; i++) {
    assert.ok(i < 64, 'sessions never reached both hosts');
    opened.push(await open(stack, `solo-${i}`, t));
  }
  const ids = opened.map((o) => o.sessionId).sort();
  for (const chat of stack.chats) {
    assert.equal(await chat.count(), opened.length);
    assert.equal(await chat.count('shared'), 2);
    assert.equal(await chat.count('nobody'), 0);
    assert.equal(await chat.has('shared'), true);
    assert.equal(await chat.has('nobody'), false);
    const list = await chat.list();
    assert.deepEqual(list.map((s) => s.sessionId).sort(), ids);
    for (const s of list) assert.equal(s.gatewayNodeId, stack.gateway.nodeId);
    assert.deepEqual(
      list
        .filter((s) => s.businessId === 'shared')
        .map((s) => s.sessionId)
        .sort(),
      opened
        .slice(0, 2)
        .map((o) => o.sessionId)
        .sort(),
    );
  }
  // After a client leaves, every host knows.
  opened[0]!.client.ws.close();
  for (const chat of stack.chats) {
    await eventually(async () => (await chat.count()) === opened.length - 1 && (await chat.count('shared')) === 1, 5000, 'counts after a close');
  }
});

test('a push made on either host reaches sessions bound to the other host', async (t) => {
  const stack = await startStack(t, { hosts: 2 });
  const byHost: (Opened | undefined)[] = [undefined, undefined];
  for (let i = 0; byHost[0] === undefined || byHost[1] === undefined; i++) {
    assert.ok(i < 64, 'sessions never reached both hosts');
    const o = await open(stack, `p-${i}`, t);
    byHost[o.host] ??= o;
  }
  for (const from of [0, 1]) {
    const target = byHost[1 - from]!;
    const businessId = stack.chats[1 - from]!.log.find((l) => l.includes(` ${target.sessionId} `))!.split(' ')[1]!;
    assert.equal(await stack.chats[from]!.push(businessId, `push from host ${from}`), 1);
    assert.equal(await stack.chats[from]!.sendTo(target.sessionId, `sendTo from host ${from}`), true);
    assert.equal(await stack.chats[from]!.echo(businessId, `echo from host ${from}`), 1);
    assert.deepEqual(await target.client.waitFor(3), [
      `push from host ${from}`,
      `sendTo from host ${from}`,
      `message:echo from host ${from},sessionId:${target.sessionId}`,
    ]);
  }
  // And over HTTP, whichever host the gateway picks for the call.
  for (const target of byHost) {
    const businessId = stack.chats[target!.host]!.log.find((l) => l.includes(` ${target!.sessionId} `))!.split(' ')[1]!;
    for (let i = 0; i < 4; i++) {
      const res = await httpJson(`${stack.url}/api/chat/push?businessId=${businessId}&msg=http-${i}`);
      assert.equal(res.body.result, 1);
    }
    assert.deepEqual((await target!.client.waitFor(7)).slice(3), ['http-0', 'http-1', 'http-2', 'http-3']);
  }
});

test('sendTo an unknown session resolves false', async (t) => {
  const stack = await startStack(t);
  const chat = stack.chats[0]!;
  const s = await open(stack, 'u', t);
  assert.equal(await chat.sendTo(`${stack.gateway.nodeId}.zzzz`, 'x'), false, 'unknown id on a live gateway');
  assert.equal(await chat.sendTo('no-such-gateway.1', 'x'), false, 'unknown gateway');
  assert.equal(await chat.sendTo('nodot', 'x'), false, 'not a session id');
  s.client.ws.close();
  await s.client.closed;
  await eventually(async () => (await chat.count('u')) === 0, 5000, 'session gone');
  assert.equal(await chat.sendTo(s.sessionId, 'x'), false, 'a closed session');
  assert.deepEqual(s.client.messages, []);
});
