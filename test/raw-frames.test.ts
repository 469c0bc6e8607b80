import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dataFrame } from '../src/gateway/front-door/raw-frames.js';
import { IChatAppService } from './fixtures/services.js';
import { connectWs } from './helpers/index.js';
import { startStack } from './helpers/stack.js';

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
  assert.deepEqual(got.map((m) => m.length), sizes);
  assert.deepEqual(got, sent);
});
