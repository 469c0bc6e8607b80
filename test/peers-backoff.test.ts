/**
 * Redialing a peer: a peer that completes the link handshake and drops the
 * link at once is backed off like one that refuses it, so a node never
 * storms it; a link that lived is redialed at once.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { Link, type LinkOptions } from '../src/transport/link.js';
import { Peers } from '../src/transport/peers.js';
import { quietLogger } from './helpers/index.js';

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
  const peers = new Peers({
    ...linkOptions('dialer'),
    connectTimeoutMs: 1000,
    backoffInitialMs: 100,
    backoffMaxMs: 5000,
    resolve: () => ({ host: '127.0.0.1', port }),
    onFrame: () => undefined,
    directInProcess: false,
  });
  t.after(() => peers.closeAll());
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
