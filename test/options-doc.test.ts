/**
 * docs/options.md against the option declarations: its tables are exactly
 * the ones generated from them (so an option cannot go undocumented), and
 * the constructors refuse unknown options and bad values, naming the option
 * (nothing is started here).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { createGateway, createHost, redisCluster, type RedisClusterOptions } from '../src/index.js';
import { markdownTables, optionsDocTables } from '../src/options-doc.js';
import { quietLogger, testSecret } from './helpers/index.js';

const DOC = readFileSync(new URL('../../docs/options.md', import.meta.url), 'utf8');
const REDIS = 'redis://127.0.0.1:6379';

/** Runs `build` and returns the InvalidOption error it must throw. */
function refusal(build: () => unknown): Error & { code: string } {
  let thrown: unknown;
  try {
    build();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof Error, 'the constructor throws');
  const error = thrown as Error & { code: string };
  assert.equal(error.code, 'InvalidOption', error.message);
  return error;
}

function assertRefused(build: () => unknown, option: string): void {
  const error = refusal(build);
  assert.ok(error.message.includes(`"${option}"`), `"${error.message}" names ${option}`);
}

const host = (o: Record<string, unknown>) => () => createHost({ logger: quietLogger(), ...o });
const gateway = (o: Record<string, unknown>) => () => createGateway({ logger: quietLogger(), ...o });
const redis = (o: Record<string, unknown>) => () => redisCluster({ url: REDIS, secret: testSecret(), ...o });

test('docs/options.md holds exactly the tables generated from the option declarations', () => {
  const documented = markdownTables(DOC).map(({ heading, table }) => ({ heading, table }));
  // On failure: npm run docs:options rewrites the tables.
  assert.deepEqual(documented, optionsDocTables());
});

test('redisCluster takes every option it documents', () => {
  const cluster = redisCluster({ url: REDIS, secret: testSecret(), insecure: false, prefix: 'p', ttlMs: 9000, heartbeatMs: 3000 });
  assert.equal(cluster.kind, 'redis');
  assert.equal(cluster.nodeExpiryMs, 12000);
});

test('createHost refuses an unknown option and names it', () => {
  assertRefused(host({ maxConcurentCalls: 10 }), 'maxConcurentCalls');
  assertRefused(host({ http: { port: 5000 } }), 'http');
});

test('createHost refuses bad values and names the option', () => {
  assertRefused(host({ callTimeoutMs: -1 }), 'callTimeoutMs');
  assertRefused(host({ maxAttempts: 1.5 }), 'maxAttempts');
  assertRefused(host({ maxConcurrentCalls: 0 }), 'maxConcurrentCalls');
  assertRefused(host({ stopTimeoutMs: 'soon' }), 'stopTimeoutMs');
  assertRefused(host({ listen: { port: 70000 } }), 'listen.port');
  assertRefused(host({ listen: { host: '' } }), 'listen.host');
  assertRefused(host({ name: '' }), 'name');
  assertRefused(host({ advertiseHost: '' }), 'advertiseHost');
  assertRefused(host({ breaker: { failureThreshold: 0 } }), 'breaker.failureThreshold');
  assertRefused(host({ breaker: { resetAfterMs: -5 } }), 'breaker.resetAfterMs');
  assertRefused(host({ maxFrameBytes: 0 }), 'maxFrameBytes');
  assertRefused(host({ connectTimeoutMs: Number.NaN }), 'connectTimeoutMs');
  assertRefused(host({ linkPingIntervalMs: Number.POSITIVE_INFINITY }), 'linkPingIntervalMs');
  assertRefused(host({ tls: { server: {} } }), 'tls');
  assertRefused(host({ services: 'greeter' }), 'services');
  assertRefused(host({ services: [{}] }), 'services');
});

test('createGateway refuses an unknown option, top-level or under websocket, and names it', () => {
  assertRefused(gateway({ port: 5000 }), 'port');
  assertRefused(gateway({ maxConcurrentCalls: 5 }), 'maxConcurrentCalls');
  assertRefused(gateway({ websocket: { maxMesageBytes: 10 } }), 'websocket.maxMesageBytes');
});

test('createGateway refuses bad values and names the option', () => {
  assertRefused(gateway({ http: { port: -1 } }), 'http.port');
  assertRefused(gateway({ http: { host: '' } }), 'http.host');
  assertRefused(gateway({ maxBodyBytes: 0 }), 'maxBodyBytes');
  assertRefused(gateway({ forwardHeaders: 'authorization' }), 'forwardHeaders');
  assertRefused(gateway({ forwardHeaders: ['authorization', 42] }), 'forwardHeaders');
  assertRefused(gateway({ authenticate: 'yes' }), 'authenticate');
  assertRefused(gateway({ retryAfterSeconds: 0.5 }), 'retryAfterSeconds');
  assertRefused(gateway({ stopTimeoutMs: 0 }), 'stopTimeoutMs');
  assertRefused(gateway({ websocket: { maxMessageBytes: 0 } }), 'websocket.maxMessageBytes');
  // Must leave room in a link frame.
  assertRefused(gateway({ maxFrameBytes: 65536, websocket: { maxMessageBytes: 65536 } }), 'websocket.maxMessageBytes');
  assertRefused(gateway({ websocket: { maxBufferedBytes: -1 } }), 'websocket.maxBufferedBytes');
  assertRefused(gateway({ websocket: { pingIntervalMs: 0 } }), 'websocket.pingIntervalMs');
  assertRefused(gateway({ websocket: { sessionOpenTimeoutMs: 'later' } }), 'websocket.sessionOpenTimeoutMs');
  assertRefused(gateway({ demo: { wsPath: '', echoPath: '/api/wstest/echo' } }), 'demo.wsPath');
  assertRefused(gateway({ demo: { wsPath: '/api/wstest' } }), 'demo.echoPath');
});

test('auth.jwt needs exactly one key source, a long enough secret, algorithms its key can verify and a safe JWKS URL', () => {
  const secret = 'a-secret-of-at-least-thirty-two-bytes';
  const jwt = (o: Record<string, unknown>) => gateway({ auth: { jwt: o } });
  assertRefused(jwt({}), 'auth.jwt');
  assertRefused(jwt({ secret, jwksUrl: 'https://idp.test/jwks' }), 'auth.jwt');
  assertRefused(jwt({ secret: 'short' }), 'auth.jwt.secret');
  assertRefused(jwt({ secret, algorithms: ['RS256'] }), 'auth.jwt.algorithms');
  assertRefused(jwt({ secret, algorithms: [] }), 'auth.jwt.algorithms');
  assertRefused(jwt({ jwksUrl: 'https://idp.test/jwks', algorithms: ['HS256'] }), 'auth.jwt.algorithms');
  assertRefused(jwt({ jwksUrl: 'http://idp.test/jwks' }), 'auth.jwt.jwksUrl');
  assertRefused(jwt({ jwksUrl: 'not a url' }), 'auth.jwt.jwksUrl');
  assertRefused(jwt({ publicKey: 'not a pem' }), 'auth.jwt.publicKey');
  assertRefused(jwt({ secret, clockToleranceSeconds: -1 }), 'auth.jwt.clockToleranceSeconds');
  assertRefused(jwt({ secret, businessIdClaim: '' }), 'auth.jwt.businessIdClaim');
  assertRefused(jwt({ secret, alg: 'HS256' }), 'auth.jwt.alg');
  assertRefused(gateway({ authTimeoutMs: 0 }), 'authTimeoutMs');
  // Demo tokens need a secret to be signed with; the identity header is never the client's.
  assertRefused(gateway({ demo: { wsPath: '/a', echoPath: '/b', issueTokens: true } }), 'demo.issueTokens');
  assertRefused(gateway({ forwardHeaders: ['X-Weft-Identity'] }), 'forwardHeaders');
  // Good ones are taken, plain http only to a loopback address.
  gateway({ auth: { jwt: { secret } } })();
  gateway({ auth: { jwt: { jwksUrl: 'http://127.0.0.1:9/jwks' } } })();
  gateway({
    auth: { jwt: { secret, algorithms: ['HS512'], clockToleranceSeconds: 0 } },
    demo: { wsPath: '/a', echoPath: '/b', issueTokens: true },
  })();
});

test('nested option objects refuse unknown keys too, so a typo in http or listen is not silently ignored', () => {
  assertRefused(gateway({ http: { prot: 5000 } }), 'http.prot');
  assertRefused(host({ listen: { prot: 7000 } }), 'listen.prot');
  assertRefused(host({ breaker: { threshold: 3 } }), 'breaker.threshold');
  assertRefused(gateway({ openApi: { titel: 'x' } }), 'openApi.titel');
  assertRefused(gateway({ demo: { wsPath: '/a', echoPath: '/b', title: 'x' } }), 'demo.title');
});

test('redisCluster refuses unknown options and bad values and names the option', () => {
  assertRefused(() => redisCluster({ url: REDIS, ttl: 5000 } as unknown as RedisClusterOptions), 'ttl');
  assertRefused(() => redisCluster({ secret: testSecret() }), 'url');
  assertRefused(redis({ url: '' }), 'url');
  assertRefused(redis({ prefix: '' }), 'prefix');
  assertRefused(redis({ ttlMs: 0 }), 'ttlMs');
  assertRefused(redis({ heartbeatMs: -1 }), 'heartbeatMs');
  // The heartbeat must be at most half the TTL.
  assertRefused(redis({ ttlMs: 6000, heartbeatMs: 4000 }), 'heartbeatMs');
  assertRefused(redis({ secret: 42 }), 'secret');
  assertRefused(redis({ insecure: 'yes' }), 'insecure');
});
