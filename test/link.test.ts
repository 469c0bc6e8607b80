/**
 * Links between nodes, poked from outside with raw sockets speaking (or
 * failing to speak) the frame protocol: bad frames, oversized frames, a peer
 * without the cluster secret, write coalescing and the keep-alive.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import {
  Type,
  createHost,
  defineContract,
  implement,
  isWeftError,
  memoryCluster,
  param,
  type Host,
  type HostOptions,
  type WeftError,
} from '../src/index.js';
import { FrameDecoder, FrameType, PROTOCOL_VERSION, encodeFrame, type Frame } from '../src/protocol/frames.js';
import type { NodeRecord } from '../src/registry/registry.js';
import { Link, type LinkOptions } from '../src/transport/link.js';
import { ITestAppService, testService } from './fixtures/services.js';
import { captureLogger, eventually, quietLogger } from './helpers/index.js';

/** Counts the calls it serves, so a test can tell whether a call ever ran. */
const IRecorderAppService = defineContract({
  name: 'IRecorderAppService',
  methods: { record: { params: [param('note', Type.String())], returns: Type.Integer() } },
});

function recorder(): { notes: string[]; binding: ReturnType<typeof implement> } {
  const notes: string[] = [];
  return {
    notes,
    binding: implement(IRecorderAppService, {
      record: (note) => {
        notes.push(note);
        return notes.length;
      },
    }),
  };
}

async function startHost(t: TestContext, options: HostOptions): Promise<Host> {
  // These tests are about links: no direct in-process shortcut.
  const host = createHost({ logger: quietLogger(), directInProcess: false, ...options });
  await host.start();
  t.after(() => host.stop());
  return host;
}

/** The handshake proof as docs/protocol.md defines it: HMAC-SHA256 over a label and NUL-terminated parts. */
function proof(secret: string, label: string, ...parts: (string | Uint8Array)[]): Buffer {
  const h = createHmac('sha256', secret);
  h.update(label);
  for (const p of parts) {
    h.update(typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
    h.update('\0');
  }
  return h.digest();
}

interface RawPeer {
  socket: net.Socket;
  frames: Frame[];
  /** Resolves with the `n`th frame received (1-based). */
  frame(n: number): Promise<Frame>;
  closed: Promise<void>;
  isClosed(): boolean;
}

/** A bare TCP connection that decodes whatever frames come back. */
async function rawPeer(t: TestContext, address: { host: string; port: number }): Promise<RawPeer> {
  const socket = net.connect(address);
  socket.on('error', () => {});
  const frames: Frame[] = [];
  const decoder = new FrameDecoder();
  let closed = false;
  socket.on('data', (chunk: Buffer) => decoder.push(chunk, (f) => frames.push(f)));
  const closedP = once(socket, 'close').then(() => {
    closed = true;
  });
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  return {
    socket,
    frames,
    frame: async (n) => (await eventually(() => frames[n - 1], 5000, `frame ${n}`))!,
    closed: closedP,
    isClosed: () => closed,
  };
}

function linkOptions(overrides: Partial<LinkOptions>): LinkOptions {
  return {
    nodeId: 'test-acceptor',
    secret: 'link-test-secret',
    maxFrameBytes: 1024 * 1024,
    handshakeTimeoutMs: 5000,
    pingIntervalMs: 5000,
    maxQueuedBytes: 1024 * 1024,
    logger: quietLogger(),
    ...overrides,
  };
}

/** A server whose every connection becomes a Link acceptor built with `options`. */
async function linkServer(
  t: TestContext,
  options: LinkOptions,
): Promise<{ port: number; opened: Promise<Link>; closed: Promise<WeftError | undefined> }> {
  let resolveOpened: (l: Link) => void = () => {};
  let resolveClosed: (e: WeftError | undefined) => void = () => {};
  const opened = new Promise<Link>((r) => (resolveOpened = r));
  const closed = new Promise<WeftError | undefined>((r) => (resolveClosed = r));
  const links: Link[] = [];
  const server = net.createServer((socket) => {
    const link = new Link(socket, 'acceptor', options);
    link.onOpen = resolveOpened;
    link.onClose = (_l, error) => resolveClosed(error);
    links.push(link);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const l of links) l.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as net.AddressInfo).port, opened, closed };
}

test('a peer that writes garbage is disconnected with a warning and the node keeps serving', async (t) => {
  const cluster = memoryCluster();
  const capture = captureLogger();
  const server = await startHost(t, { cluster, name: 'server', logger: capture.logger, services: [testService(() => 'server')] });
  const peer = await rawPeer(t, server.linkAddress!);
  const challenge = await peer.frame(1);
  assert.equal(challenge[0], FrameType.Challenge);
  // A well-formed length, then bytes that are not MessagePack (0xc1 is never used).
  peer.socket.write(Buffer.from([0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1]));
  await peer.closed;
  const warning = await eventually(
    () => capture.lines().find((l) => l['level'] === 40 && /bad frame/.test(String(l['msg']))),
    5000,
    'a warning about the bad frame',
  );
  assert.ok(warning);
  assert.equal(warning['code'], 'ProtocolError');

  const client = await startHost(t, { cluster, name: 'client' });
  assert.equal(await client.proxy(ITestAppService).echo('still serving'), 'still serving');
});

test('a frame header over maxFrameBytes closes only that link', async (t) => {
  const cluster = memoryCluster();
  const capture = captureLogger();
  const server = await startHost(t, {
    cluster,
    name: 'server',
    logger: capture.logger,
    maxFrameBytes: 4096,
    services: [testService(() => 'server')],
  });
  const client = await startHost(t, { cluster, name: 'client' });
  const api = client.proxy(ITestAppService);
  assert.equal(await api.echo('link is up'), 'link is up');
  // A call in flight on the client's link: it would fail if that link were closed too.
  const inFlight = api.slow(300);
  await eventually(() => server.stats().callsInFlight === 1, 5000, 'the slow call in flight');

  const peer = await rawPeer(t, server.linkAddress!);
  await peer.frame(1);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(5000);
  peer.socket.write(header);
  await peer.closed;
  const warning = await eventually(
    () => capture.lines().find((l) => l['level'] === 40 && /bad frame/.test(String(l['msg']))),
    5000,
    'a warning about the oversized frame',
  );
  assert.ok(warning);
  assert.match(String(warning['err']), /over maxFrameBytes 4096/);

  assert.equal(await inFlight, 'server');
  assert.equal(await api.echo('same link'), 'same link');
});

test('a peer without the cluster secret is refused before any call is served', async (t) => {
  const cluster = memoryCluster();
  const rec = recorder();
  const server = await startHost(t, { cluster, name: 'server', services: [rec.binding] });
  const intruderSecret = memoryCluster().secret; // another cluster's secret

  /** Handshakes with `secret` and sends a call in the same write as the Hello. */
  const tryWith = async (secret: string, note: string): Promise<RawPeer> => {
    const peer = await rawPeer(t, server.linkAddress!);
    const challenge = await peer.frame(1);
    assert.equal(challenge[0], FrameType.Challenge);
    const [, , serverId, serverNonce] = challenge as [number, number, string, Uint8Array];
    const myNonce = randomBytes(16);
    const hello = encodeFrame([
      FrameType.Hello,
      PROTOCOL_VERSION,
      'raw-peer',
      myNonce,
      proof(secret, 'hello', serverNonce, myNonce, 'raw-peer', serverId),
    ]);
    const call = encodeFrame([FrameType.Call, 1, 'IRecorderAppService', 'record', [note], { t: 'trace', c: 'raw-peer' }]);
    peer.socket.write(Buffer.concat([hello, call]));
    return peer;
  };

  const intruder = await tryWith(intruderSecret, 'from the intruder');
  const refusal = await intruder.frame(2);
  assert.equal(refusal[0], FrameType.Refuse);
  assert.equal((refusal[1] as { code: string }).code, 'LinkUnauthenticated');
  await intruder.closed;
  assert.equal(intruder.frames.length, 2, `nothing after the refusal: ${JSON.stringify(intruder.frames.map((f) => f[0]))}`);

  // The same bytes with the right secret are served: the refusal above is about the secret alone.
  const member = await tryWith(cluster.secret, 'from a member');
  assert.equal((await member.frame(2))[0], FrameType.Welcome);
  const result = await member.frame(3);
  assert.deepEqual([result[0], result[1]], [FrameType.Result, 1]);
  assert.deepEqual(rec.notes, ['from a member'], 'the intruder call never ran');
});

test('a node of another cluster cannot call into this one', async (t) => {
  const cluster = memoryCluster();
  const rec = recorder();
  const server = await startHost(t, { cluster, name: 'server', services: [rec.binding] });
  // The other cluster's registry points at the server, as a misconfigured deployment could.
  const other = memoryCluster();
  const { registry } = other.join(server.nodeId, quietLogger());
  await registry.start();
  const record: NodeRecord = {
    nodeId: server.nodeId,
    role: 'host',
    address: server.linkAddress!,
    services: [{ contract: IRecorderAppService.descriptor }],
    startedAt: Date.now(),
    protocol: PROTOCOL_VERSION,
  };
  await registry.register(record);
  t.after(() => registry.close());
  const stranger = await startHost(t, { cluster: other, name: 'stranger' });
  let error: unknown;
  try {
    await stranger.proxy(IRecorderAppService).record('from another cluster');
  } catch (e) {
    error = e;
  }
  assert.ok(isWeftError(error), `expected a refusal, got ${String(error)}`);
  assert.equal(error.code, 'LinkUnauthenticated', error.message);
  assert.deepEqual(rec.notes, []);
});

test('frames queued in the same tick leave in one write', async (t) => {
  const cluster = memoryCluster();
  const server = await startHost(t, { cluster, name: 'server', services: [testService(() => 'server')] });
  const client = await startHost(t, { cluster, name: 'client' });
  const api = client.proxy(ITestAppService);
  assert.equal(await api.echo('warm up'), 'warm up'); // the link is open before counting
  const port = server.linkAddress!.port;

  let toServer = 0;
  let toClient = 0;
  const proto = net.Socket.prototype as unknown as { write: (...args: unknown[]) => boolean };
  const hadOwn = Object.hasOwn(proto, 'write');
  const original = proto.write;
  proto.write = function (this: net.Socket, ...args: unknown[]): boolean {
    if (this.remotePort === port) toServer += 1;
    else if (this.localPort === port) toClient += 1;
    return original.apply(this, args);
  };
  const restore = (): void => {
    if (hadOwn) proto.write = original;
    else delete (proto as { write?: unknown }).write;
  };
  t.after(restore);
  let answers: string[];
  try {
    answers = await Promise.all(Array.from({ length: 100 }, (_, i) => api.echo(`m${i}`)));
  } finally {
    restore();
  }
  assert.deepEqual(
    answers,
    Array.from({ length: 100 }, (_, i) => `m${i}`),
  );
  assert.equal(toServer, 1, '100 calls made in one tick left in one write');
  assert.ok(toClient >= 1 && toClient < 10, `the answers left in ${toClient} writes`);
});

test('a peer that completes no handshake is closed after handshakeTimeoutMs', async (t) => {
  const server = await linkServer(t, linkOptions({ handshakeTimeoutMs: 150 }));
  const peer = await rawPeer(t, { host: '127.0.0.1', port: server.port });
  assert.equal((await peer.frame(1))[0], FrameType.Challenge);
  // Say nothing.
  await peer.closed;
  const error = await server.closed;
  assert.ok(error !== undefined);
  assert.equal(error.code, 'LinkUnauthenticated');
  assert.match(error.message, /no handshake/);
});

test('the keep-alive closes a peer that stops answering pings', async (t) => {
  const secret = 'keep-alive-secret';
  const server = await linkServer(t, linkOptions({ secret, pingIntervalMs: 50 }));
  const peer = await rawPeer(t, { host: '127.0.0.1', port: server.port });
  const challenge = (await peer.frame(1)) as [number, number, string, Uint8Array];
  const myNonce = randomBytes(16);
  peer.socket.write(
    encodeFrame([
      FrameType.Hello,
      PROTOCOL_VERSION,
      'quiet-peer',
      myNonce,
      proof(secret, 'hello', challenge[3], myNonce, 'quiet-peer', challenge[2]),
    ]),
  );
  assert.equal((await peer.frame(2))[0], FrameType.Welcome);
  const link = await server.opened;
  assert.equal(link.peerNodeId, 'quiet-peer');
  // The peer now answers nothing, not even the pings it is sent.
  await peer.closed;
  const error = await server.closed;
  assert.ok(error !== undefined);
  assert.equal(error.code, 'CommunicationError');
  assert.match(error.message, /silent/);
  assert.ok(
    peer.frames.slice(2).some((f) => f[0] === FrameType.Ping),
    'the peer was pinged before being closed',
  );
});
