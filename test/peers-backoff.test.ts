/**
 * Redialing a peer: a peer that completes the link handshake and drops the
 * link at once is backed off like one that refuses it, so a node never
 * storms it; a link that lived is redialed at once. A peer whose link fails
 * authentication is refused (left out of selection) until a link succeeds.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { Link, type LinkOptions } from '../src/transport/link.js';
import { Peers, type PeersOptions } from '../src/transport/peers.js';
import type { WeftError } from '../src/index.js';
import { captureLogger, eventually, quietLogger } from './helpers/index.js';

const SECRET = 'a test secret';

function linkOptions(nodeId: string): LinkOptions {
  return {
    nodeId,
    secret: SECRET,
    maxFrameBytes: 1024 * 1024,
    handshakeTimeoutMs: 2000,
    pingIntervalMs: 60_000,
    maxQueuedBytes: 1024 * 1024,
    logger: quietLogger(),
  };
}

/** A node's links that dial `port` for every peer, backing off from 100 ms; closed after the test. */
function dialerPeers(t: TestContext, port: number, overrides: Partial<PeersOptions> = {}): Peers {
  const peers = new Peers({
    ...linkOptions('dialer'),
    connectTimeoutMs: 1000,
    backoffInitialMs: 100,
    backoffMaxMs: 5000,
    resolve: () => ({ host: '127.0.0.1', port }),
    onFrame: () => undefined,
    directInProcess: false,
    maxHandshakingLinks: 64,
    linkWarningIntervalMs: 1000,
    ...overrides,
  });
  t.after(() => peers.closeAll());
  return peers;
}

test('a peer that accepts links and drops each at once is backed off, not redialed in a loop', async (t) => {
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted += 1;
    const link = new Link(socket, 'acceptor', linkOptions('flaky'));
    link.onOpen = () => link.close();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const peers = dialerPeers(t, port);
  // A caller that wants the peer as often as it can for 1.5 s.
  const until = Date.now() + 1500;
  let refusedFast = 0;
  while (Date.now() < until) {
    await peers.connect('flaky').then(
      () => undefined,
      () => (refusedFast += 1),
    );
    await sleep(5);
  }
  // Dropped links double the wait (50-100, 100-200, 200-400, 400-800 ms...): a handful of dials, not hundreds.
  assert.ok(accepted >= 2 && accepted <= 6, `dialed ${accepted} times`);
  assert.ok(refusedFast > 0, 'calls while backing off fail at once');
  assert.equal(peers.isBackingOff('flaky'), true);
});

test('a peer that refuses the link stays refused after its backoff is over, until a link to it succeeds; it is logged once', async (t) => {
  let serverSecret = 'another cluster secret, not ours';
  const server = net.createServer((socket) => {
    new Link(socket, 'acceptor', { ...linkOptions('picky'), secret: serverSecret });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const capture = captureLogger();
  // No probe dial within this test: only its own dials reach the peer.
  const peers = dialerPeers(t, port, { logger: capture.logger, backoffInitialMs: 20, backoffMaxMs: 60_000 });
  const refusals = (): number => capture.lines().filter((l) => /failed authentication/.test(String(l['msg']))).length;

  const first = await peers.connect('picky').then(
    () => assert.fail('linked without the secret'),
    (e: unknown) => e as WeftError,
  );
  assert.equal(first.code, 'LinkUnauthenticated');
  assert.equal(peers.isRefused('picky'), true);
  await eventually(() => !peers.isBackingOff('picky'), 5000, 'the end of the backoff');
  assert.equal(peers.isRefused('picky'), true, 'still refused once the backoff is over');
  // Dialed again on purpose, and refused again: no new line.
  await peers.connect('picky').catch(() => undefined);
  assert.equal(peers.isRefused('picky'), true);
  assert.equal(refusals(), 1);

  serverSecret = SECRET;
  await eventually(() => !peers.isBackingOff('picky'), 5000, 'the end of the backoff');
  const link = await peers.connect('picky');
  assert.equal(link.peerNodeId, 'picky');
  assert.equal(peers.isRefused('picky'), false, 'chosen again once a link succeeded');
  assert.equal(refusals(), 1);
});

test('a peer that is only unreachable is backed off, not refused', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const peers = dialerPeers(t, port);
  const error = await peers.connect('gone').then(
    () => assert.fail('linked to a closed port'),
    (e: unknown) => e as WeftError,
  );
  assert.equal(error.code, 'CommunicationError');
  assert.equal(peers.isBackingOff('gone'), true);
  assert.equal(peers.isRefused('gone'), false);
});
