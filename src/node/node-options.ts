/**
 * Options every node takes, hosts and gateways alike: the one declaration
 * their type, defaults, checks and docs come from.
 */
import type { ConnectionOptions, TlsOptions } from 'node:tls';
import type { Static } from '@sinclair/typebox';
import type { Logger } from '../logger.js';
import type { Cluster } from './cluster.js';
import { custom, defineOptions, flag, nonEmptyString, port, positiveInteger, positiveNumber, section, type Resolved } from '../options/schema.js';

/** TLS on links: `server` for the link server, `client` for dialing. */
export interface LinkTlsOptions {
  server: TlsOptions;
  client: ConnectionOptions;
}

/** Hosts and gateways give work in flight the same time on stop. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

function isCluster(value: unknown): value is Cluster {
  return isObject(value) && typeof value['join'] === 'function';
}

function isLogger(value: unknown): value is Logger {
  // A node makes a child logger carrying its id, so that much is needed.
  return isObject(value) && typeof value['child'] === 'function';
}

function isLinkTls(value: unknown): value is LinkTlsOptions {
  return isObject(value) && isObject(value['server']) && isObject(value['client']);
}

export const NODE_OPTION_PROPERTIES = {
  cluster: custom({
    is: isCluster,
    docType: '`Cluster`',
    expected: 'a Cluster (memoryCluster() or redisCluster({...}))',
    defaultNote: "the process's own memory cluster",
    description:
      'Registry, session directory and link secret: `memoryCluster()` or `redisCluster({...})`. Nodes see each other only within one cluster.',
  }),
  name: nonEmptyString({
    defaultNote: 'the role (`host` / `gateway`)',
    // It goes into the node id, which appears in Redis keys and logs.
    normalize: (name: string) => name.replace(/[^\w.-]/g, '_'),
    description: 'Human name; the node id is `<name>-<10 hex digits>` (characters other than letters, digits, `_`, `.`, `-` become `_`).',
  }),
  listen: section({
    host: nonEmptyString({ unit: 'address', default: '127.0.0.1', description: 'Address of the link server (node-to-node TCP).' }),
    port: port({ default: 0, defaultNote: 'any free port', description: 'Port of the link server.' }),
  }),
  advertiseHost: nonEmptyString({
    unit: 'address',
    defaultNote: 'the listen host (a real interface when it is `0.0.0.0` / `::`)',
    description: 'Address other nodes dial, published in the registry.',
  }),
  logger: custom({
    is: isLogger,
    docType: 'pino `Logger`',
    expected: 'a pino Logger',
    defaultNote:
      'stderr at `WEFT_LOG_LEVEL` (default `info`): human lines when stderr is a terminal or `WEFT_LOG_FORMAT=pretty`, JSON lines otherwise or with `WEFT_LOG_FORMAT=json`',
    description: 'Every line carries the node id.',
  }),
  tls: custom({
    is: isLinkTls,
    docType: '`{ server: TlsOptions, client: ConnectionOptions }`',
    expected: 'an object with both "server" and "client" TLS options',
    defaultNote: 'none (plain TCP)',
    description: 'TLS on links; both halves are required.',
  }),
  callTimeoutMs: positiveNumber({
    unit: 'ms',
    default: 5_000,
    description: "Default RPC timeout; a method's `timeoutMs` or a proxy's `CallOptions` override it.",
  }),
  maxAttempts: positiveInteger({
    unit: 'instances',
    default: 3,
    description: 'Instances one call may try (the first included) when the transport fails or the host is `Overloaded` / `Draining`.',
  }),
  breaker: section({
    failureThreshold: positiveInteger({
      unit: 'failures',
      default: 5,
      description:
        "Consecutive calls with no answer (transport failure or timeout) that open an endpoint's circuit; any answer, errors included, closes it.",
    }),
    resetAfterMs: positiveNumber({
      unit: 'ms',
      default: 5_000,
      description:
        'How long a circuit stays open before one trial call (and how long a trial may go without an outcome before another is let through).',
    }),
  }),
  maxFrameBytes: positiveInteger({
    unit: 'bytes',
    default: 16 * 1024 * 1024,
    description: 'Largest frame between nodes; a bigger one closes the link (see [protocol](protocol.md)).',
  }),
  connectTimeoutMs: positiveNumber({ unit: 'ms', default: 2_000, description: 'Dialing a peer gives up after this long.' }),
  linkPingIntervalMs: positiveNumber({
    unit: 'ms',
    default: 5_000,
    description: 'An idle link pings this often; a link silent for 3 intervals is closed.',
  }),
  directInProcess: flag({
    default: true,
    description:
      'Nodes of one process (a gateway and a host started together, the embedded demo) talk over direct links, not loopback TCP: the same frames and router, copied as the wire would copy them, delivered after a turn of the event loop, held to the same limits. `false` sends everything over TCP links.',
  }),
};

export const NODE_OPTIONS = defineOptions(NODE_OPTION_PROPERTIES);

/** Options every node takes (hosts and gateways); see docs/options.md. */
export interface NodeOptions extends Static<typeof NODE_OPTIONS> {}

/** Node options once resolved: defaults filled in, frozen. */
export type ResolvedNodeOptions = Resolved<typeof NODE_OPTION_PROPERTIES>;
