/**
 * Handshakes that ws itself would refuse are refused before any host is asked
 * to open a session, so they leave nothing behind.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { IChatAppService } from './fixtures/services.js';
import { WebSocket } from 'ws';
import { startStack } from './fixtures/stack.js';

function rawHandshake(port: number, method: string, extraHeaders: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () =>
      socket.write(
        `${method} /api/chat?businessId=raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`,
      ),
    );
    let data = '';
    socket.on('data', (c: Buffer) => (data += c.toString()));
    socket.on('close', () => resolve(data));
    socket.on('error', () => resolve(data));
  });
}

test('a handshake that is not a GET, or has a malformed subprotocol list, is refused with 400 and opens nothing', async (t) => {
  const stack = await startStack(t);
  const chat = stack.hosts[0]!.proxy(IChatAppService);
  const post = await rawHandshake(stack.gateway.port, 'POST', '');
  assert.match(post, /^HTTP\/1.1 400 /);
  assert.match(post, /"code":"BadRequest"/);
  for (const protocols of ['a, a', 'a,,b', 'bad token']) {
    const answer = await rawHandshake(stack.gateway.port, 'GET', `Sec-WebSocket-Protocol: ${protocols}\r\n`);
    assert.match(answer, /^HTTP\/1.1 400 /, protocols);
  }
  assert.equal(await chat.count('raw'), 0, 'no session anywhere');
  assert.equal(stack.gateway.sessionCount, 0);
  assert.equal(await chat.push('raw', 'x'), 0);
  assert.ok(!stack.chats[0]!.log.some((l) => l.startsWith('open raw')), 'the host was never asked');
});

test('a client offering subprotocols gets the first one', async (t) => {
  const stack = await startStack(t);
  const ws = new WebSocket(`${stack.wsUrl}/api/chat?businessId=proto`, ['v2.weft', 'v1.weft']);
  t.after(() => ws.close());
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  assert.equal(ws.protocol, 'v2.weft');
  const got = new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
  assert.equal(await stack.hosts[0]!.proxy(IChatAppService).push('proto', 'hi'), 1);
  assert.equal(await got, 'hi');
});
