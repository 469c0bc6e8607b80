/**
 * Options of `redisCluster`.
 */
import type { Static } from '@sinclair/typebox';
import { invalidOption } from '../errors.js';
import { anyString, defineOptions, nonEmptyString, positiveNumber, type Resolved } from '../options/schema.js';

export const REDIS_CLUSTER_OPTION_PROPERTIES = {
  url: nonEmptyString({ required: true, description: 'Redis URL, e.g. `redis://127.0.0.1:6379`.' }),
  secret: anyString({
    default: '',
    defaultNote: 'a warning is logged',
    description: 'Shared by every node of the cluster; links are refused without it. Never sent over the wire.',
  }),
  prefix: nonEmptyString({ default: 'weft', description: 'Key and channel prefix, so several clusters can share one Redis.' }),
  ttlMs: positiveNumber({ unit: 'ms', default: 6_000, description: 'Node record TTL.' }),
  heartbeatMs: positiveNumber({
    unit: 'ms',
    default: 2_000,
    description: 'Record refresh and view reload; at most `ttlMs / 2`. A dead node leaves every view within `ttlMs + heartbeatMs`.',
  }),
};

export const REDIS_CLUSTER_OPTIONS = defineOptions(REDIS_CLUSTER_OPTION_PROPERTIES, (options) => {
  // A record must survive one missed heartbeat.
  if (options.heartbeatMs > options.ttlMs / 2) {
    throw invalidOption('heartbeatMs', `must be at most half of ttlMs (${options.ttlMs} ms), got ${options.heartbeatMs}`);
  }
});

/** Options of `redisCluster`; see docs/options.md. */
export interface RedisClusterOptions extends Static<typeof REDIS_CLUSTER_OPTIONS> {}

/** redisCluster options once resolved: defaults filled in, frozen. */
export type ResolvedRedisClusterOptions = Resolved<typeof REDIS_CLUSTER_OPTION_PROPERTIES>;
