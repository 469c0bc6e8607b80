/**
 * Options of `redisCluster`.
 */
import type { Static } from '@sinclair/typebox';
import { invalidOption } from '../errors.js';
import { anyString, defineOptions, flag, nonEmptyString, positiveNumber, record, stringList, type Resolved } from '../options/schema.js';
import { parseHostPort, parseRedisUrl, type RedisTarget } from '../redis/redis-target.js';

/** Fewest bytes (UTF-8) a cluster secret may have. */
export const MIN_SECRET_BYTES = 16;

/**
 * Secrets that appear in examples, docs and tutorials (weft's own included),
 * compared without case or surrounding spaces. A cluster that uses one is as
 * open as one with no secret, so it is refused like one.
 */
export const EXAMPLE_SECRETS: readonly string[] = Object.freeze([
  'change-me',
  'changeme',
  'change_me',
  'changeit',
  'secret',
  's3cret',
  'secret123',
  'mysecret',
  'my-secret',
  'password',
  'passw0rd',
  'test-secret',
  'weft',
  'default',
  'example',
  '...',
  'replace-me',
  'change-me-please',
  'changemechangeme',
  'my-cluster-secret',
  'your-secret-here',
  'supersecretpassword',
]);

export const REDIS_CLUSTER_OPTION_PROPERTIES = {
  url: nonEmptyString({
    defaultNote: 'none: one of `url`, `cluster`, `sentinel`',
    description:
      'Where Redis is: `redis://host:port` (or `rediss://`, TLS) for one server, `redis-cluster://host:port,host:port` for a Redis Cluster ' +
      '(any few of its nodes), `redis-sentinel://host:port,host:port/<master-name>` for a master found through Sentinel. ' +
      'Credentials as `user:password@` before the hosts; for Sentinel, `?sentinelPassword=...` if the sentinels ask for one. ' +
      '`WEFT_REDIS_URL` takes the same forms.',
  }),
  cluster: record(
    {
      nodes: stringList({ required: true, description: 'Seed nodes, `host:port` (port 6379 when left out); the rest of the cluster is discovered.' }),
      username: nonEmptyString({ defaultNote: 'none', description: 'ACL user of the cluster nodes.' }),
      password: nonEmptyString({ defaultNote: 'none', description: 'Password of the cluster nodes.' }),
    },
    {
      description:
        'A Redis Cluster (Redis 7 or later: pub/sub is sharded), instead of `url`. Keys that travel together share a hash tag, so every multi-key command stays in one slot (see docs/architecture.md, Redis).',
    },
  ),
  sentinel: record(
    {
      sentinels: stringList({ required: true, description: 'The sentinels, `host:port` (port 26379 when left out).' }),
      name: nonEmptyString({ required: true, description: "The master's name in the sentinels' configuration (`sentinel monitor <name> ...`)." }),
      username: nonEmptyString({ defaultNote: 'none', description: 'ACL user of the master and its replicas.' }),
      password: nonEmptyString({ defaultNote: 'none', description: 'Password of the master and its replicas.' }),
      sentinelUsername: nonEmptyString({ defaultNote: 'none', description: 'ACL user of the sentinels.' }),
      sentinelPassword: nonEmptyString({ defaultNote: 'none', description: 'Password of the sentinels.' }),
    },
    { description: 'A master and its replicas watched by Sentinel, instead of `url`: after a failover every node follows the new master.' },
  ),
  secret: anyString({
    defaultNote: 'none: required unless `insecure`',
    description:
      `Shared by every node of the cluster; links are refused to a peer without it. At least ${MIN_SECRET_BYTES} bytes, not an example value ` +
      '(`change-me`, `secret`...): make one with `openssl rand -base64 32`. Never sent over the wire. See [security](security.md).',
  }),
  insecure: flag({
    default: false,
    description:
      'Run without a real secret (none, short or an example one): any process that can reach a node can call it. A warning is logged each time a node joins. For a throwaway local setup only.',
  }),
  prefix: nonEmptyString({
    default: 'weft',
    description: "Key and channel prefix, so several clusters can share one Redis; no `{` or `}` (it is part of the keys' hash tags).",
  }),
  fullDirectoryReplica: flag({
    default: false,
    description:
      'Every WebSocket host keeps the whole session directory of its services and receives every session open and close (the design before the directory was sharded; for small clusters). ' +
      'Default: each host keeps the shards of the businessIds it owns on the hash ring and reads the others from Redis (docs/architecture.md, "The directory, sharded"). Every node of a cluster must agree.',
  }),
  ttlMs: positiveNumber({ unit: 'ms', default: 6_000, description: 'Node record TTL.' }),
  heartbeatMs: positiveNumber({
    unit: 'ms',
    default: 2_000,
    description:
      'Registry TTL refresh (one small script: it also reaps expired nodes and says whether a registry change was missed), and how often session directory replicas compare their version with Redis; at most `ttlMs / 2`. A dead node leaves every view within `ttlMs + heartbeatMs`.',
  }),
};

/** Why `secret` is not good enough to guard a cluster, or undefined when it is. */
export function weakSecret(secret: string | undefined): string | undefined {
  if (secret === undefined || secret === '') return 'is missing';
  if (EXAMPLE_SECRETS.includes(secret.trim().toLowerCase())) return 'is an example value from documentation';
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes < MIN_SECRET_BYTES) return `is too short: ${bytes} bytes, at least ${MIN_SECRET_BYTES} needed`;
  return undefined;
}

export const REDIS_CLUSTER_OPTIONS = defineOptions(REDIS_CLUSTER_OPTION_PROPERTIES, (options) => {
  redisTargetOf(options);
  if (/[{}]/.test(options.prefix))
    throw invalidOption('prefix', `must not contain "{" or "}" (weft puts it in hash tags), got ${JSON.stringify(options.prefix)}`);
  // No cluster is open by default: a missing or guessable secret is refused unless asked for.
  const weak = weakSecret(options.secret);
  if (weak !== undefined && !options.insecure) {
    throw invalidOption(
      'secret',
      `${weak}: give every node the same random secret of at least ${MIN_SECRET_BYTES} bytes ` +
        '(e.g. `export WEFT_SECRET=$(openssl rand -base64 32)`, then `secret: process.env.WEFT_SECRET`), ' +
        'or set `insecure: true` for a throwaway local cluster (see docs/security.md)',
    );
  }
  // A record must survive one missed heartbeat.
  if (options.heartbeatMs > options.ttlMs / 2) {
    throw invalidOption('heartbeatMs', `must be at most half of ttlMs (${options.ttlMs} ms), got ${options.heartbeatMs}`);
  }
});

/** The one Redis the options name (`url`, `cluster` or `sentinel`); throws `InvalidOption` naming the one to fix. */
export function redisTargetOf(options: Pick<ResolvedRedisClusterOptions, 'url' | 'cluster' | 'sentinel'>): RedisTarget {
  const given = (['url', 'cluster', 'sentinel'] as const).filter((k) => options[k] !== undefined);
  if (given.length !== 1) {
    throw invalidOption(
      given[1] ?? 'url',
      given.length === 0
        ? 'is required: say where Redis is with `url` (redis://, redis-cluster://, redis-sentinel://), `cluster` or `sentinel`'
        : `cannot be given with ${given[0]}: give one of url, cluster, sentinel`,
    );
  }
  const hosts = (name: string, list: readonly string[], defaultPort: number) => {
    if (list.length === 0) throw invalidOption(name, 'must name at least one host:port');
    return list.map((h) => {
      try {
        return parseHostPort(h, defaultPort);
      } catch (e) {
        throw invalidOption(name, (e as Error).message);
      }
    });
  };
  const { url, cluster, sentinel } = options;
  if (cluster !== undefined) {
    return { kind: 'cluster', nodes: hosts('cluster.nodes', cluster.nodes, 6379), username: cluster.username, password: cluster.password };
  }
  if (sentinel !== undefined) {
    return {
      kind: 'sentinel',
      sentinels: hosts('sentinel.sentinels', sentinel.sentinels, 26379),
      name: sentinel.name,
      username: sentinel.username,
      password: sentinel.password,
      sentinelUsername: sentinel.sentinelUsername,
      sentinelPassword: sentinel.sentinelPassword,
    };
  }
  try {
    return parseRedisUrl(url ?? '');
  } catch (e) {
    throw invalidOption('url', `${(e as Error).message}, got ${JSON.stringify(url?.replace(/\/\/[^@/]*@/, '//***@'))}`);
  }
}

/** Options of `redisCluster`; see docs/options.md. */
export interface RedisClusterOptions extends Static<typeof REDIS_CLUSTER_OPTIONS> {}

/** redisCluster options once resolved: defaults filled in, frozen. */
export type ResolvedRedisClusterOptions = Resolved<typeof REDIS_CLUSTER_OPTION_PROPERTIES>;
