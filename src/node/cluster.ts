/**
 * A cluster: where nodes find each other (registry), where sessions are
 * listed (session directory) and the secret their links prove. Two kinds:
 * in memory (one process, the embedded default) and Redis (many processes).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../logger.js';
import { REDIS_CLUSTER_OPTIONS, redisTargetOf, weakSecret, type RedisClusterOptions } from './redis-cluster-options.js';
import { resolveOptions } from '../options/schema.js';
import { MemoryRegistry, MemoryRegistryHub } from '../registry/memory-registry.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { redactUrl } from '../util/redact-url.js';
import { describeTarget, type RedisTarget } from '../redis/redis-target.js';
import { RedisRegistry } from '../registry/redis-registry.js';
import type { Registry } from '../registry/registry.js';
import { MemorySessionDirectory, MemorySessionHub } from '../directory/memory-session-directory.js';
import { RedisSessionDirectory } from '../directory/redis-session-directory.js';
import type { SessionDirectory } from '../directory/session-directory.js';
import type { HistoryStore } from '../history/history-store.js';
import { MemoryHistory, MemoryHistoryHub } from '../history/memory-history.js';
import { RedisHistory } from '../history/redis-history.js';

/** What one node gets from its cluster. */
export interface ClusterMembership {
  registry: Registry;
  directory: SessionDirectory;
  /** Push history for resume; a backend without one has no history (clients are told so when they resume). */
  history?: HistoryStore;
  /**
   * The outside service the membership depends on, when there is one (Redis):
   * what a failed start names, and what a gateway's `/readyz` checks.
   */
  backend?: ClusterBackend;
}

/** A cluster's outside service, as messages and readiness see it. */
export interface ClusterBackend {
  /** What it is and where, with no password: `Redis at redis://127.0.0.1:6379`. */
  readonly name: string;
  /** The option that says where it is, for messages (`url`, `cluster` or `sentinel` of `redisCluster`). */
  readonly option: string;
  /** The last connection error it reported (`connect ECONNREFUSED 127.0.0.1:6379`), if any. */
  lastError(): string | undefined;
  /** Undefined when it is reachable now; otherwise why not. */
  check(): Promise<string | undefined>;
}

/** How long a readiness check waits for Redis to answer a PING. */
const BACKEND_CHECK_TIMEOUT_MS = 1000;

/** `option`: the one of `url`, `cluster`, `sentinel` that named the target. */
function redisBackend(redis: RedisConnection, target: RedisTarget, option: string): ClusterBackend {
  return {
    name: `Redis at ${target.kind === 'standalone' ? redactUrl(target.url) : describeTarget(target)}`,
    option,
    lastError: () => redis.lastError,
    async check() {
      if (!redis.ready) return `not connected${redis.lastError === undefined ? '' : ` (${redis.lastError})`}`;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`no answer to PING within ${BACKEND_CHECK_TIMEOUT_MS} ms`), BACKEND_CHECK_TIMEOUT_MS);
      });
      try {
        return await Promise.race([
          redis.command.ping().then(
            () => undefined,
            (e: unknown) => `PING failed: ${(e as Error).message}`,
          ),
          late,
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export interface Cluster {
  readonly kind: 'memory' | 'redis';
  /** Shared secret every link proves (HMAC); never sent. */
  readonly secret: string;
  /** The most a dead node can stay visible, for docs and tests. */
  readonly nodeExpiryMs: number;
  join(nodeId: string, logger: Logger): ClusterMembership;
}

/**
 * One process, no external service. Every node given the same memory
 * cluster sees the others. Links are still real TCP on 127.0.0.1,
 * authenticated with a random secret made here.
 *
 * @example
 * const cluster = memoryCluster();
 * await createHost({ cluster, services: [implement(IGreeterAppService, { greet: (name) => `hello ${name}` })] }).start();
 * await createGateway({ cluster, http: { port: 5000 } }).start();
 */
export function memoryCluster(): Cluster {
  const registryHub = new MemoryRegistryHub();
  const sessionHub = new MemorySessionHub();
  const historyHub = new MemoryHistoryHub();
  return Object.freeze({
    kind: 'memory' as const,
    secret: randomBytes(32).toString('base64url'),
    nodeExpiryMs: 0,
    join(nodeId: string, logger: Logger): ClusterMembership {
      return {
        registry: new MemoryRegistry(registryHub),
        directory: new MemorySessionDirectory(sessionHub, nodeId, logger),
        history: new MemoryHistory(historyHub),
      };
    },
  });
}

export type { RedisClusterOptions } from './redis-cluster-options.js';

/**
 * Many processes sharing a Redis: registry with TTL and heartbeat, session
 * directory sharded over the WebSocket hosts (each keeps the shards it owns). One Redis server, a Redis
 * Cluster (`redis-cluster://host:port,host:port` or `cluster: {...}`) or a
 * master behind Sentinel (`redis-sentinel://host:port,.../<master-name>` or
 * `sentinel: {...}`).
 *
 * Refuses (`InvalidOption` naming `secret`) to build a cluster without a real
 * secret: none, one under 16 bytes, or an example value from documentation.
 * `insecure: true` allows it, and every node that joins such a cluster warns.
 *
 * @example
 * // export WEFT_SECRET=$(openssl rand -base64 32), the same on every node
 * const cluster = redisCluster({ url: 'redis://127.0.0.1:6379', secret: process.env['WEFT_SECRET'] ?? '' }); // '' is refused
 */
export function redisCluster(options: RedisClusterOptions): Cluster {
  const resolved = resolveOptions(REDIS_CLUSTER_OPTIONS, options, 'redisCluster');
  const { secret, insecure, prefix, ttlMs, heartbeatMs, fullDirectoryReplica } = resolved;
  const target = redisTargetOf(resolved);
  const option = resolved.url !== undefined ? 'url' : resolved.cluster !== undefined ? 'cluster' : 'sentinel';
  const weak = weakSecret(secret);
  return Object.freeze({
    kind: 'redis' as const,
    secret: secret ?? '',
    nodeExpiryMs: ttlMs + heartbeatMs,
    join(nodeId: string, logger: Logger): ClusterMembership {
      // Every node, every time: an insecure cluster must not go unnoticed in any process's log.
      if (insecure) {
        logger.warn(
          { prefix },
          weak === undefined
            ? 'redisCluster has insecure: true although its secret is a real one; remove "insecure" so a weak secret is refused'
            : `redisCluster is insecure: its secret ${weak}, so any process that can reach a node can call it; set a random "secret" of at least 16 bytes and remove "insecure"`,
        );
      }
      const redis = new RedisConnection({ target, logger });
      const registry = new RedisRegistry(redis, { prefix, ttlMs, heartbeatMs, logger });
      const directory = new RedisSessionDirectory(redis, registry, {
        prefix,
        nodeId,
        staleAfterMs: ttlMs + heartbeatMs,
        checkIntervalMs: heartbeatMs,
        fullReplica: fullDirectoryReplica,
        logger,
      });
      return { registry, directory, history: new RedisHistory(redis, { prefix }), backend: redisBackend(redis, target, option) };
    },
  });
}

let processDefault: Cluster | undefined;

/** The memory cluster nodes join when given none: one process, no Redis. */
export function defaultCluster(): Cluster {
  processDefault ??= memoryCluster();
  return processDefault;
}
