/**
 * A cluster: where nodes find each other (registry), where sessions are
 * listed (session directory) and the secret their links prove. Two kinds:
 * in memory (one process, the embedded default) and Redis (many processes).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../logger.js';
import { REDIS_CLUSTER_OPTIONS, type RedisClusterOptions } from './redis-cluster-options.js';
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

let warnedNoSecret = false;

/**
 * Many processes sharing a Redis: registry with TTL and heartbeat, session
 * directory with a replica on each WebSocket host.
 *
 * @example
 * const cluster = redisCluster({ url: 'redis://127.0.0.1:6379', secret: process.env.WEFT_SECRET });
 */
export function redisCluster(options: RedisClusterOptions): Cluster {
  const { url, secret, prefix, ttlMs, heartbeatMs } = resolveOptions(REDIS_CLUSTER_OPTIONS, options, 'redisCluster');
  return Object.freeze({
    kind: 'redis' as const,
    secret,
    nodeExpiryMs: ttlMs + heartbeatMs,
    join(nodeId: string, logger: Logger): ClusterMembership {
      if (secret === '' && !warnedNoSecret) {
        warnedNoSecret = true;
        logger.warn('redisCluster has no secret: any process that can reach a node can call it; set "secret"');
      }
      const redis = new RedisConnection({ url, logger });
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
