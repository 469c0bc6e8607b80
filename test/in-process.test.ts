/**
 * Nodes of one process talk over direct links (directInProcess, the default):
 * no TCP link carries them, yet callers see exactly what a remote call gives.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type, createHost, defineContract, implement, isWeftError, memoryCluster, param } from '../src/index.js';
import { IChatAppService, ITestAppService } from './fixtures/services.js';
import { connectWs, httpJson, quietLogger, rejection } from './helpers/index.js';
import { startStack } from './fixtures/stack.js';

const IStoreAppService = defineContract({
  name: 'IStoreAppService',
  methods: {
    keep: { params: [param('item', Type.Object({ tags: Type.Array(Type.String()) }))], returns: Type.Object({ tags: Type.Array(Type.String()) }) },
  },
});

test('direct calls cross no TCP link and still copy arguments and results as the wire would', async (t) => {
  const cluster = memoryCluster();
  const kept: { tags: string[] }[] = [];
  const store = await createHost({
    cluster,
    logger: quietLogger(),
    services: [implement(IStoreAppService, { keep: (item) => (kept.push(item), item) })],
  }).start();
  t.after(() => store.stop());
  const caller = await createHost({ cluster, logger: quietLogger() }).start();
  t.after(() => caller.stop());

  const item = { tags: ['a'] };
  const result = await caller.proxy(IStoreAppService).keep(item);
  assert.deepEqual(result, { tags: ['a'] });
  item.tags.push('changed by the caller');
  result.tags.push('changed by the caller too');
  assert.deepEqual(kept[0], { tags: ['a'] }, 'the service holds its own copy');
  const stats = store.stats();
  assert.equal(stats.framesReceived['Call'], 1, 'the call came as a frame, through the one router');
  assert.deepEqual(stats.links, { tcp: 0, direct: 1 }, 'over a direct link, no TCP link');
});

test('direct calls give errors in their wire form: code and message, no cause', async (t) => {
  const stack = await startStack(t);
  const api = stack.hosts[0]!.proxy(ITestAppService);
  const failure = await api.throwPlain().then(
    () => assert.fail('should fail'),
    (e: unknown) => e,
  );
  assert.ok(isWeftError(failure, 'ServerError'));
  assert.equal((failure as Error).cause, undefined);
  assert.doesNotMatch(String((failure as Error).message), /secret internal detail/);
  const invalid = await api.add('x' as unknown as number, 1.5).then(
    () => assert.fail('should fail'),
    (e: unknown) => e,
  );
  assert.ok(isWeftError(invalid, 'ValidateError'));
  assert.deepEqual(invalid.validErrors?.map((v) => v.memberNames[0]).sort(), ['a', 'b']);
});

test('a gateway and a host in one process push and route over a direct link, no TCP link', async (t) => {
  const stack = await startStack(t);
  const a = await connectWs(`${stack.wsUrl}/api/chat?businessId=direct`);
  const b = await connectWs(`${stack.wsUrl}/api/chat?businessId=direct`);
  t.after(() => [a, b].forEach((c) => c.ws.close()));
  const res = await httpJson(`${stack.url}/api/chat/push?businessId=direct&msg=hi`);
  assert.equal(res.status, 200);
  assert.equal(res.body.result, 2);
  assert.equal(await stack.hosts[0]!.proxy(IChatAppService).push('direct', 'again'), 2);
  await a.waitFor(2);
  await b.waitFor(2);
  assert.deepEqual(a.messages, ['hi', 'again']);
  const gateway = stack.gateway.stats();
  assert.equal(gateway.framesReceived['PushBusiness'], 2, 'pushes came as frames, through the one router');
  assert.equal(gateway.links.tcp, 0, 'the gateway opened no TCP link');
  assert.equal(stack.hosts[0]!.stats().links.tcp, 0, 'the host opened no TCP link');
});

const ILoopyAppService = defineContract({
  name: 'ILoopyAppService',
  methods: {
    cycle: { params: [], returns: Type.Any() },
    take: { params: [param('value', Type.Any())], returns: Type.Boolean() },
  },
});

for (const directInProcess of [true, false]) {
  test(`a result that cannot be serialized is a ServerError, and arguments that cannot be are a BadRequest (${directInProcess ? 'direct' : 'over a link'})`, async (t) => {
    const cluster = memoryCluster();
    const server = await createHost({
      cluster,
      logger: quietLogger(),
      directInProcess,
      services: [
        implement(ILoopyAppService, {
          cycle: () => {
            const o: Record<string, unknown> = { a: 1 };
            o['self'] = o;
            return o;
          },
          take: () => true,
        }),
      ],
    }).start();
    t.after(() => server.stop());
    const caller = await createHost({ cluster, logger: quietLogger(), directInProcess }).start();
    t.after(() => caller.stop());
    const api = caller.proxy(ILoopyAppService, { timeoutMs: 2000 });
    const result = await api.cycle().then(
      () => assert.fail('should fail'),
      (e: unknown) => e,
    );
    assert.ok(isWeftError(result, 'ServerError'), String(result));
    const circular: Record<string, unknown> = {};
    circular['me'] = circular;
    const args = await api.take(circular).then(
      () => assert.fail('should fail'),
      (e: unknown) => e,
    );
    assert.ok(isWeftError(args, 'BadRequest'), String(args));
    assert.equal(await api.take({ fine: true }), true, 'the next call works');
  });
}

test('a direct call is held to maxFrameBytes, as one over a link is', async (t) => {
  for (const directInProcess of [true, false]) {
    const cluster = memoryCluster();
    const store = await createHost({
      cluster,
      directInProcess,
      logger: quietLogger(),
      maxFrameBytes: 64 * 1024,
      services: [implement(IStoreAppService, { keep: (item) => item })],
    }).start();
    t.after(() => store.stop());
    const caller = await createHost({ cluster, directInProcess, logger: quietLogger(), maxFrameBytes: 64 * 1024 }).start();
    t.after(() => caller.stop());
    const error = await rejection(caller.proxy(IStoreAppService).keep({ tags: ['x'.repeat(100 * 1024)] }));
    assert.equal(error.code, 'ProtocolError', `directInProcess: ${directInProcess}`);
    assert.deepEqual(await caller.proxy(IStoreAppService).keep({ tags: ['small'] }), { tags: ['small'] }, 'and the next call goes through');
  }
});
