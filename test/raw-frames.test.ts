import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { dataFrame, unsentBytes, writeFrame } from '../src/gateway/front-door/raw-frames.js';
import { IChatAppService } from './fixtures/services.js';
import { connectWs } from './helpers/index.js';
import { startStack } from './fixtures/stack.js';

test('builds unmasked frames with the 7-bit, 16-bit and 64-bit length forms', () => {
  const cases: [number, number[]][] = [
    [0, [0x81, 0]],
    [125, [0x81, 125]],
    [126, [0x81, 126, 0, 126]],
    [65535, [0x81, 126, 0xff, 0xff]],
    [65536, [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]],
  ];
  for (const [length, header] of cases) {
    const payload = Buffer.alloc(length, 0x61);
    const frame = dataFrame(payload, true);
    assert.deepEqual([...frame.subarray(0, header.length)], header, `header for ${length} bytes`);
    assert.equal(frame.length, header.length + length);
    assert.ok(frame.subarray(header.length).equals(payload));
  }
  assert.equal(dataFrame(Buffer.from([1, 2, 3]), false)[0], 0x82, 'binary opcode');
});

test('a real client receives pushes of every length form intact, in order', async (t) => {
  const stack = await startStack(t, { gateway: { websocket: { maxBufferedBytes: 8 * 1024 * 1024 } } });
  const client = await connectWs(`${stack.wsUrl}/api/chat?businessId=frames`);
  t.after(() => client.ws.close());
  const chat = stack.hosts[0]!.proxy(IChatAppService);
  const sizes = [0, 1, 125, 126, 127, 65535, 65536, 300_000];
  const sent = sizes.map((n, i) => String(i % 10).repeat(n));
  for (const message of sent) assert.equal(await chat.push('frames', message), 1);
  const got = await client.waitFor(sent.length);
  assert.deepEqual(
    got.map((m) => m.length),
    sizes,
  );
  assert.deepEqual(got, sent);
});

/** A real ws server whose upgraded sockets the test holds, the way the gateway holds them. */
async function upgradedPair(t: TestContext): Promise<{ server: WebSocket; socket: Duplex; client: WebSocket; events: string[] }> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  const http = createServer();
  const accepted = new Promise<{ server: WebSocket; socket: Duplex }>((resolve) => {
    http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (server) => resolve({ server, socket })));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/`);
  t.after(() => {
    client.terminate();
    http.closeAllConnections();
    http.close();
  });
  const events: string[] = [];
  client.on('message', (data: Buffer) => events.push(`message ${data.toString('utf8')}`));
  client.on('ping', () => events.push('ping'));
  client.on('close', (code) => events.push(`close ${code}`));
  await once(client, 'open');
  const { server, socket } = await accepted;
  return { server, socket, client, events };
}

test('ws writes its own frames whole and at once into the socket it was given (what raw writes rely on)', async (t) => {
  const { server, socket } = await upgradedPair(t);
  // Corked, the socket keeps every byte written to it: what ws sends must show up there, now.
  socket.cork();
  const before = unsentBytes(socket);
  server.send('hello');
  assert.equal(unsentBytes(socket) - before, 2 + 5, 'a text frame of 5 bytes went to this socket at once, whole');
  server.ping();
  assert.equal(unsentBytes(socket) - before, 2 + 5 + 2, 'so did a ping');
  socket.uncork();
  server.terminate();
});

test('frames written raw and frames ws writes interleave on the wire without corrupting each other', async (t) => {
  const { server, socket, client, events } = await upgradedPair(t);
  writeFrame(socket, dataFrame(Buffer.from('raw 1'), true));
  server.send('ws 1');
  server.ping();
  writeFrame(socket, dataFrame(Buffer.from('raw 2'), true));
  server.close(1000);
  await once(client, 'close');
  assert.deepEqual(events, ['message raw 1', 'message ws 1', 'ping', 'message raw 2', 'close 1000']);
});
