/**
 * Frames between nodes: encode/decode and stream splitting, no sockets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  decodeFrameBody,
  encodeFrame,
  packFrame,
  type Frame,
} from '../src/protocol/frames.js';

const nonce = Buffer.from('0123456789abcdef');
const proof = Buffer.alloc(32, 7);

/** One frame of every type, with fields of every kind. */
const SAMPLES: Frame[] = [
  [FrameType.Challenge, PROTOCOL_VERSION, 'gateway-0a1b2c3d4e', nonce],
  [FrameType.Hello, PROTOCOL_VERSION, 'host-99aa88bb77', Buffer.from('fedcba9876543210'), proof],
  [FrameType.Welcome, proof],
  [FrameType.Refuse, { code: 'LinkUnauthenticated', message: 'the peer does not hold the cluster secret' }],
  [
    FrameType.Call,
    4_294_967_000,
    'IWsTestAppService',
    'echo',
    ['100', 42, 1.5, null, true, { nested: [1, 'two', { three: 3 }] }],
    { t: 'trace-1', c: 'gateway-1', h: { authorization: 'Bearer x', 'accept-language': 'fr' }, d: 4999 },
  ],
  [FrameType.Result, 1, { reached: 2, names: ['a', 'b'], empty: {}, none: null }],
  [FrameType.Result, 2, null],
  [
    FrameType.Error,
    3,
    { code: 'ValidateError', message: 'invalid arguments', validErrors: [{ memberNames: ['msg'], errorMessage: 'msg is required' }] },
  ],
  [
    FrameType.SessionOpen,
    'gateway-1.1',
    'IWsTestAppService',
    '100',
    { headers: { 'user-agent': 'test' }, query: { businessid: '100' }, remoteAddress: '127.0.0.1' },
  ],
  [FrameType.SessionAccept, 'gateway-1.1'],
  [FrameType.SessionReject, 'gateway-1.2', { code: 'BusinessError', message: 'no seat left', data: { seats: 0 } }],
  [FrameType.SessionMessage, 'gateway-1.1', Buffer.from('héllo ✓', 'utf8'), true],
  [FrameType.SessionMessage, 'gateway-1.1', Buffer.from([0, 255, 1, 254]), false],
  [FrameType.SessionClosed, 'gateway-1.1', 1000, 'bye', 'IChatAppService', '100'],
  [FrameType.SessionClose, 'gateway-1.1', 1012, 'service restart'],
  [FrameType.SessionHandled, 'gateway-1.1', 128],
  [FrameType.PushSession, 7, 'gateway-1.1', Buffer.from('message:hi,sessionId:gateway-1.1'), true, ''],
  [
    FrameType.PushBusiness,
    8,
    'IWsTestAppService',
    '100',
    Buffer.alloc(300, 1),
    false,
    'e1',
    42,
    0,
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  ],
  [FrameType.PushService, 0, 'IWsTestAppService', Buffer.from('maintenance'), true, ''],
  [FrameType.PushAck, 8, 2],
  [FrameType.PushAcks, [8, 2, 9, 0]],
  [FrameType.RoomJoin, 9, 'gateway-1.1', 'lobby'],
  [FrameType.RoomLeave, 10, 'gateway-1.1', 'lobby'],
  [FrameType.PushRoom, 11, 'IChatAppService', 'lobby', Buffer.from('hi all'), true, 'e1', 3, ''],
  [FrameType.RoomSize, 12, 'IChatAppService', 'lobby'],
  [FrameType.RoomAck, 9, -1, 'session gateway-1.1 is in 100 rooms, the most it may (websocket.maxRoomsPerSession)'],
  [FrameType.Ping],
  [FrameType.Pong],
  [FrameType.Draining],
  [FrameType.SessionMetadata, 'gateway-1.1', '{"user":"ann"}'],
  [FrameType.SessionRequest, 'gateway-1.1', 7, 'typing', Buffer.from('{"type":"request","id":7,"name":"typing","params":{"room":"a"}}')],
  [FrameType.SessionReply, 'gateway-1.1', 7, true, Buffer.from('{"ok":true}')],
];

function assertProtocolError(fn: () => unknown, what: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.equal((e as { code?: unknown }).code, 'ProtocolError', `${what}: ${String((e as Error).message)}`);
    return true;
  });
}

function decodeAll(chunks: Buffer[], maxFrameBytes?: number): Frame[] {
  const decoder = new FrameDecoder(maxFrameBytes);
  const out: Frame[] = [];
  for (const chunk of chunks) decoder.push(chunk, (f) => out.push(f));
  assert.equal(decoder.bufferedBytes, 0, 'nothing is left over');
  return out;
}

test('every frame type survives encode and decode unchanged', () => {
  const types = new Set(SAMPLES.map((f) => f[0]));
  assert.deepEqual(
    [...types].sort((a, b) => a - b),
    Object.values(FrameType).sort((a, b) => a - b),
    'a sample of every type',
  );
  for (const frame of SAMPLES) {
    assert.deepEqual(decodeFrameBody(packFrame(frame)), frame, `type ${frame[0]} from its body`);
    const whole = encodeFrame(frame);
    assert.equal(whole.readUInt32BE(0), whole.length - FRAME_HEADER_BYTES, 'the header holds the body length, big-endian');
    assert.deepEqual(decodeAll([whole]), [frame], `type ${frame[0]} through the decoder`);
  }
});

test('several frames in one chunk all come out, in order', () => {
  const stream = Buffer.concat(SAMPLES.map(encodeFrame));
  assert.deepEqual(decodeAll([stream]), SAMPLES);
});

test('a stream split at any byte boundary decodes to the same frames', () => {
  const stream = Buffer.concat(SAMPLES.map(encodeFrame));
  for (let cut = 1; cut < stream.length; cut++) {
    const frames = decodeAll([stream.subarray(0, cut), stream.subarray(cut)]);
    assert.deepEqual(frames, SAMPLES, `split at byte ${cut}`);
  }
});

test('a stream fed one byte at a time, or in uneven chunks, decodes to the same frames', () => {
  const stream = Buffer.concat(SAMPLES.map(encodeFrame));
  const bytes: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) bytes.push(stream.subarray(i, i + 1));
  assert.deepEqual(decodeAll(bytes), SAMPLES);
  // Chunks of 3, 5, 7, ... bytes: frame edges land everywhere in a chunk.
  const uneven: Buffer[] = [];
  for (let i = 0, size = 3; i < stream.length; i += size, size += 2) uneven.push(stream.subarray(i, i + size));
  assert.deepEqual(decodeAll(uneven), SAMPLES);
});

test('a frame is delivered only once its last byte has arrived', () => {
  const whole = encodeFrame(SAMPLES[4]!);
  const decoder = new FrameDecoder();
  const out: Frame[] = [];
  decoder.push(whole.subarray(0, whole.length - 1), (f) => out.push(f));
  assert.equal(out.length, 0);
  assert.equal(decoder.bufferedBytes, whole.length - 1);
  decoder.push(whole.subarray(whole.length - 1), (f) => out.push(f));
  assert.deepEqual(out, [SAMPLES[4]]);
});

test('an oversized length header is refused as soon as the header is read, without waiting for the body', () => {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(1025, 0);
  assertProtocolError(() => new FrameDecoder(1024).push(header, () => {}), 'header alone');

  // The header itself split over two chunks: refused at the chunk that completes it.
  const split = new FrameDecoder(1024);
  split.push(header.subarray(0, 2), () => {});
  assertProtocolError(() => split.push(header.subarray(2), () => {}), 'split header');

  // A good frame before it in the same chunk is still delivered.
  const seen: Frame[] = [];
  assertProtocolError(
    () => new FrameDecoder(1024).push(Buffer.concat([encodeFrame([FrameType.Ping]), header]), (f) => seen.push(f)),
    'after a good frame',
  );
  assert.deepEqual(seen, [[FrameType.Ping]]);

  // A length of 4 GiB - 1 never makes the decoder wait for 4 GiB.
  const huge = Buffer.from([0xff, 0xff, 0xff, 0xff]);
  assertProtocolError(() => new FrameDecoder().push(huge, () => {}), 'default limit');
});

test('a frame exactly at the limit is accepted', () => {
  const frame: Frame = [FrameType.PushSession, 1, 's', Buffer.alloc(200, 9), true, ''];
  const body = packFrame(frame);
  assert.deepEqual(decodeAll([encodeFrame(frame)], body.length), [frame]);
  assertProtocolError(() => decodeAll([encodeFrame(frame)], body.length - 1), 'one byte over');
});

test('a body that is not valid MessagePack is a ProtocolError', () => {
  assertProtocolError(() => decodeFrameBody(Buffer.from([0xc1])), 'reserved byte 0xc1');
  // An array header announcing 3 elements, followed by one.
  assertProtocolError(() => decodeFrameBody(Buffer.from([0x93, 0x28])), 'truncated array');
  const bad = Buffer.alloc(FRAME_HEADER_BYTES + 1);
  bad.writeUInt32BE(1, 0);
  bad[FRAME_HEADER_BYTES] = 0xc1;
  assertProtocolError(() => decodeAll([bad]), 'through the decoder');
});

test('a body that is not a non-empty array is a ProtocolError', () => {
  for (const value of [{ 0: FrameType.Ping }, 'ping', 40, null, []]) {
    assertProtocolError(() => decodeFrameBody(packFrame(value as unknown as Frame)), JSON.stringify(value));
  }
});

test('an unknown frame type is a ProtocolError', () => {
  for (const type of [0, 5, 99, -1, 'Ping']) {
    assertProtocolError(() => decodeFrameBody(packFrame([type] as unknown as Frame)), `type ${String(type)}`);
  }
});

test('fields of the wrong type or number are a ProtocolError', () => {
  const bad: unknown[][] = [
    [FrameType.Challenge, PROTOCOL_VERSION, 'node', 'not bytes'],
    [FrameType.Hello, '1', 'node', nonce, proof],
    [FrameType.Welcome, 'proof'],
    [FrameType.Refuse, ['LinkUnauthenticated']],
    [FrameType.Call, '1', 'IX', 'echo', [], { t: 't', c: 'c' }],
    [FrameType.Call, 1, 'IX', 'echo', { 0: 'a' }, { t: 't', c: 'c' }],
    [FrameType.Call, 1, 'IX', 'echo', [], null],
    [FrameType.Call, 1, 'IX', 'echo', []],
    [FrameType.Error, 1, 'BusinessError'],
    [FrameType.SessionOpen, 's', 'IX', 100, { headers: {}, query: {}, remoteAddress: '' }],
    [FrameType.SessionMessage, 's', Buffer.from('x'), 'true'],
    [FrameType.SessionMessage, 's', 'text instead of bytes', true],
    [FrameType.SessionClosed, 's', '1000', 'bye', 'IChatAppService', '100'],
    [FrameType.PushBusiness, 1, 'IX', '100', Buffer.from('x')],
    [FrameType.PushAck, 1, '2'],
    [FrameType.Ping, 1],
  ];
  for (const frame of bad) {
    assertProtocolError(() => decodeFrameBody(packFrame(frame as unknown as Frame)), JSON.stringify(frame));
  }
});

test('a bad frame in the middle of a stream stops the decoder with a ProtocolError after the good frames before it', () => {
  const stream = Buffer.concat([encodeFrame([FrameType.Ping]), encodeFrame([99] as unknown as Frame), encodeFrame([FrameType.Pong])]);
  const seen: Frame[] = [];
  assertProtocolError(() => new FrameDecoder().push(stream, (f) => seen.push(f)), 'unknown type in a stream');
  assert.deepEqual(seen, [[FrameType.Ping]]);
});
