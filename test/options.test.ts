/**
 * Option declarations (src/options/): one schema per options object gives
 * the checks, the defaults, the frozen result and the docs table.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS, createGateway, createHost, isWeftError, type GatewayOptions, type HostOptions } from '../src/index.js';
import { optionsTable } from '../src/options-doc.js';
import { GATEWAY_OPTIONS } from '../src/gateway/gateway-options.js';
import { HOST_OPTIONS } from '../src/host/host-options.js';
import { NODE_OPTIONS } from '../src/node/node-options.js';
import { REDIS_CLUSTER_OPTIONS } from '../src/node/redis-cluster-options.js';
import {
  custom,
  defineOptions,
  nonEmptyString,
  port,
  positiveInteger,
  positiveNumber,
  record,
  resolveOptions,
  section,
  stringList,
} from '../src/options/schema.js';
import { quietLogger, testSecret } from './helpers/index.js';

/** The message of the InvalidOption error `build` must throw. */
function refusal(build: () => unknown): string {
  try {
    build();
  } catch (error) {
    assert.ok(isWeftError(error, 'InvalidOption'), String(error));
    return error.message;
  }
  assert.fail('no error thrown');
}

test('a value of the wrong type is refused with the path of the option and what it must be', () => {
  assert.equal(
    refusal(() => createGateway({ logger: quietLogger(), websocket: { maxMessageBytes: -1 } })),
    'option "websocket.maxMessageBytes" must be a positive integer, got -1',
  );
  assert.equal(
    refusal(() => resolveOptions(NODE_OPTIONS, { listen: { port: '7000' } }, 'createHost')),
    'option "listen.port" must be a port number 0-65535, got "7000"',
  );
  assert.equal(
    refusal(() => resolveOptions(GATEWAY_OPTIONS, { forwardHeaders: ['authorization', 42] }, 'createGateway')),
    'option "forwardHeaders" must be an array of strings, got ["authorization",42]',
  );
  assert.equal(
    refusal(() => resolveOptions(NODE_OPTIONS, { callTimeoutMs: Number.NaN }, 'createHost')),
    'option "callTimeoutMs" must be a positive number, got NaN',
  );
  assert.equal(
    refusal(() => resolveOptions(NODE_OPTIONS, { breaker: 5 }, 'createHost')),
    'option "breaker" must be an object, got 5',
  );
});

test('values JSON cannot describe (cluster, logger, functions, modules) are checked too', () => {
  assert.match(
    refusal(() => resolveOptions(NODE_OPTIONS, { cluster: {} }, 'createHost')),
    /^option "cluster" must be a Cluster/,
  );
  assert.match(
    refusal(() => resolveOptions(NODE_OPTIONS, { logger: console.log }, 'createHost')),
    /^option "logger" must be a pino Logger, got a function/,
  );
  assert.match(
    refusal(() => resolveOptions(NODE_OPTIONS, { tls: { server: {} } }, 'createHost')),
    /^option "tls" must be an object with both "server" and "client"/,
  );
  assert.match(
    refusal(() => resolveOptions(GATEWAY_OPTIONS, { authenticate: 'yes' }, 'createGateway')),
    /^option "authenticate" must be a function/,
  );
  assert.match(
    refusal(() => resolveOptions(HOST_OPTIONS, { modules: [{ name: 'x' }] }, 'createHost')),
    /^option "modules" must be an array of modules/,
  );
  assert.match(
    refusal(() => resolveOptions(NODE_OPTIONS, { directInProcess: 'yes' }, 'createHost')),
    /^option "directInProcess" must be true or false/,
  );
});

test('an unknown key is refused at any depth, named by its path', () => {
  assert.equal(
    refusal(() => createHost({ logger: quietLogger(), maxConcurentCalls: 1 } as HostOptions)),
    'option "maxConcurentCalls" is not an option of createHost',
  );
  assert.equal(
    refusal(() => createGateway({ logger: quietLogger(), websocket: { maxMesageBytes: 10 } } as GatewayOptions)),
    'option "websocket.maxMesageBytes" is not an option of createGateway websocket',
  );
  assert.equal(
    refusal(() => resolveOptions(GATEWAY_OPTIONS, { demo: { wsPath: '/a', echoPath: '/b', titel: 'x' } }, 'createGateway')),
    'option "demo.titel" is not an option of createGateway demo',
  );
});

test('a required option that is missing is refused, also inside an optional object', () => {
  assert.equal(
    refusal(() => resolveOptions(REDIS_CLUSTER_OPTIONS, { cluster: {} }, 'redisCluster')),
    'option "cluster.nodes" is required: an array of strings',
  );
  // One of url, cluster, sentinel: checked across options, with its own message.
  assert.match(
    refusal(() => resolveOptions(REDIS_CLUSTER_OPTIONS, {}, 'redisCluster')),
    /^option "url" is required: say where Redis is/,
  );
  assert.equal(
    refusal(() => resolveOptions(GATEWAY_OPTIONS, { demo: { wsPath: '/a' } }, 'createGateway')),
    'option "demo.echoPath" is required: a non-empty string',
  );
});

test('options not given get their defaults, and an option given as undefined counts as not given', () => {
  const gateway = resolveOptions(GATEWAY_OPTIONS, { callTimeoutMs: undefined, websocket: { pingIntervalMs: 250 } }, 'createGateway');
  assert.equal(gateway.callTimeoutMs, DEFAULTS.callTimeoutMs);
  assert.deepEqual(gateway.listen, { host: '127.0.0.1', port: 0 });
  assert.deepEqual(gateway.http, { host: DEFAULTS.httpHost, port: DEFAULTS.httpPort });
  assert.deepEqual(gateway.websocket, {
    maxMessageBytes: DEFAULTS.maxMessageBytes,
    maxBufferedBytes: DEFAULTS.maxBufferedBytes,
    pingIntervalMs: 250,
    sessionOpenTimeoutMs: DEFAULTS.sessionOpenTimeoutMs,
    maxQueuedMessages: DEFAULTS.maxQueuedMessages,
    maxHandshakesPerIpPerSecond: DEFAULTS.maxHandshakesPerIpPerSecond,
    maxSessionsPerIp: DEFAULTS.maxSessionsPerIp,
    maxSessionsPerBusinessId: DEFAULTS.maxSessionsPerBusinessId,
    maxRoomsPerSession: DEFAULTS.maxRoomsPerSession,
    maxRoomNameLength: DEFAULTS.maxRoomNameLength,
  });
  assert.deepEqual(gateway.forwardHeaders, DEFAULTS.forwardHeaders);
  assert.deepEqual(gateway.openApi, { title: 'weft gateway', version: '1.0.0' });
  assert.equal(gateway.directInProcess, true);
  // No default: absent, for the constructor to fill in at run time (the role, a default logger, ...).
  assert.equal(gateway.name, undefined);
  assert.equal(gateway.logger, undefined);
  assert.equal(gateway.demo, undefined);
  assert.equal(resolveOptions(GATEWAY_OPTIONS, undefined, 'createGateway').maxBodyBytes, DEFAULTS.maxBodyBytes);
  const host = resolveOptions(HOST_OPTIONS, {}, 'createHost');
  assert.deepEqual([host.services, host.modules, host.maxConcurrentCalls, host.stopTimeoutMs], [[], [], 10_000, 10_000]);
  const secret = testSecret();
  const redis = resolveOptions(REDIS_CLUSTER_OPTIONS, { url: 'redis://127.0.0.1:6379', secret }, 'redisCluster');
  assert.deepEqual(
    { ...redis },
    {
      url: 'redis://127.0.0.1:6379',
      cluster: undefined,
      sentinel: undefined,
      secret,
      insecure: false,
      prefix: 'weft',
      ttlMs: 6_000,
      heartbeatMs: 2_000,
      fullDirectoryReplica: false,
    },
  );
});

test('given values are normalized: header names lower-cased, the node name made safe for ids', () => {
  const options = resolveOptions(GATEWAY_OPTIONS, { forwardHeaders: ['X-Tenant', 'Authorization'], name: 'edge gw/1' }, 'createGateway');
  assert.deepEqual(options.forwardHeaders, ['x-tenant', 'authorization']);
  assert.equal(options.name, 'edge_gw_1');
});

test("resolved options are frozen all the way down, while the caller's own objects stay untouched", () => {
  const logger = quietLogger();
  const headers = ['X-Tenant'];
  const tls = { server: {}, client: {} };
  const options = resolveOptions(GATEWAY_OPTIONS, { logger, tls, forwardHeaders: headers, demo: { wsPath: '/a', echoPath: '/b' } }, 'createGateway');
  for (const inner of [
    options,
    options.listen,
    options.breaker,
    options.http,
    options.websocket,
    options.openApi,
    options.demo,
    options.forwardHeaders,
  ]) {
    assert.ok(Object.isFrozen(inner));
  }
  assert.throws(() => {
    (options.websocket as { maxMessageBytes: number }).maxMessageBytes = 1;
  }, TypeError);
  assert.equal(options.logger, logger);
  assert.equal(options.tls, tls);
  assert.ok(!Object.isFrozen(logger) && !Object.isFrozen(tls) && !Object.isFrozen(headers));
  assert.deepEqual(headers, ['X-Tenant']);
  // Defaults are shared by every resolution, so no resolution can change them.
  assert.ok(Object.isFrozen(resolveOptions(HOST_OPTIONS, {}, 'createHost').services));
  assert.ok(Object.isFrozen(DEFAULTS) && Object.isFrozen(DEFAULTS.forwardHeaders));
});

test('a rule over several options is checked once defaults are in', () => {
  // Default maxFrameBytes is 16 MiB: a 16 MiB message leaves no room for the frame around it.
  assert.equal(
    refusal(() => resolveOptions(GATEWAY_OPTIONS, { websocket: { maxMessageBytes: DEFAULTS.maxFrameBytes } }, 'createGateway')),
    `option "websocket.maxMessageBytes" must leave room in a link frame: at most maxFrameBytes - 4096 = ${DEFAULTS.maxFrameBytes - 4096}, got ${DEFAULTS.maxFrameBytes}`,
  );
  resolveOptions(GATEWAY_OPTIONS, { websocket: { maxMessageBytes: DEFAULTS.maxFrameBytes - 4096 } }, 'createGateway');
  assert.match(
    refusal(() => resolveOptions(REDIS_CLUSTER_OPTIONS, { url: 'redis://x', secret: testSecret(), heartbeatMs: 3001 }, 'redisCluster')),
    /^option "heartbeatMs" must be at most half of ttlMs \(6000 ms\)/,
  );
});

test('DEFAULTS keeps every public key and value', () => {
  assert.deepEqual(
    { ...DEFAULTS },
    {
      listenHost: '127.0.0.1',
      listenPort: 0,
      callTimeoutMs: 5_000,
      maxAttempts: 3,
      breakerFailureThreshold: 5,
      breakerResetAfterMs: 5_000,
      connectTimeoutMs: 2_000,
      backoffInitialMs: 100,
      backoffMaxMs: 5_000,
      handshakeTimeoutMs: 5_000,
      maxHandshakingLinks: 64,
      linkWarningIntervalMs: 1_000,
      linkPingIntervalMs: 5_000,
      maxFrameBytes: 16 * 1024 * 1024,
      maxLinkQueuedBytes: 64 * 1024 * 1024,
      maxConcurrentCalls: 10_000,
      stopTimeoutMs: 10_000,
      registryTtlMs: 6_000,
      registryHeartbeatMs: 2_000,
      redisPrefix: 'weft',
      httpHost: '127.0.0.1',
      httpPort: 5_000,
      maxBodyBytes: 1024 * 1024,
      forwardHeaders: ['authorization', 'accept-language', 'x-request-id', 'traceparent', 'user-agent'],
      maxMessageBytes: 1024 * 1024,
      maxBufferedBytes: 4 * 1024 * 1024,
      wsPingIntervalMs: 10_000,
      sessionOpenTimeoutMs: 5_000,
      maxQueuedMessages: 256,
      maxHandshakesPerIpPerSecond: 50,
      maxSessionsPerIp: 1000,
      maxSessionsPerBusinessId: 100,
      maxRoomsPerSession: 100,
      maxRoomNameLength: 200,
      retryAfterSeconds: 2,
      authTimeoutMs: 5_000,
      pushAckTimeoutMs: 5_000,
      directoryLoadBufferMaxBytes: 8 * 1024 * 1024,
    },
  );
  // Hosts and gateways share the stop timeout default.
  assert.equal(resolveOptions(GATEWAY_OPTIONS, {}, 'createGateway').stopTimeoutMs, DEFAULTS.stopTimeoutMs);
});

test('the docs table of a declaration has a row per option with its type, unit and default', () => {
  const options = defineOptions({
    timeoutMs: positiveNumber({ unit: 'ms', default: 250, description: 'Give up after this long.' }),
    bufferBytes: positiveInteger({ unit: 'bytes', default: 2 * 1024 * 1024, description: 'Room for a | pipe.' }),
    tags: stringList({ default: ['a', 'b'], description: 'Tags.' }),
    server: section({ port: port({ default: 0, defaultNote: 'any free port', description: 'Where to listen.' }) }),
    hook: custom({
      is: (v: unknown): v is () => void => typeof v === 'function',
      docType: '`() => void`',
      expected: 'a function',
      defaultNote: 'none (no hook)',
      description: 'Called once.',
    }),
    page: record({ path: nonEmptyString({ required: true, description: 'Path of the page.' }) }, { description: 'Serve a page.' }),
  });
  assert.equal(
    optionsTable(options.properties),
    [
      '| option | type | default | meaning |',
      '| --- | --- | --- | --- |',
      '| `timeoutMs` | positive number, ms | `250` | Give up after this long. |',
      '| `bufferBytes` | positive integer, bytes | `2097152` (2 MiB) | Room for a \\| pipe. |',
      '| `tags` | string array | `a`, `b` | Tags. |',
      '| `server.port` | integer 0-65535 | `0` (any free port) | Where to listen. |',
      '| `hook` | `() => void` | none (no hook) | Called once. |',
      '| `page` | object | none | Serve a page. |',
      '| `page.path` | string (required) | - | Path of the page. |',
    ].join('\n'),
  );
});
