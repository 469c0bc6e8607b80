import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { test } from 'node:test';
import { isWeftError } from '../src/errors.js';
import { FrameRouter } from '../src/node/frame-router.js';
import { FrameType, type Frame } from '../src/protocol/frames.js';
import { DirectLink, type DirectLinkOptions } from '../src/transport/direct-link.js';
import { quietLogger } from './helpers/index.js';

const OPTIONS: DirectLinkOptions = { maxFrameBytes: 1024 * 1024, maxQueuedBytes: 1024 * 1024, logger: quietLogger() };

/** A router on node "b" and a direct link from node "a" to it; frames "a" receives are collected. */
function routerWithPeer(): { router: FrameRouter; fromA: DirectLink; toA: Frame[] } {
  const router = new FrameRouter('b', quietLogger());
  const toA: Frame[] = [];
  const [fromA] = DirectLink.pair('a', (frame) => toA.push(frame), OPTIONS, 'b', router.route, OPTIONS);
  return { router, fromA, toA };
}

test('hands each frame to the part that claimed its type, with the link it came on, and counts it', async () => {
  const { router, fromA } = routerWithPeer();
  const acks: [number, string][] = [];
  router.on(FrameType.PushAck, (frame, link) => acks.push([frame[2], link.peerNodeId]));
  fromA.send([FrameType.PushAck, 7, 3]);
  fromA.send([FrameType.PushAck, 8, 1]);
  await turn();
  assert.deepEqual(acks, [
    [3, 'a'],
    [1, 'a'],
  ]);
  assert.deepEqual(router.received(), { PushAck: 2 });
});

test('refuses a second claim of a frame type', () => {
  const router = new FrameRouter('b', quietLogger());
  router.on(FrameType.Call, () => undefined);
  assert.throws(
    () => router.on(FrameType.Call, () => undefined),
    (e: unknown) => isWeftError(e, 'ServerError') && /Call already has a handler/.test(e.message),
  );
});

test('answers a call to a node that serves nothing with NotFound, and ignores other unclaimed frames', async () => {
  const { fromA, toA } = routerWithPeer();
  fromA.send([FrameType.PushAck, 1, 1]);
  fromA.send([FrameType.Call, 5, 'IGreeterAppService', 'greet', ['ann'], { t: 'trace', c: 'a' }]);
  await turn();
  await turn();
  assert.equal(toA.length, 1);
  const [type, callId, error] = toA[0] as [number, number, { code: string }];
  assert.deepEqual([type, callId, error.code], [FrameType.Error, 5, 'NotFound']);
});
