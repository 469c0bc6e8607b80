/**
 * Hosts that cannot be dialed: the links say so when a dial fails or the
 * last link closes, and again when a link opens; the hash rings leave such
 * hosts out meanwhile.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { Link, type LinkOptions } from '../src/transport/link.js';
import { Peers, type PeersOptions } from '../src/transport/peers.js';
import { Endpoints } from '../src/rpc/endpoints.js';
import type { NodeRecord, RegistryView } from '../src/registry/registry.js';
import { PROTOCOL_VERSION } from '../src/protocol/frames.js';
import { freePort } from './fixtures/node-control.js';
import { eventually, quietLogger } from './helpers/index.js';

const SECRET = 'a test secret for reachability';

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

function hostRecord(nodeId: string): NodeRecord {
  return {
    nodeId,
    role: 'host',
    address: { host: '127.0.0.1', port: 1 },
    services: [{ contract: { name: 'IRingAppService', route: 'api/ring', methods: {} } as unknown as NodeRecord['services'][number]['contract'] }],
    startedAt: 0,
    protocol: PROTOCOL_VERSION,
  };
}

function viewOf(...ids: string[]): RegistryView {
  return new Map(ids.map((id) => [id, hostRecord(id)]));
}

/** Which of the ring's nodes own 200 keys. */
function owners(endpoints: Endpoints): Set<string> {
  const ring = endpoints.ring('IRingAppService')!;
  const out = new Set<string>();
  for (let i = 0; i < 200; i++) out.add(ring.pick(`key-${i}`)!);
  return out;
}

test('the hash ring leaves out an unreachable node until it is reachable again, and keeps every node when all are unreachable', () => {
  const endpoints = new Endpoints();
  endpoints.update(viewOf('host-a', 'host-b'));
  assert.deepEqual([...owners(endpoints)].sort(), ['host-a', 'host-b']);
  endpoints.setReachable('host-a', false);
  assert.deepEqual([...owners(endpoints)], ['host-b']);
  assert.deepEqual(endpoints.nodeIds('IRingAppService'), ['host-a', 'host-b'], 'still a node of the service');
  endpoints.setReachable('host-b', false);
  assert.deepEqual([...owners(endpoints)].sort(), ['host-a', 'host-b'], 'nobody reachable: the ring keeps them all');
  endpoints.setReachable('host-a', true);
  endpoints.setReachable('host-b', true);
  assert.deepEqual([...owners(endpoints)].sort(), ['host-a', 'host-b']);
  // A node that left the view and came back is on the ring again.
  endpoints.setReachable('host-a', false);
  endpoints.update(viewOf('host-b'));
  endpoints.update(viewOf('host-a', 'host-b'));
  assert.deepEqual([...owners(endpoints)].sort(), ['host-a', 'host-b']);
});

function peersDialing(t: TestContext, port: () => number, overrides: Partial<PeersOptions> = {}): Peers {
  const peers = new Peers({
    ...linkOptions('dialer'),
    connectTimeoutMs: 1000,
    backoffInitialMs: 20,
    backoffMaxMs: 200,
    resolve: () => ({ host: '127.0.0.1', port: port() }),
    onFrame: () => undefined,
    directInProcess: false,
    maxHandshakingLinks: 64,
    linkWarningIntervalMs: 1000,
    ...overrides,
  });
  t.after(() => peers.closeAll());
  return peers;
}

async function listen(server: net.Server, port = 0): Promise<number> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

test('a peer whose dial fails is unreachable until a link to it opens, and one to redial is dialed again until it is back', async (t) => {
  const port = await freePort();
  const events: string[] = [];
  const peers = peersDialing(t, () => port, { redialUnreachable: () => true });
  peers.onReachability((id, reachable) => events.push(`${id} ${reachable ? 'back' : 'unreachable'}`));
  await peers.connect('remote').catch(() => undefined);
  assert.equal(peers.isUnreachable('remote'), true);
  assert.deepEqual(events, ['remote unreachable']);

  // It comes back on the same port: the redial finds it, with no caller asking.
  const server = net.createServer((socket) => new Link(socket, 'acceptor', linkOptions('remote')));
  await listen(server, port);
  t.after(() => server.close());
  await eventually(() => !peers.isUnreachable('remote'), 10_000, 'the peer reachable again');
  assert.deepEqual(events, ['remote unreachable', 'remote back']);
  assert.ok(peers.get('remote')?.isOpen, 'the redial opened a link');
});

test('a peer whose last link closes is unreachable at once, before the close is announced, and a redial brings it back', async (t) => {
  const accepted: Link[] = [];
  const server = net.createServer((socket) => accepted.push(new Link(socket, 'acceptor', linkOptions('remote'))));
  const port = await listen(server);
  t.after(() => {
    for (const l of accepted) l.close();
    server.close();
  });
  const peers = peersDialing(t, () => port, { redialUnreachable: () => true });
  const atClose: boolean[] = [];
  peers.onLinkClosed((link) => atClose.push(peers.isUnreachable(link.peerNodeId)));
  await peers.connect('remote');
  assert.equal(peers.isUnreachable('remote'), false);
  await eventually(() => accepted.some((l) => l.isOpen), 5000, 'the accepted side open');
  for (const l of accepted) l.close();
  await eventually(() => atClose.length === 1, 5000, 'the link closed');
  assert.deepEqual(atClose, [true], 'unreachable when the close is announced');
  await eventually(() => !peers.isUnreachable('remote') && peers.get('remote')?.isOpen === true, 5000, 'dialed again at once');
});

test('a peer not to redial is marked unreachable and left alone', async (t) => {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  const port = await listen(server);
  t.after(() => server.close());
  const peers = peersDialing(t, () => port);
  await peers.connect('remote').catch(() => undefined);
  assert.equal(peers.isUnreachable('remote'), true);
  const after = connections;
  // Past several backoffs: nobody dials it.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(connections, after);
});
