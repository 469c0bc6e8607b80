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
import { RedisRegistry } from '../registry/redis-registry.js';
import type { Registry } from '../registry/registry.js';
import { MemorySessionDirectory, MemorySessionHub } from '../directory/memory-session-directory.js';
import { RedisSessionDirectory } from '../directory/redis-session-directory.js';
import type { SessionDirectory } from '../directory/session-directory.js';

/** What one node gets from its cluster. */
export interface ClusterMembership {
  registry: Registry;
  directory: SessionDirectory;
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
 * const host = createHost({ cluster, services: [...] });
 * const gateway = createGateway({ cluster, http: { port: 5000 } });
 */
export function memoryCluster(): Cluster {
  const registryHub = new MemoryRegistryHub();
  const sessionHub = new MemorySessionHub();
  return Object.freeze({
    kind: 'memory' as const,
    secret: randomBytes(32).toString('base64url'),
    nodeExpiryMs: 0,
    join(nodeId: string): ClusterMembership {
      return { registry: new MemoryRegistry(registryHub), directory: new MemorySessionDirectory(sessionHub, nodeId) };
    },
  });
}

export type { RedisClusterOptions } from './redis-cluster-options.js';

/**
 * Many processes sharing a Redis: registry with TTL and heartbeat, session
 * directory with a replica on each WebSocket host. One Redis server, a Redis
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
 * const cluster = redisCluster({ url: 'redis://127.0.0.1:6379', secret: process.env.WEFT_SECRET });
 */
export function redisCluster(options: RedisClusterOptions): Cluster {
  const resolved = resolveOptions(REDIS_CLUSTER_OPTIONS, options, 'redisCluster');
  const { secret, insecure, prefix, ttlMs, heartbeatMs } = resolved;
  const target = redisTargetOf(resolved);
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
      const directory = new RedisSessionDirectory(redis, registry, { prefix, nodeId, staleAfterMs: ttlMs + heartbeatMs, logger });
      return { registry, directory };
    },
  });
}

let processDefault: Cluster | undefined;

/** The memory cluster nodes join when given none: one process, no Redis. */
export function defaultCluster(): Cluster {
  processDefault ??= memoryCluster();
  return processDefault;
}
