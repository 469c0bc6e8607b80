/**
 * Unauthenticated connections to a node's link server: however many come,
 * the node keeps serving, holds at most LIMITS.maxHandshakingLinks of them in
 * handshake, and logs a few lines that count them all, not one line each.
 * Real sockets on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { LIMITS } from '../src/limits.js';
import { createHost, memoryCluster, type Cluster, type Host, type Logger } from '../src/index.js';
import { ITestAppService, testService } from './fixtures/services.js';
import { captureLogger, eventually, quietLogger } from './helpers/index.js';

/** What the link server warns about connections that never authenticate. */
const FLOOD_MESSAGES = ['link refused', 'closing link after a bad frame', 'too many links in handshake; closing a new connection'];

async function startHost(t: TestContext, cluster: Cluster, name: string, logger: Logger = quietLogger()): Promise<Host> {
  // Links only: no direct in-process shortcut.
  const host = createHost({ cluster, name, logger, directInProcess: false, services: name === 'server' ? [testService(() => name)] : [] });
  await host.start();
  t.after(() => host.stop());
  return host;
}

interface RawSocket {
  socket: net.Socket;
  /** Bytes received (the acceptor's Challenge, if it got that far). */
  received: () => number;
  closed: Promise<void>;
  isClosed: () => boolean;
}

async function rawSocket(t: TestContext, address: { host: string; port: number }): Promise<RawSocket> {
  const socket = net.connect(address);
  socket.on('error', () => {});
  let received = 0;
  let closed = false;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  const closedP = once(socket, 'close').then(() => {
    closed = true;
  });
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  return { socket, received: () => received, closed: closedP, isClosed: () => closed };
}

/** Garbage of three kinds: not MessagePack, a header over the handshake limit, a well-formed frame of the wrong type. */
function garbage(i: number): Buffer {
  switch (i % 3) {
    case 0:
      return Buffer.from([0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1]);
    case 1:
      return Buffer.from([0x7f, 0xff, 0xff, 0xff]);
    default:
      // MessagePack [99]: decodes, but is no handshake frame.
      return Buffer.from([0, 0, 0, 2, 0x91, 0x63]);
  }
}

/** How many connections the warnings account for: a line each, plus the `suppressed` count a summary line carries. */
function accountedFor(lines: Record<string, unknown>[]): { lines: number; connections: number } {
  const flood = lines.filter((l) => l['level'] === 40 && FLOOD_MESSAGES.includes(String(l['msg'])));
  let connections = 0;
  for (const l of flood) connections += typeof l['suppressed'] === 'number' ? l['suppressed'] : 1;
  return { lines: flood.length, connections };
}

test('200 raw sockets writing garbage: the node keeps serving calls, and a few log lines count every one of them', async (t) => {
  const cluster = memoryCluster();
  const capture = captureLogger();
  const server = await startHost(t, cluster, 'server', capture.logger);
  const client = await startHost(t, cluster, 'client');
  const api = client.proxy(ITestAppService);
  assert.equal(await api.echo('before'), 'before');

  const address = server.linkAddress!;
  const flood = Array.from({ length: 200 }, async (_, i) => {
    const raw = await rawSocket(t, address);
    raw.socket.write(garbage(i));
    await raw.closed;
  });
  // Served while the flood is on, over the link that was already up.
  assert.equal(await api.echo('during'), 'during');
  await Promise.all(flood);

  // Every connection is accounted for once the last summary line is out.
  const seen = await eventually(
    () => {
      const a = accountedFor(capture.lines());
      return a.connections === 200 ? a : undefined;
    },
    5000,
    'warnings that account for all 200 connections',
  );
  assert.ok(seen !== undefined && seen.lines < 50, `${seen?.lines} warning lines for 200 bad connections`);

  // A node that links now is served too.
  const late = await startHost(t, cluster, 'late');
  assert.equal(await late.proxy(ITestAppService).echo('after'), 'after');
});

test(`at most ${LIMITS.maxHandshakingLinks} connections wait in handshake at once; one beyond is closed at once, and links work again once they go`, async (t) => {
  const cluster = memoryCluster();
  const capture = captureLogger();
  const server = await startHost(t, cluster, 'server', capture.logger);
  const address = server.linkAddress!;
  const limit = LIMITS.maxHandshakingLinks;

  // Silent peers that got their Challenge: each is a link in handshake on the server.
  const waiting: RawSocket[] = [];
  for (let i = 0; i < limit; i++) {
    const raw = await rawSocket(t, address);
    await eventually(() => raw.received() > 0, 5000, `the Challenge of connection ${i}`);
    waiting.push(raw);
  }
  const beyond = await Promise.all(Array.from({ length: 10 }, () => rawSocket(t, address)));
  await Promise.all(beyond.map((r) => r.closed));
  assert.ok(
    beyond.every((r) => r.received() === 0),
    'a connection over the cap gets no Challenge',
  );
  assert.ok(
    waiting.every((r) => !r.isClosed()),
    'the ones in handshake are left alone',
  );
  const capped = await eventually(
    () => capture.lines().find((l) => l['msg'] === 'too many links in handshake; closing a new connection'),
    5000,
    'a warning about the cap',
  );
  assert.equal(capped?.['limit'], limit);

  for (const r of waiting) r.socket.destroy();
  await Promise.all(waiting.map((r) => r.closed));
  const client = await startHost(t, cluster, 'client');
  // The server counts a link out of handshake when its socket closes; the client's dial may race that.
  assert.equal(await eventually(() => client.proxy(ITestAppService).echo('linked'), 5000, 'a call over a new link'), 'linked');
});
