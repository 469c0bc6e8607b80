/**
 * Where a Redis cluster's Redis is: the URL forms (one server, Cluster,
 * Sentinel), the `cluster` and `sentinel` options, and the key layout's hash
 * tags (every key one command touches shares a slot on a Cluster).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isWeftError, redisCluster } from '../src/index.js';
import { redisTargetOf } from '../src/node/redis-cluster-options.js';
import { directoryUnit, registryKeys, serviceKeys } from '../src/redis/keys.js';
import { parseRedisUrl } from '../src/redis/redis-target.js';
import { testSecret } from './helpers/index.js';

test('reads one server, a Cluster and a Sentinel group from their URLs', () => {
  assert.deepEqual(parseRedisUrl('redis://127.0.0.1:6379/2'), { kind: 'standalone', url: 'redis://127.0.0.1:6379/2' });
  assert.deepEqual(parseRedisUrl('rediss://redis.example.com'), { kind: 'standalone', url: 'rediss://redis.example.com' });
  assert.deepEqual(parseRedisUrl('redis-cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002'), {
    kind: 'cluster',
    nodes: [
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 6379 },
      { host: '::1', port: 7002 },
    ],
    username: undefined,
    password: undefined,
  });
  assert.deepEqual(parseRedisUrl('redis-cluster://:p%40ss@h1:7000'), {
    kind: 'cluster',
    nodes: [{ host: 'h1', port: 7000 }],
    username: undefined,
    password: 'p@ss',
  });
  assert.deepEqual(parseRedisUrl('redis-sentinel://app:pw@s1:26380,s2/mymaster?sentinelPassword=spw'), {
    kind: 'sentinel',
    sentinels: [
      { host: 's1', port: 26380 },
      { host: 's2', port: 26379 },
    ],
    name: 'mymaster',
    username: 'app',
    password: 'pw',
    sentinelUsername: undefined,
    sentinelPassword: 'spw',
  });
});

test('refuses a URL it cannot use, saying why and naming url', () => {
  const refused = (url: string, why: RegExp): void => {
    assert.throws(
      () => redisCluster({ url, secret: testSecret() }),
      (e: unknown) => isWeftError(e, 'InvalidOption') && e.message.includes('url') && why.test(e.message),
      url,
    );
  };
  refused('http://127.0.0.1:6379', /redis-cluster:\/\/ or redis-sentinel:\/\//);
  refused('redis-sentinel://127.0.0.1:26379', /master-name/);
  refused('redis-cluster://127.0.0.1:7000/0', /no path/);
  refused('redis-cluster://', /no host/);
  refused('redis-cluster://h1:70000', /valid port/);
  // A password in a refused URL is not repeated in the message.
  assert.throws(
    () => redisCluster({ url: 'redis-sentinel://user:hunter2@s1:26379', secret: testSecret() }),
    (e: unknown) => isWeftError(e, 'InvalidOption') && !e.message.includes('hunter2'),
  );
});

test('takes one of url, cluster and sentinel, and a prefix without braces', () => {
  const secret = testSecret();
  assert.equal(redisCluster({ cluster: { nodes: ['127.0.0.1:7000'] }, secret }).kind, 'redis');
  assert.equal(redisCluster({ sentinel: { sentinels: ['127.0.0.1:26379'], name: 'm' }, secret }).kind, 'redis');
  assert.deepEqual(
    redisTargetOf({ url: undefined, cluster: { nodes: ['a:1', 'b'], username: undefined, password: undefined }, sentinel: undefined }),
    {
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 1 },
        { host: 'b', port: 6379 },
      ],
      username: undefined,
      password: undefined,
    },
  );
  const invalid = (options: Record<string, unknown>, name: string): void => {
    assert.throws(
      () => redisCluster({ secret, ...options }),
      (e: unknown) => isWeftError(e, 'InvalidOption') && e.message.includes(name),
      JSON.stringify(options),
    );
  };
  invalid({}, 'url');
  invalid({ url: 'redis://127.0.0.1:6379', cluster: { nodes: ['127.0.0.1:7000'] } }, 'cluster');
  invalid({ cluster: { nodes: [] } }, 'cluster.nodes');
  invalid({ cluster: { nodes: ['h:x'] } }, 'cluster.nodes');
  invalid({ sentinel: { sentinels: ['s1'] } }, 'sentinel.name');
  invalid({ url: 'redis://127.0.0.1:6379', prefix: 'a{b}' }, 'prefix');
});

test('gives the keys that travel together one hash tag', () => {
  const tagOf = (key: string): string => {
    const open = key.indexOf('{');
    const close = key.indexOf('}', open + 1);
    return key.slice(open + 1, close);
  };
  const r = registryKeys('shop');
  for (const key of [r.alive, r.versions, r.changes, r.node('gw-1'), r.channel, r.gatewayServices('gw-1')]) assert.equal(tagOf(key), 'shop', key);
  const s = serviceKeys('shop', 'IChatAppService');
  for (const key of [s.sessions, s.gateway('gw-1'), s.channel]) assert.equal(tagOf(key), 'shop:IChatAppService', key);
  assert.notEqual(tagOf(serviceKeys('shop', 'IOther').sessions), tagOf(s.sessions), 'each service has a slot of its own');
  const shard = serviceKeys('shop', directoryUnit('IChatAppService', 7));
  for (const key of [shard.sessions, shard.byBusiness, shard.gateway('gw-1'), shard.channel, shard.version, shard.epoch])
    assert.equal(tagOf(key), 'shop:IChatAppService#7', key);
  assert.notEqual(
    tagOf(serviceKeys('shop', directoryUnit('IChatAppService', 8)).sessions),
    tagOf(shard.sessions),
    'each shard has a slot of its own',
  );
});
