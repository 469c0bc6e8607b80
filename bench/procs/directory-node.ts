/**
 * One node of the session directory alone, in its own process: a Redis
 * connection that counts the directory updates it receives, a registry and
 * a RedisSessionDirectory (`fullReplica`: today's design before sharding, a
 * replica of everything on every host). `role` host registers as a host of
 * the service and watches it; gateway registers sessions through the
 * directory API (what a gateway does when a WebSocket opens), without
 * sockets: the directory is what is measured.
 */
import { RedisSessionDirectory } from '../../src/directory/redis-session-directory.js';
import { PROTOCOL_VERSION } from '../../src/protocol/frames.js';
import { directoryUnit } from '../../src/redis/keys.js';
import { RedisConnection } from '../../src/redis/redis-connection.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { benchLogger, childArgs, failStart, memoryAfterGc, serve } from '../lib/child.js';

interface Args {
  role: 'host' | 'gateway';
  redisUrl: string;
  prefix: string;
  nodeId: string;
  service: string;
  fullReplica: boolean;
}

/** Counts what arrives on the directory's channels (not the registry's). */
class CountingRedis extends RedisConnection {
  messages = 0;
  bytes = 0;

  override subscribe(channel: string, handler: (message: Buffer) => void): Promise<void> {
    const directory = channel.endsWith(':sessions');
    return super.subscribe(channel, (message) => {
      if (directory) {
        this.messages += 1;
        this.bytes += message.length;
      }
      handler(message);
    });
  }
}

const args = childArgs<Args>();
const logger = benchLogger();

try {
  const redis = new CountingRedis({ target: args.redisUrl, logger });
  const registry = new RedisRegistry(redis, { prefix: args.prefix, ttlMs: 6000, heartbeatMs: 2000, logger });
  const directory = new RedisSessionDirectory(redis, registry, {
    prefix: args.prefix,
    nodeId: args.nodeId,
    staleAfterMs: 8000,
    checkIntervalMs: 2000,
    fullReplica: args.fullReplica,
    logger,
  });
  await registry.start();
  await directory.start();
  const contract = { name: args.service, segment: 'bench', basePath: '/api/bench', methods: [] };
  await registry.register({
    nodeId: args.nodeId,
    role: args.role,
    address: { host: '127.0.0.1', port: 1 },
    services: args.role === 'host' ? [{ contract }] : [],
    startedAt: Date.now(),
    protocol: PROTOCOL_VERSION,
  });
  /** Sessions this gateway holds: sessionId -> businessId. */
  const held = new Map<string, string>();
  directory.setHeldSessions(function* () {
    for (const [sessionId, businessId] of held) yield [args.service, businessId, sessionId] as const;
  });
  serve(
    {
      /** Hosts: how many hosts of the service the registry shows. */
      hosts: () => [...registry.view().values()].filter((r) => r.role === 'host').length,
      watch: () => directory.watch(args.service),
      /** Gateways: opens sessions `from`..`to`-1, session i of businessId `b<i mod businessIds>`, in batches of `batch`. */
      open: async (a: { from: number; to: number; businessIds: number; batch: number }) => {
        for (let i = a.from; i < a.to; i++) {
          const sessionId = `${args.nodeId}.s${i}`;
          const businessId = `b${i % a.businessIds}`;
          held.set(sessionId, businessId);
          directory.add(args.service, businessId, sessionId);
          if ((i + 1) % a.batch === 0) await new Promise((r) => setImmediate(r));
        }
        await new Promise((r) => setTimeout(r, 50));
      },
      /** Gateways: closes sessions `from`..`to`-1. */
      close: async (a: { from: number; to: number; batch: number }) => {
        for (let i = a.from; i < a.to; i++) {
          const sessionId = `${args.nodeId}.s${i}`;
          const businessId = held.get(sessionId);
          if (businessId === undefined) continue;
          held.delete(sessionId);
          directory.remove(args.service, businessId, sessionId);
          if ((i + 1) % a.batch === 0) await new Promise((r) => setImmediate(r));
        }
        await new Promise((r) => setTimeout(r, 50));
      },
      /** Hosts: sessions the replicas list, the shards owned, updates received, heap after GC. */
      stats: () => {
        const mem = memoryAfterGc();
        const units = args.fullReplica
          ? [directoryUnit(args.service, undefined)]
          : directory.ownedShards(args.service).map((s) => directoryUnit(args.service, s));
        let sessions = 0;
        for (const unit of units) sessions += directory.replicaState(unit)?.sessions ?? 0;
        return { messages: redis.messages, bytes: redis.bytes, heapUsed: mem.heapUsed, shards: args.fullReplica ? 0 : units.length, sessions };
      },
      /** Hosts: looks up `count` businessIds one after the other; ms in all, and sessions found. */
      lookups: async (a: { count: number; businessIds: number }) => {
        let found = 0;
        const t0 = performance.now();
        for (let i = 0; i < a.count; i++) {
          const r = directory.sessionsOf(args.service, `b${(i * 7919) % a.businessIds}`);
          found += (r instanceof Promise ? await r : r).length;
        }
        return { ms: performance.now() - t0, found };
      },
    },
    { nodeId: args.nodeId },
  );
} catch (err) {
  failStart(err);
}
