/**
 * Options of `redisCluster`.
 */
import type { Static } from '@sinclair/typebox';
import { invalidOption } from '../errors.js';
import { anyString, defineOptions, flag, nonEmptyString, positiveNumber, type Resolved } from '../options/schema.js';

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
  url: nonEmptyString({ required: true, description: 'Redis URL, e.g. `redis://127.0.0.1:6379`.' }),
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
  prefix: nonEmptyString({ default: 'weft', description: 'Key and channel prefix, so several clusters can share one Redis.' }),
  ttlMs: positiveNumber({ unit: 'ms', default: 6_000, description: 'Node record TTL.' }),
  heartbeatMs: positiveNumber({
    unit: 'ms',
    default: 2_000,
    description:
      'Record refresh and view reload, and how often session directory replicas compare their version with Redis; at most `ttlMs / 2`. A dead node leaves every view within `ttlMs + heartbeatMs`.',
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

/** Options of `redisCluster`; see docs/options.md. */
export interface RedisClusterOptions extends Static<typeof REDIS_CLUSTER_OPTIONS> {}

/** redisCluster options once resolved: defaults filled in, frozen. */
export type ResolvedRedisClusterOptions = Resolved<typeof REDIS_CLUSTER_OPTION_PROPERTIES>;
