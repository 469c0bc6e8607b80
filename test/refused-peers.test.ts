/**
 * A node whose link fails authentication is not chosen: two hosts in one
 * Redis prefix, one of them started with another cluster secret (a
 * misconfigured deploy, or an intruder that can write to Redis). Real nodes,
 * real Redis, real TCP links (directInProcess: false).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WebSocketModule, createGateway, createHost, implement, redisCluster, type Gateway, type Host, type Logger } from '../src/index.js';
import { ChatAppService, IChatAppService, testService } from './fixtures/services.js';
import { dropPrefix } from './fixtures/node-control.js';
import {
  REDIS_URL,
  captureLogger,
  connectWs,
  httpJson,
  quietLogger,
  redisTest,
  testSecret,
  uniquePrefix,
  type OpenedClient,
} from './helpers/index.js';

const REFUSED_LINE = /failed authentication; it is left out of selection/;

interface Setup {
  gateway: Gateway;
  good: Host;
  bad: Host;
  goodChat: ChatAppService;
  badChat: ChatAppService;
  /** The gateway's log lines that say a peer was refused. */
  refusals: () => Record<string, unknown>[];
  /**
   * Links the bad host refused, as its log counts them, against the dials the
   * gateway made on its own to see whether the bad host links now (probes).
   */
  dialsToBadHost: () => { refused: number; probes: number };
}

async function twoHostsOneWithAnotherSecret(t: TestContext): Promise<Setup> {
  const prefix = uniquePrefix();
  t.after(() => dropPrefix(prefix));
  const options = { url: REDIS_URL, prefix, ttlMs: 3000, heartbeatMs: 1000 };
  const cluster = redisCluster({ ...options, secret: testSecret() });
  const otherCluster = redisCluster({ ...options, secret: testSecret() });
  const startHost = async (name: string, c: typeof cluster, logger: Logger): Promise<{ host: Host; chat: ChatAppService }> => {
    const chat = new ChatAppService();
    const host: Host = createHost({
      cluster: c,
      name,
      logger,
      directInProcess: false,
      modules: [WebSocketModule],
      services: [testService(() => host.nodeId), implement(IChatAppService, chat)],
    });
    await host.start();
    t.after(() => host.stop());
    return { host, chat };
  };
  // Both are registered before the gateway starts, so its first view holds both.
  const badLog = captureLogger();
  const bad = await startHost('bad', otherCluster, badLog.logger);
  const good = await startHost('good', cluster, quietLogger());
  const capture = captureLogger();
  const gateway = await createGateway({
    cluster,
    logger: capture.logger,
    directInProcess: false,
    http: { host: '127.0.0.1', port: 0 },
    // Hundreds of handshakes from 127.0.0.1 in a few seconds: the per-address rate is not what is tested.
    websocket: { maxHandshakesPerIpPerSecond: 10_000 },
  }).start();
  t.after(() => gateway.stop());
  const refusals = (): Record<string, unknown>[] => capture.lines().filter((l) => REFUSED_LINE.test(String(l['msg'])));
  const dialsToBadHost = (): { refused: number; probes: number } => {
    let refused = 0;
    // One line per refused link, or a summary line with the count of those not logged one by one.
    for (const l of badLog.lines()) if (l['msg'] === 'link refused') refused += typeof l['suppressed'] === 'number' ? l['suppressed'] : 1;
    const probes = capture.lines().filter((l) => l['msg'] === 'dialing a refused peer again').length;
    return { refused, probes };
  };
  return { gateway, good: good.host, bad: bad.host, goodChat: good.chat, badChat: bad.chat, refusals, dialsToBadHost };
}

/**
 * Once refused, the bad host is dialed by nobody but the probe: one dial for
 * the work that found out, then probes only. Read once the bad host stopped,
 * which writes out the refusals its log was still counting.
 */
async function dialedOnceForWork(s: Setup): Promise<void> {
  const probes = s.dialsToBadHost().probes;
  await s.bad.stop();
  const { refused } = s.dialsToBadHost();
  assert.ok(refused >= 1 && refused <= 1 + probes, `${refused} links refused by the bad host, ${probes} of them probes`);
}

test(
  'a host with another cluster secret in the same Redis prefix takes no WebSocket session: all 200 handshakes succeed, and it is logged once',
  await redisTest(),
  async (t) => {
    const s = await twoHostsOneWithAnotherSecret(t);
    const wsUrl = s.gateway.url.replace(/^http/, 'ws');
    const opened: OpenedClient[] = [];
    // In waves of 4, over long enough for backoffs to end: the first wave races to both hosts before anything is known of the bad one.
    for (let wave = 0; wave < 50; wave++) {
      const clients = await Promise.all(
        Array.from({ length: 4 }, (_, i) => connectWs(`${wsUrl}/api/chat?businessId=${encodeURIComponent(`b${wave * 4 + i}`)}`)),
      );
      opened.push(...clients);
    }
    t.after(() => {
      for (const c of opened) c.ws.terminate();
    });
    assert.equal(opened.length, 200);
    assert.equal(s.goodChat.log.filter((l) => l.startsWith('open ')).length, 200, 'every session is on the host that holds the secret');
    assert.equal(s.badChat.log.length, 0);
    const refusals = s.refusals();
    assert.equal(refusals.length, 1, `logged once: ${JSON.stringify(refusals)}`);
    assert.equal(refusals[0]!['peer'], s.bad.nodeId);
    assert.match(String(refusals[0]!['reason']), /cluster secret/);
    await dialedOnceForWork(s);
  },
);

test(
  'RPC never chooses a host whose link fails authentication: all 200 calls through the gateway succeed, and it is logged once',
  await redisTest(),
  async (t) => {
    const s = await twoHostsOneWithAnotherSecret(t);
    const servedBy = new Map<string, number>();
    for (let wave = 0; wave < 50; wave++) {
      const answers = await Promise.all(Array.from({ length: 4 }, () => httpJson(`${s.gateway.url}/api/test/whoami`)));
      for (const a of answers) {
        assert.equal(a.status, 200, JSON.stringify(a.body));
        const node = String(a.body.result);
        servedBy.set(node, (servedBy.get(node) ?? 0) + 1);
      }
    }
    assert.deepEqual([...servedBy], [[s.good.nodeId, 200]]);
    const refusals = s.refusals();
    assert.equal(refusals.length, 1, `logged once: ${JSON.stringify(refusals)}`);
    assert.equal(refusals[0]!['peer'], s.bad.nodeId);
    await dialedOnceForWork(s);
  },
);
