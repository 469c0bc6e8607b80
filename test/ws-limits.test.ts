/**
 * The front door's limits (DESIGN.md section 7): message size, UTF-8
 * validity, slow consumers, dead peers and spread-out pings. After each, the
 * gateway keeps serving HTTP and its other sessions.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { connectWs, eventually, getHealth, httpJson, type OpenedClient } from './helpers/index.js';
import { startStack, type Stack } from './fixtures/stack.js';

interface RawFrame {
  opcode: number;
  payload: Buffer;
}

interface RawClient {
  socket: net.Socket;
  frames: RawFrame[];
  /** The close code the server sent (1005 when its close frame had none). */
  closeCode: Promise<number>;
  /** Sends one masked frame, as a client must. */
  send(opcode: number, payload: Buffer): void;
}

/**
 * A WebSocket client on a raw socket, for what `ws` will not send: a manual
 * handshake, then masked frames written by hand; server frames are parsed.
 */
function rawConnect(port: number, path: string): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const frames: RawFrame[] = [];
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    let resolveClose: (code: number) => void = () => {};
    const closeCode = new Promise<number>((r) => (resolveClose = r));
    const send = (opcode: number, payload: Buffer): void => {
      const mask = randomBytes(4);
      const masked = Buffer.from(payload);
      for (let i = 0; i < masked.length; i++) masked[i]! ^= mask[i % 4]!;
      // Payloads here stay under 126 bytes: one length byte.
      assert.ok(payload.length < 126);
      socket.write(Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]));
    };
    const parse = (): void => {
      for (;;) {
        if (buffer.length < 2) return;
        const opcode = buffer[0]! & 0x0f;
        let len = buffer[1]! & 0x7f;
        let offset = 2;
        if (len === 126) {
          if (buffer.length < 4) return;
          len = buffer.readUInt16BE(2);
          offset = 4;
        } else if (len === 127) {
          if (buffer.length < 10) return;
          len = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffer.length < offset + len) return;
        const payload = buffer.subarray(offset, offset + len);
        buffer = buffer.subarray(offset + len);
        frames.push({ opcode, payload });
        if (opcode === 0x8) {
          resolveClose(payload.length >= 2 ? payload.readUInt16BE(0) : 1005);
          // Answer the close as a client should, then leave.
          try {
            send(0x8, payload.subarray(0, 2));
          } catch {
            // socket already gone
          }
          socket.end();
        }
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString('latin1');
        buffer = buffer.subarray(end + 4);
        if (!/^HTTP\/1\.1 101 /.test(head)) {
          socket.destroy();
          reject(new Error(`handshake refused: ${head.split('\r\n')[0]}`));
          return;
        }
        upgraded = true;
        resolve({ socket, frames, closeCode, send });
      }
      parse();
    });
    socket.on('error', (err) => {
      if (!upgraded) reject(err);
    });
    socket.on('close', () => resolveClose(1006));
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}

/** The gateway still answers HTTP, and a session still gets pushes and echoes. */
async function stillServing(stack: Stack, client: OpenedClient, businessId: string): Promise<void> {
  const health = await getHealth(stack.url);
  assert.equal(health.status, 200);
  const before = client.messages.length;
  const res = await httpJson(`${stack.url}/api/chat/push?businessId=${businessId}&msg=alive`);
  assert.equal(res.status, 200);
  assert.ok((res.body.result as number) >= 1, `push reached ${String(res.body.result)}`);
  const got = await client.waitFor(before + 1);
  assert.equal(got[before], 'alive');
  client.ws.send('ping-message');
  await eventually(() => client.messages.includes('got:ping-message'), 5000, 'the session to answer');
}

function socketOf(client: OpenedClient): net.Socket {
  return (client.ws as unknown as { _socket: net.Socket })._socket;
}

test('closes with 1009 a session whose inbound message is over maxMessageBytes, and another session keeps working', async (t) => {
  const stack = await startStack(t, { gateway: { websocket: { maxMessageBytes: 1024 } } });
  const big = await connectWs(`${stack.wsUrl}/api/chat?businessId=size`);
  const other = await connectWs(`${stack.wsUrl}/api/chat?businessId=size`);
  t.after(() => [big, other].forEach((c) => c.ws.terminate()));
  // Just under the limit passes.
  big.ws.send('a'.repeat(1000));
  assert.deepEqual(await big.waitFor(1), [`got:${'a'.repeat(1000)}`]);
  big.ws.send('b'.repeat(2000));
  assert.equal((await big.closed).code, 1009);
  assert.ok(!stack.chats[0]!.log.some((l) => l.includes('b'.repeat(2000))), 'the oversized message never reached the service');
  await eventually(async () => (await stack.chats[0]!.count('size')) === 1, 5000, 'the closed session to leave the directory');
  await stillServing(stack, other, 'size');
});

test('closes with 1007 a session that sends invalid UTF-8 in a text frame', async (t) => {
  const stack = await startStack(t);
  const other = await connectWs(`${stack.wsUrl}/api/chat?businessId=utf`);
  const raw = await rawConnect(stack.gateway.port, '/api/chat?businessId=utf');
  t.after(() => {
    other.ws.terminate();
    raw.socket.destroy();
  });
  // A valid text frame first: the raw client is a working session.
  raw.send(0x1, Buffer.from('hi'));
  await eventually(() => raw.frames.some((f) => f.opcode === 0x1 && f.payload.toString() === 'got:hi'), 5000, 'the echo of a valid frame');
  raw.send(0x1, Buffer.from([0xc3, 0x28]));
  assert.equal(await raw.closeCode, 1007);
  await eventually(async () => (await stack.chats[0]!.count('utf')) === 1, 5000, 'the closed session to leave the directory');
  await stillServing(stack, other, 'utf');
});

test('closes with 1008 a client that stops reading once its unread bytes pass maxBufferedBytes, while another session of the businessId gets every push', async (t) => {
  const maxBufferedBytes = 64 * 1024;
  const stack = await startStack(t, { gateway: { websocket: { maxBufferedBytes } } });
  const slow = await connectWs(`${stack.wsUrl}/api/chat?businessId=slow`);
  const fast = await connectWs(`${stack.wsUrl}/api/chat?businessId=slow`);
  t.after(() => [slow, fast].forEach((c) => c.ws.terminate()));
  socketOf(slow).pause();
  const chat = stack.chats[0]!;
  const message = 'x'.repeat(32 * 1024);
  let pushes = 0;
  // Kernel buffers absorb some megabytes first; then the gateway's own queue grows past the cap.
  for (;;) {
    const reached = await chat.push('slow', message);
    pushes += 1;
    if (reached === 1) break;
    assert.equal(reached, 2);
    assert.ok(pushes < 4000, 'the slow client was never closed');
  }
  t.diagnostic(`slow client closed after ${pushes} pushes of ${message.length} bytes`);
  assert.equal(await chat.count('slow'), 1, 'the slow session left the directory');
  assert.equal(await chat.push('slow', 'after'), 1);
  pushes += 1;
  const got = await fast.waitFor(pushes, 30_000);
  assert.equal(got.length, pushes);
  assert.equal(got[pushes - 1], 'after');
  assert.ok(got.slice(0, -1).every((m) => m === message));
  // Reading again, the slow client finds the close at the end of what was queued for it.
  socketOf(slow).resume();
  const closed = await slow.closed;
  assert.equal(closed.code, 1008);
  assert.ok(slow.messages.length < pushes, 'the slow client missed pushes after it was closed');
  assert.ok(!slow.messages.includes('after'));
  await stillServing(stack, fast, 'slow');
});

test('closes a peer that never answers pings, while a normal client on the same gateway stays open', async (t) => {
  const pingIntervalMs = 200;
  const stack = await startStack(t, { gateway: { websocket: { pingIntervalMs } } });
  const deaf = await connectWs(`${stack.wsUrl}/api/chat?businessId=ping`, { autoPong: false });
  const normal = await connectWs(`${stack.wsUrl}/api/chat?businessId=ping`);
  t.after(() => [deaf, normal].forEach((c) => c.ws.terminate()));
  let normalPings = 0;
  normal.ws.on('ping', () => (normalPings += 1));
  let deafPings = 0;
  deaf.ws.on('ping', () => (deafPings += 1));
  const closed = await deaf.closed;
  assert.ok(deafPings >= 1, 'the deaf client was pinged before it was closed');
  t.diagnostic(`deaf client closed with ${closed.code} after ${deafPings} pings`);
  // A close frame with the documented code (docs/protocol.md), not a cut connection.
  assert.deepEqual([closed.code, closed.reason], [4002, 'no answer to ping']);
  await eventually(async () => (await stack.chats[0]!.count('ping')) === 1, 5000, 'the dead session to leave the directory');
  // The normal client lives on over several more intervals, answering pings.
  const seen = normalPings;
  await eventually(() => normalPings >= seen + 3, 10_000, 'more pings to the normal client');
  assert.equal(normal.ws.readyState, normal.ws.OPEN);
  await stillServing(stack, normal, 'ping');
});

test('a client that sends messages but never answers pings is still taken for alive', async (t) => {
  const pingIntervalMs = 200;
  const stack = await startStack(t, { gateway: { websocket: { pingIntervalMs } } });
  const chatty = await connectWs(`${stack.wsUrl}/api/chat?businessId=chatty`, { autoPong: false });
  const silent = await connectWs(`${stack.wsUrl}/api/chat?businessId=chatty`, { autoPong: false });
  t.after(() => [chatty, silent].forEach((c) => c.ws.terminate()));
  let chattyPings = 0;
  chatty.ws.on('ping', () => (chattyPings += 1));
  // Anything the gateway reads from the client counts as its answer, a message as much as a pong.
  const talk = setInterval(() => chatty.ws.send('hello'), pingIntervalMs / 4);
  t.after(() => clearInterval(talk));
  const closed = await silent.closed;
  assert.deepEqual([closed.code, closed.reason], [4002, 'no answer to ping']);
  const seen = chattyPings;
  await eventually(() => chattyPings >= seen + 3, 10_000, 'more pings to the client that talks');
  assert.equal(chatty.ws.readyState, chatty.ws.OPEN);
});

test('spreads pings over the interval instead of sending them in one burst', async (t) => {
  const sessions = 200;
  // 200 handshakes from 127.0.0.1 at once: over the default per-address rate, which is not what is tested.
  const stack = await startStack(t, { gateway: { websocket: { pingIntervalMs: 1000, maxHandshakesPerIpPerSecond: 10_000 } } });
  const clients: OpenedClient[] = [];
  t.after(() => clients.forEach((c) => c.ws.terminate()));
  for (let i = 0; i < sessions; i += 20) {
    clients.push(
      ...(await Promise.all(Array.from({ length: 20 }, (_, j) => connectWs(`${stack.wsUrl}/api/chat?businessId=spread-${(i + j) % 10}`)))),
    );
  }
  const arrivals: number[] = [];
  const perClient = new Map<OpenedClient, number>();
  for (const c of clients) {
    c.ws.on('ping', () => {
      arrivals.push(performance.now());
      perClient.set(c, (perClient.get(c) ?? 0) + 1);
    });
  }
  // Every session pinged at least twice: more than a whole interval observed.
  await eventually(() => clients.every((c) => (perClient.get(c) ?? 0) >= 2), 20_000, 'two rounds of pings');
  const windows = new Map<number, number>();
  for (const at of arrivals) windows.set(Math.floor(at / 100), (windows.get(Math.floor(at / 100)) ?? 0) + 1);
  const busiest = Math.max(...windows.values());
  t.diagnostic(`${arrivals.length} pings over ${windows.size} windows of 100 ms; busiest held ${busiest}`);
  assert.ok(windows.size >= 5, `pings fell into only ${windows.size} distinct 100 ms windows`);
  assert.ok(busiest <= arrivals.length / 2, `one 100 ms window held ${busiest} of ${arrivals.length} pings`);
  const res = await getHealth(stack.url);
  assert.equal(res.status, 200);
  assert.equal(res.body.sessions, sessions);
  assert.ok(
    clients.every((c) => c.ws.readyState === c.ws.OPEN),
    'every client answered its pings and stayed open',
  );
});
