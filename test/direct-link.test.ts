import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { test } from 'node:test';
import { isWeftError } from '../src/errors.js';
import { FrameType, type CallFrame, type Frame } from '../src/protocol/frames.js';
import { DirectLink, type DirectLinkOptions } from '../src/transport/direct-link.js';
import { quietLogger } from './helpers/index.js';

function pair(options: Partial<DirectLinkOptions> = {}): { a: DirectLink; b: DirectLink; atA: Frame[]; atB: Frame[] } {
  const o: DirectLinkOptions = { maxFrameBytes: 1024 * 1024, maxQueuedBytes: 1024 * 1024, logger: quietLogger(), ...options };
  const atA: Frame[] = [];
  const atB: Frame[] = [];
  const [a, b] = DirectLink.pair(
    'node-a',
    (f) => atA.push(f),
    o,
    'node-b',
    (f) => atB.push(f),
    o,
  );
  return { a, b, atA, atB };
}

test('delivers after a turn of the event loop, in order, each end naming its peer', async () => {
  const { a, b, atB } = pair();
  assert.equal(a.peerNodeId, 'node-b');
  assert.equal(b.peerNodeId, 'node-a');
  a.send([FrameType.PushAck, 1, 1]);
  a.send([FrameType.PushAck, 2, 2]);
  assert.equal(atB.length, 0, 'nothing arrives in the same tick');
  await turn();
  assert.deepEqual(atB, [
    [FrameType.PushAck, 1, 1],
    [FrameType.PushAck, 2, 2],
  ]);
});

test('the peer gets copies, as over the wire: bytes changed after sending and class instances do not cross', async () => {
  const { a, atB } = pair();
  const payload = Buffer.from('hello');
  a.send([FrameType.PushBusiness, 0, 'IChatAppService', '100', payload, true, '', 0, 0, '']);
  payload.write('HELLO');
  class Money {
    constructor(readonly cents: number) {}
  }
  const args = [new Money(5)];
  a.send([FrameType.Call, 1, 'IShop', 'pay', args, { t: 't', c: 'node-a' }]);
  (args[0] as { cents: number }).cents = 999;
  await turn();
  assert.equal(Buffer.from(atB[0]![4] as Uint8Array).toString(), 'hello');
  const received = (atB[1] as CallFrame)[4][0];
  assert.deepEqual(received, { cents: 5 });
  assert.ok(!(received instanceof Money), 'a plain object, as MessagePack gives it');
});

test('holds frames to maxFrameBytes and the queue to maxQueuedBytes, as a TCP link does', () => {
  const { a } = pair({ maxFrameBytes: 1024, maxQueuedBytes: 4096 });
  assert.throws(
    () => a.send([FrameType.Call, 1, 's', 'm', ['x'.repeat(2000)], { t: 't', c: 'a' }]),
    (e: unknown) => isWeftError(e, 'ProtocolError'),
    'a call whose arguments are over the limit',
  );
  assert.throws(
    () => a.send([FrameType.PushSession, 0, 's.1', Buffer.alloc(2000), false, '']),
    (e: unknown) => isWeftError(e, 'ProtocolError'),
    'a frame of bytes over the limit too',
  );
  for (let i = 0; i < 5; i++) a.send([FrameType.PushSession, 0, 's.1', Buffer.alloc(900), false, '']);
  assert.throws(
    () => a.send([FrameType.PushSession, 0, 's.1', Buffer.alloc(900), false, '']),
    (e: unknown) => isWeftError(e, 'Overloaded'),
  );
});

test('a close delivers what was queued, then closes the other end; sending on a closed end fails', async () => {
  const { a, b, atB } = pair();
  const closed: string[] = [];
  a.onClose = () => closed.push('a');
  b.onClose = () => closed.push('b');
  a.send([FrameType.Draining]);
  a.send([FrameType.PushAck, 9, 0]);
  a.close();
  assert.equal(a.isOpen, false);
  assert.throws(
    () => a.send([FrameType.PushAck, 1, 1]),
    (e: unknown) => isWeftError(e, 'CommunicationError'),
  );
  await turn();
  assert.deepEqual(atB, [[FrameType.Draining], [FrameType.PushAck, 9, 0]]);
  assert.equal(b.peerDraining, true, 'the Draining frame marks the peer as draining');
  assert.equal(b.isOpen, false);
  assert.deepEqual(closed, ['a', 'b']);
});

test('a direct link over its high-water mark is congested until its next flush, when onceDrained calls back; a close calls back too', async () => {
  const { a, atB } = pair({ maxQueuedBytes: 64 * 1024 });
  const payload = Buffer.alloc(8 * 1024);
  let sent = 0;
  while (!a.congested) {
    a.send([FrameType.PushSession, 0, `s${sent}`, payload, false, '']);
    sent += 1;
  }
  let drained = 0;
  a.onceDrained(() => (drained += 1));
  assert.equal(drained, 0, 'not in the same tick');
  await turn();
  assert.equal(atB.length, sent);
  assert.equal(drained, 1);
  assert.equal(a.congested, false);

  const { a: closing } = pair({ maxQueuedBytes: 64 * 1024 });
  while (!closing.congested) closing.send([FrameType.PushSession, 0, 's', payload, false, '']);
  let told = false;
  closing.onceDrained(() => (told = true));
  closing.close();
  assert.equal(told, true, 'a closed link has nothing left to wait for');
});
