/**
 * Links under pressure: a peer that cannot keep up makes a link refuse new
 * frames (Overloaded) instead of growing memory or dropping the link, and a
 * failing frame handler never takes the link down.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { FrameType, type Frame } from '../src/protocol/frames.js';
import { Link, type LinkOptions } from '../src/transport/link.js';
import { captureLogger, eventually, quietLogger } from './helpers/index.js';

function options(nodeId: string, overrides: Partial<LinkOptions> = {}): LinkOptions {
  return {
    nodeId,
    secret: 'pressure',
    maxFrameBytes: 1024 * 1024,
    handshakeTimeoutMs: 5000,
    pingIntervalMs: 60_000,
    maxQueuedBytes: 256 * 1024,
    logger: quietLogger(),
    ...overrides,
  };
}

/** Two real links over a real TCP connection; `serverSocket` is the acceptor's socket. */
async function linkPair(t: TestContext, dialerOptions: LinkOptions, acceptorOptions: LinkOptions) {
  let acceptor!: Link;
  let serverSocket!: net.Socket;
  const server = net.createServer((socket) => {
    serverSocket = socket;
    acceptor = new Link(socket, 'acceptor', acceptorOptions);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const dialer = new Link(socket, 'dialer', dialerOptions);
  const received: Frame[] = [];
  await eventually(() => dialer.isOpen && acceptor?.isOpen, 5000, 'handshake');
  acceptor.onFrame = (frame) => received.push(frame);
  t.after(() => {
    dialer.destroy();
    acceptor.destroy();
    server.close();
  });
  return { dialer, acceptor, serverSocket, received };
}

test('a link to a peer that stops reading refuses new frames with Overloaded and stays up', async (t) => {
  const { dialer, serverSocket, received } = await linkPair(t, options('dialer'), options('acceptor'));
  serverSocket.pause(); // the peer stops reading
  const payload = Buffer.alloc(16 * 1024);
  let refused: unknown;
  let sent = 0;
  for (let i = 0; i < 10_000 && refused === undefined; i++) {
    try {
      dialer.send([FrameType.PushSession, 0, `s${i}`, payload, false, '']);
      sent += 1;
    } catch (e) {
      refused = e;
    }
    if (i % 16 === 15) await new Promise((r) => setImmediate(r)); // let queued frames reach the socket
  }
  assert.equal((refused as { code?: string } | undefined)?.code, 'Overloaded', 'sends are refused once the link is full');
  assert.ok(dialer.isOpen, 'the link stays open');
  assert.ok(dialer.queuedBytes < 64 * 1024 * 1024, 'memory stays bounded');

  serverSocket.resume(); // the peer catches up: everything sent arrives, and sending works again
  await eventually(() => received.length === sent, 10_000, 'all accepted frames delivered');
  await eventually(() => dialer.queuedBytes <= 256 * 1024, 5000, 'the queue drained');
  dialer.send([FrameType.PushSession, 0, 'after', payload, false, '']);
  await eventually(() => received.length === sent + 1, 5000, 'a frame after the pressure');
});

test('a link over its high-water mark is congested, and onceDrained calls back once the peer reads again', async (t) => {
  const { dialer, serverSocket, received } = await linkPair(t, options('dialer'), options('acceptor'));
  assert.equal(dialer.congested, false);
  serverSocket.pause();
  const payload = Buffer.alloc(16 * 1024);
  let sent = 0;
  // One frame a turn, so each reaches the socket: congested only once the kernel's buffers are full too.
  while (!dialer.congested) {
    dialer.send([FrameType.PushSession, 0, `s${sent}`, payload, false, '']);
    sent += 1;
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(dialer.queuedBytes > 128 * 1024, 'over half of maxQueuedBytes');
  let drained = 0;
  dialer.onceDrained(() => (drained += 1));
  await new Promise((r) => setImmediate(r));
  assert.equal(drained, 0, 'not while the peer reads nothing');
  serverSocket.resume();
  await eventually(() => drained === 1, 10_000, 'the drain callback');
  assert.equal(dialer.congested, false);
  await eventually(() => received.length === sent, 10_000, 'every frame delivered');
  assert.equal(drained, 1, 'called once');
});

test('a frame handler that throws is logged and the link keeps working', async (t) => {
  const { logger, lines } = captureLogger();
  const { dialer, acceptor } = await linkPair(t, options('dialer'), options('acceptor', { logger }));
  let calls = 0;
  acceptor.onFrame = () => {
    calls += 1;
    if (calls === 1) throw new Error('handler bug');
  };
  dialer.send([FrameType.PushAck, 1, 1]);
  dialer.send([FrameType.PushAck, 2, 1]);
  await eventually(() => calls === 2, 5000, 'both frames handled');
  assert.ok(acceptor.isOpen && dialer.isOpen);
  assert.ok(lines().some((l) => l['msg'] === 'frame handler threw'));
});

test('a full link survives its keep-alive ticks (no ping is forced onto it)', async (t) => {
  const { dialer, serverSocket } = await linkPair(t, options('dialer', { pingIntervalMs: 50 }), options('acceptor'));
  serverSocket.pause();
  const payload = Buffer.alloc(16 * 1024);
  for (let i = 0; i < 10_000; i++) {
    try {
      dialer.send([FrameType.PushSession, 0, `s${i}`, payload, false, '']);
    } catch {
      break;
    }
    if (i % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  // Keep-alive ticks run while the link is full (an exception there would end the process)
  // until the silent peer is given up on, cleanly.
  let closedWith: { code?: string; message?: string } | undefined;
  dialer.onClose = (_l, error) => (closedWith = error);
  await eventually(() => closedWith !== undefined, 5000, 'the silent peer given up on');
  assert.equal(closedWith?.code, 'CommunicationError');
  assert.match(closedWith?.message ?? '', /silent/);
});

test('before the handshake a peer cannot make a link read more than a small frame', async (t) => {
  const { logger, lines } = captureLogger();
  let closedWith: { code?: string } | undefined;
  const server = net.createServer((socket) => {
    const link = new Link(socket, 'acceptor', options('acceptor', { logger }));
    link.onClose = (_l, error) => (closedWith = error);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.after(() => socket.destroy());
  await new Promise((r) => socket.once('connect', r));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(512 * 1024); // well under maxFrameBytes, far over a handshake frame
  socket.write(header);
  await eventually(() => closedWith !== undefined, 5000, 'the link closed');
  assert.equal(closedWith?.code, 'ProtocolError');
  assert.ok(lines().some((l) => l['msg'] === 'closing link after a bad frame'));
});
