import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Type, createHost, defineContract, implement, memoryCluster, param } from '../src/index.js';
import { CircuitBreakers } from '../src/rpc/circuit-breaker.js';
import { quietLogger } from './helpers/index.js';

test('opens after the threshold, lets one trial through after the reset, and closes on an answer', async () => {
  const breakers = new CircuitBreakers({ failureThreshold: 2, resetAfterMs: 30 });
  breakers.failure('a');
  assert.equal(breakers.allows('a'), true, 'one failure is under the threshold');
  breakers.failure('a');
  assert.equal(breakers.state('a'), 'open');
  assert.equal(breakers.allows('a'), false);
  await sleep(40);
  assert.equal(breakers.allows('a'), true, 'the trial');
  assert.equal(breakers.state('a'), 'half-open');
  assert.equal(breakers.allows('a'), false, 'only one trial at a time');
  breakers.success('a');
  assert.equal(breakers.state('a'), 'closed');
  assert.equal(breakers.allows('b'), true, 'other endpoints are not affected');
});

test('a failed trial opens the circuit again; a trial that never reports does not hold it forever', async () => {
  const breakers = new CircuitBreakers({ failureThreshold: 1, resetAfterMs: 30 });
  breakers.failure('a');
  await sleep(40);
  assert.equal(breakers.allows('a'), true);
  breakers.failure('a');
  assert.equal(breakers.state('a'), 'open');
  await sleep(40);
  assert.equal(breakers.allows('a'), true, 'a trial whose outcome is lost...');
  await sleep(40);
  assert.equal(breakers.allows('a'), true, '...is followed by another trial after the reset');
});

test('a direct in-process call that timed out opens the circuit, and the next answer closes it again', async (t) => {
  const ISlowAppService = defineContract({
    name: 'ISlowAppService',
    methods: { slow: { params: [param('ms', Type.Integer())], returns: Type.Integer() } },
  });
  const cluster = memoryCluster();
  const server = await createHost({
    cluster,
    logger: quietLogger(),
    services: [implement(ISlowAppService, { slow: (ms) => sleep(ms).then(() => ms) })],
  }).start();
  t.after(() => server.stop());
  const client = await createHost({ cluster, logger: quietLogger(), breaker: { failureThreshold: 1, resetAfterMs: 100 } }).start();
  t.after(() => client.stop());
  await assert.rejects(client.proxy(ISlowAppService, { timeoutMs: 50 }).slow(300), { code: 'Timeout' });
  await assert.rejects(client.proxy(ISlowAppService).slow(1), { code: 'CircuitOpen' });
  await sleep(150);
  for (let i = 0; i < 3; i++) assert.equal(await client.proxy(ISlowAppService).slow(1), 1);
});
