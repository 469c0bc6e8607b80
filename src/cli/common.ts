/**
 * What the cluster commands of `weft` share: the flags that name a cluster
 * (--redis, --secret-file, --prefix), the cluster they give, and a one-shot
 * read of its registry.
 */
import { WeftError } from '../errors.js';
import { createDefaultLogger } from '../logger.js';
import type { Cluster } from '../node/cluster.js';
import { MIN_SECRET_BYTES, weakSecret } from '../node/redis-cluster-options.js';
import type { NodeRecord } from '../registry/registry.js';
import { readFlagFile, UsageError, type FlagSpec, type ParsedFlags, type PositionalSpec } from './flags.js';

export const REDIS_FLAGS: FlagSpec[] = [
  {
    name: 'redis',
    kind: 'redis-url',
    value: '<url>',
    env: 'WEFT_REDIS_URL',
    help:
      'Redis URL of the cluster: redis://host:port (one server), redis-cluster://host:port,host:port (a Redis Cluster), ' +
      'redis-sentinel://host:port,host:port/<master-name> (Sentinel); without it, a lone in-memory cluster',
  },
  {
    name: 'secret-file',
    kind: 'string',
    value: '<path>',
    help: `file holding the cluster secret (trimmed); otherwise env WEFT_SECRET. Required with --redis: at least ${MIN_SECRET_BYTES} bytes, e.g. openssl rand -base64 32`,
  },
  { name: 'prefix', kind: 'string', value: '<p>', env: 'WEFT_PREFIX', default: 'weft', help: 'Redis key prefix of the cluster' },
];

/** The same flags for a command that needs a Redis cluster (nothing outside one process reaches a memory cluster). */
export const CLUSTER_FLAGS: FlagSpec[] = REDIS_FLAGS.map((f) => (f.name === 'redis' ? { ...f, help: 'Redis URL of the cluster (required)' } : f));

/** A command of `weft` declared in one place: its help comes from this, its flags are parsed before `run`. */
export interface CliCommand {
  readonly synopsis: string;
  readonly about: string;
  readonly flags: FlagSpec[];
  readonly positionals?: readonly PositionalSpec[];
  run(flags: ParsedFlags): Promise<void>;
}

/**
 * The cluster of --redis (or a memory one), with the secret from --secret-file or WEFT_SECRET.
 * The node code loads here, not when weft starts: `weft help` and a command line refused stay quick.
 */
export async function clusterFrom(command: string, flags: ParsedFlags, required: boolean): Promise<Cluster> {
  const { memoryCluster, redisCluster } = await import('../node/cluster.js');
  const url = flags.string('redis');
  if (url === undefined) {
    if (required) throw new UsageError('a Redis URL is needed: --redis <url> or WEFT_REDIS_URL', command);
    return memoryCluster();
  }
  const secretFile = flags.string('secret-file');
  const secret = secretFile === undefined ? process.env['WEFT_SECRET'] : readFlagFile(secretFile.source, secretFile.value, command);
  const weak = weakSecret(secret);
  if (secret === undefined || weak !== undefined) {
    const from = secretFile === undefined ? 'WEFT_SECRET' : `the secret in ${secretFile.value}`;
    throw new WeftError(
      'InvalidOption',
      `${from} ${weak ?? 'is missing'}: a Redis cluster needs a random secret of at least ${MIN_SECRET_BYTES} bytes, the same on every node ` +
        '(e.g. export WEFT_SECRET=$(openssl rand -base64 32), or write one to a file and pass --secret-file <path>)',
    );
  }
  const prefix = flags.string('prefix')?.value;
  return redisCluster({ url: url.value, secret, ...(prefix === undefined ? {} : { prefix }) });
}

/** The records of the cluster's registry now, read without registering anything. */
export async function readRegistry(cluster: Cluster, reader: string): Promise<NodeRecord[]> {
  const logger = createDefaultLogger().child({ node: reader });
  // A reader of the registry: it joins, but never registers a record of its own.
  const { registry, backend } = cluster.join(reader, logger);
  try {
    await registry.start();
  } catch (err) {
    await registry.close().catch(() => undefined);
    if (backend === undefined) throw err;
    throw new WeftError(
      'CommunicationError',
      `cannot reach ${backend.name}: ${backend.lastError() ?? (err as Error).message} (is it running? is the URL right?)`,
      { data: { option: backend.option } },
    );
  }
  const records = [...registry.view().values()];
  await registry.close();
  return records;
}

/** Stops `stop` on SIGINT or SIGTERM, once, then exits 0. */
export function stopOnSignal(stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      void stop().then(() => process.exit(0));
    });
  }
}
