/**
 * No cluster is open by default: redisCluster refuses to be built without a
 * real secret unless told `insecure: true`, and then every node that joins
 * says so in its log. The memory cluster makes its own random secret.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createGateway, createHost, isWeftError, memoryCluster, redisCluster } from '../src/index.js';
import { dropPrefix } from './fixtures/node-control.js';
import { ITestAppService, testService } from './fixtures/services.js';
import { REDIS_URL, captureLogger, redisTest, testSecret, uniquePrefix } from './helpers/index.js';

const URL_ = 'redis://127.0.0.1:6379';

/** The InvalidOption that building a cluster with `options` throws. */
function refusal(options: Record<string, unknown>): Error {
  try {
    // Plain JavaScript may pass anything, `secret: undefined` included (an unset environment variable).
    redisCluster({ url: URL_, ...options });
  } catch (e) {
    assert.ok(isWeftError(e, 'InvalidOption'), `InvalidOption, got ${String(e)}`);
    return e;
  }
  return assert.fail(`redisCluster(${JSON.stringify(options)}) was built`);
}

test('redisCluster without a secret refuses to be built, names the option secret and says how to make one', () => {
  for (const options of [{}, { secret: undefined }, { secret: '' }]) {
    const error = refusal(options);
    assert.match(error.message, /^option "secret" is missing/);
    assert.match(error.message, /openssl rand -base64 32/);
    assert.match(error.message, /insecure: true/);
  }
});

test('redisCluster refuses a secret shorter than 16 bytes', () => {
  assert.match(refusal({ secret: 'fifteen-bytes!!' }).message, /^option "secret" is too short: 15 bytes, at least 16/);
  // Bytes, not characters: eight two-byte characters are enough.
  assert.equal(redisCluster({ url: URL_, secret: 'éééééééé' }).kind, 'redis');
});

test('redisCluster refuses the example secrets of documentation, whatever their case or spaces', () => {
  for (const secret of ['change-me', 'CHANGE-ME', 'secret', ' s3cret ', 'changeme', 'password', 'change-me-please', 'supersecretpassword']) {
    assert.match(refusal({ secret }).message, /^option "secret" (is an example value|is too short)/, secret);
  }
  // 16 bytes and above, an example one, is refused as an example, not for its length.
  assert.match(refusal({ secret: 'change-me-please' }).message, /is an example value/);
});

test('redisCluster takes a random secret of 16 bytes or more, and never shows it', () => {
  const secret = testSecret();
  const cluster = redisCluster({ url: URL_, secret });
  assert.equal(cluster.secret, secret);
  // A refusal never quotes the secret it refused.
  assert.doesNotMatch(refusal({ secret: 'hunter2' }).message, /hunter2/);
});

test('the memory cluster needs no secret: each makes a random one of its own', () => {
  const a = memoryCluster();
  const b = memoryCluster();
  assert.notEqual(a.secret, b.secret);
  assert.ok(Buffer.from(a.secret, 'base64url').length >= 32);
});

test('insecure: true runs a cluster without a real secret, and every node that joins it warns', await redisTest(), async (t) => {
  const prefix = uniquePrefix();
  t.after(() => dropPrefix(prefix));
  const cluster = redisCluster({ url: REDIS_URL, prefix, insecure: true, ttlMs: 3000, heartbeatMs: 1000 });
  const capture = captureLogger();
  const host = await createHost({ cluster, logger: capture.logger, name: 'h', services: [testService(() => 'h')] }).start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster, logger: capture.logger, http: { host: '127.0.0.1', port: 0 } }).start();
  t.after(() => gateway.stop());
  // Another node of the same process, later: it warns too (not once per process).
  const caller = await createHost({ cluster, logger: capture.logger, name: 'c', directInProcess: false }).start();
  t.after(() => caller.stop());
  assert.equal(await caller.proxy(ITestAppService).echo('open cluster'), 'open cluster');

  const warnings = capture.lines().filter((l) => l['level'] === 40 && /redisCluster is insecure/.test(String(l['msg'])));
  assert.deepEqual(warnings.map((l) => l['node']).sort(), [caller.nodeId, gateway.nodeId, host.nodeId].sort());
  assert.match(String(warnings[0]!['msg']), /secret is missing/);
});

test('insecure: true with a weak secret is allowed and warned about; with a real one, the warning says to remove insecure', () => {
  const capture = captureLogger();
  redisCluster({ url: URL_, secret: 'change-me', insecure: true }).join('n1', capture.logger);
  redisCluster({ url: URL_, secret: testSecret(), insecure: true }).join('n2', capture.logger);
  const [weak, strong] = capture.lines().map((l) => String(l['msg']));
  assert.match(weak!, /is insecure: its secret is an example value/);
  assert.match(strong!, /remove "insecure"/);
});
