/**
 * A host that cannot be dialed leaves the hash ring the gateway chooses
 * hosts from at once, rather than when the registry drops it.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { controlNode, dropPrefix } from './fixtures/node-control.js';
import { registryKeys } from '../src/redis/keys.js';
import { REDIS_URL, connectWs, redisTest, spawnNode, uniquePrefix, eventually, type NodeProcess, type OpenedClient } from './helpers/index.js';

test(
  'a SIGKILLed host leaves the hash ring at once: new sessions of its businessIds open on a live host, even where dialing it would hang',
  await redisTest(),
  async (t) => {
    const prefix = uniquePrefix();
    const procs: NodeProcess[] = [];
    const clients: OpenedClient[] = [];
    const blackhole = new Set<net.Socket>();
    const raw = new Redis(REDIS_URL);
    const server = net.createServer((socket) => {
      blackhole.add(socket);
      socket.on('error', () => {});
    });
    t.after(async () => {
      for (const c of clients) c.ws.terminate();
      for (const s of blackhole) s.destroy();
      server.close();
      await Promise.all(procs.map((p) => p.kill()));
      await dropPrefix(prefix);
      raw.disconnect();
    });
    const env = { WEFT_PREFIX: prefix };
    // A dial that hangs outlasts any handshake: a gateway that still tries the dead host cannot open the session.
    const spawned = await Promise.all([
      spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: 'chat', WEFT_NAME: 'hA' }),
      spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: 'chat', WEFT_NAME: 'hB' }),
      spawnNode({ ...env, WEFT_ROLE: 'gateway', WEFT_NAME: 'gw', WEFT_CONNECT_TIMEOUT_MS: '60000' }),
    ]);
    procs.push(...spawned);
    const [hA, hB, gw] = spawned;
    const [statsA, statsB] = [controlNode(hA), controlNode(hB)];
    const wsUrl = (businessId: string) => `ws://127.0.0.1:${gw.info.httpPort}/api/chat?businessId=${businessId}`;
    const opensOn = async (stats: ReturnType<typeof controlNode>) => (await stats.stats()).framesReceived['SessionOpen'] ?? 0;

    // Sessions until both hosts hold some (the gateway sees both hosts once the first session opens on each).
    const sessions: { businessId: string; client: OpenedClient; closed?: number }[] = [];
    await eventually(
      async () => {
        const businessId = `u${sessions.length}`;
        const client = await connectWs(wsUrl(businessId));
        clients.push(client);
        const s: (typeof sessions)[number] = { businessId, client };
        void client.closed.then(({ code }) => (s.closed = code));
        sessions.push(s);
        return (await opensOn(statsA)) > 0 && (await opensOn(statsB)) > 0;
      },
      30_000,
      'sessions on both hosts',
    );
    const onA = await opensOn(statsA);
    // Links that die young are backed off anyway (transport/peers.ts LINK_HEALTHY_AFTER_MS): let these live past that.
    await sleep(2500);
    const record = JSON.parse((await raw.hget(registryKeys(prefix).node(hA.info.nodeId), 'r')) ?? '{}') as { address: { port: number } };

    await hA.kill();
    // Its port now takes connections and never answers, as a host whose machine is gone.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(record.address.port, '127.0.0.1', resolve);
    });
    await eventually(() => sessions.filter((s) => s.closed !== undefined).length === onA, 15_000, "the gateway closing the dead host's sessions");

    // The dead host is still in the registry (its record has not expired): only the ring can keep it out.
    assert.ok(await raw.exists(registryKeys(prefix).node(hA.info.nodeId)), 'the dead host is still registered');
    const lost = sessions.filter((s) => s.closed !== undefined);
    const bBefore = await opensOn(statsB);
    const failures: string[] = [];
    for (const s of lost) {
      try {
        clients.push(await connectWs(wsUrl(s.businessId)));
      } catch (e) {
        failures.push(`${s.businessId}: ${String((e as { status?: number }).status)} ${String((e as { body?: string }).body)}`);
      }
    }
    assert.deepEqual(failures, [], 'every businessId of the dead host opens a new session');
    assert.equal((await opensOn(statsB)) - bBefore, lost.length, 'on the live host');
  },
);
