/**
 * The gateway's HTTP side against real hosts: the response wrapper, binding
 * from path, query, header and body, every error answer, health, OpenAPI,
 * routes that follow the registry, and the authenticate hook.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import {
  Type,
  WeftError,
  createHost,
  defineContract,
  implement,
  param,
  type AnyContract,
  type Cluster,
  type Host,
  type ServiceBinding,
} from '../src/index.js';
import { PROTOCOL_VERSION } from '../src/protocol/frames.js';
import type { NodeRecord } from '../src/registry/registry.js';
import { getHealth, getOpenApi, httpJson, eventually, quietLogger, rejection } from './helpers/index.js';
import { startStack } from './fixtures/stack.js';
import type { SeenContext } from './fixtures/services.js';

/** Binding sources the test service contract does not cover: a header, and non-string query values. */
const IBindingAppService = defineContract({
  name: 'IBindingAppService',
  methods: {
    tenant: {
      params: [param('tenant', Type.String(), { from: 'header' }), param('item', Type.String())],
      returns: Type.String(),
    },
    describe: {
      params: [param('n', Type.Number()), param('flag', Type.Boolean()), param('count', Type.Integer())],
      returns: Type.Unknown(),
    },
  },
});

const bindingService = implement(IBindingAppService, {
  tenant: (tenant, item) => `${tenant}/${item}`,
  describe: (n, flag, count) => ({ n, flag, count, types: [typeof n, typeof flag, typeof count] }),
});

/** A service that comes and goes during a test. */
const IExtraAppService = defineContract({
  name: 'IExtraAppService',
  methods: { hello: { params: [param('name', Type.String())], returns: Type.String() } },
});

/** A service whose only registered instance is gone. */
const IGhostAppService = defineContract({
  name: 'IGhostAppService',
  methods: { ping: { params: [], returns: Type.String() } },
});

async function startExtraHost(t: TestContext, cluster: Cluster, services: ServiceBinding[]): Promise<Host> {
  const host = createHost({ cluster, logger: quietLogger(), name: 'extra', services });
  await host.start();
  t.after(() => host.stop());
  return host;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Publishes a record for a node that is not there (as a crashed node leaves one behind until it expires). */
async function registerDeadNode(t: TestContext, cluster: Cluster, contract: AnyContract): Promise<void> {
  const { registry } = cluster.join('dead-node', quietLogger());
  await registry.start();
  const record: NodeRecord = {
    nodeId: 'dead-node',
    role: 'host',
    address: { host: '127.0.0.1', port: await closedPort() },
    services: [{ contract: contract.descriptor }],
    startedAt: Date.now(),
    protocol: PROTOCOL_VERSION,
  };
  await registry.register(record);
  t.after(() => registry.close());
}

/** Sends raw bytes of an HTTP request and reads the whole answer (the server closes the connection). */
function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('utf8')));
    // The gateway may reset the connection after answering (it stops reading an oversized body).
    socket.on('error', (err) => {
      if (answer === '') reject(err);
    });
    socket.on('close', () => resolve(answer));
    socket.on('connect', () => socket.write(request));
  });
}

test('a GET route answers with the result in the wrapper', async (t) => {
  const stack = await startStack(t);
  const res = await httpJson(`${stack.url}/api/test/echo?value=hi`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(res.body, { result: 'hi', status: 200, code: 'Success', errorMessage: null, validErrors: null });
});

test('parameters bind from the path, the query with any case, a header and the JSON body', async (t) => {
  const stack = await startStack(t);
  await startExtraHost(t, stack.cluster, [bindingService]);

  const path = await httpJson(`${stack.url}/api/test/abc-1`);
  assert.equal(path.body.result, 'item abc-1');
  const escaped = await httpJson(`${stack.url}/api/test/a%20b%2Fc`);
  assert.equal(escaped.body.result, 'item a b/c');

  const query = await httpJson(`${stack.url}/api/test/echo?VALUE=x`);
  assert.equal(query.status, 200);
  assert.equal(query.body.result, 'x');
  // A path in any case, with empty segments or a trailing slash, names the same static route.
  for (const written of ['/API/Test/Echo', '/api//test/echo', '/api/test/echo/']) {
    const same = await httpJson(`${stack.url}${written}?value=y`);
    assert.equal(same.body.result, 'y', written);
  }
  // Decoded values, and the first of repeated names.
  const decoded = await httpJson(`${stack.url}/api/test/echo?value=a+b%21&value=second`);
  assert.equal(decoded.body.result, 'a b!');

  const header = await httpJson(`${stack.url}/api/binding/tenant?Item=chair`, { headers: { TENANT: 'acme' } });
  assert.equal(header.status, 200, JSON.stringify(header.body));
  assert.equal(header.body.result, 'acme/chair');
  const noHeader = await httpJson(`${stack.url}/api/binding/tenant?item=chair`);
  assert.equal(noHeader.status, 400);
  assert.equal(noHeader.body.code, 'ValidateError');
  assert.deepEqual(
    (noHeader.body.validErrors ?? []).flatMap((v) => v.memberNames),
    ['tenant'],
  );

  const body = await httpJson(`${stack.url}/api/test/item`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'lamp', qty: 2 }),
  });
  assert.equal(body.status, 200);
  assert.deepEqual(body.body.result, { name: 'lamp', qty: 2 });
});

test('numbers and booleans are coerced from query strings', async (t) => {
  const stack = await startStack(t);
  await startExtraHost(t, stack.cluster, [bindingService]);
  const res = await httpJson(`${stack.url}/api/binding/describe?n=1.5&flag=true&count=3`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.result, { n: 1.5, flag: true, count: 3, types: ['number', 'boolean', 'number'] });
  const other = await httpJson(`${stack.url}/api/binding/describe?n=-2&flag=0&count=0`);
  assert.deepEqual(other.body.result, { n: -2, flag: false, count: 0, types: ['number', 'boolean', 'number'] });
  const add = await httpJson(`${stack.url}/api/test?a=2&b=40`, { method: 'POST' });
  assert.equal(add.status, 200);
  assert.equal(add.body.result, 42);
});

test('a malformed JSON body is answered 400 BadRequest', async (t) => {
  const stack = await startStack(t);
  const res = await httpJson(`${stack.url}/api/test/item`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"name": "lamp", qty: ',
  });
  assert.equal(res.status, 400);
  assert.equal(res.body.code, 'BadRequest');
  assert.equal(res.body.result, null);
});

test('a body over maxBodyBytes is answered 413 and the gateway serves the next request', async (t) => {
  const stack = await startStack(t, { gateway: { maxBodyBytes: 256 } });
  const big = JSON.stringify({ name: 'x'.repeat(4000), qty: 1 });
  const declared = await rawHttp(
    stack.gateway.port,
    `POST /api/test/item HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${big.length}\r\n\r\n`,
  );
  assert.match(declared, /^HTTP\/1\.1 413 /);
  assert.match(declared, /"code":"PayloadTooLarge"/);

  // Without a declared length, the limit is enforced while reading.
  const chunked = await rawHttp(
    stack.gateway.port,
    `POST /api/test/item HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n` +
      `${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`,
  );
  assert.match(chunked, /^HTTP\/1\.1 413 /);
  assert.match(chunked, /"code":"PayloadTooLarge"/);

  const next = await httpJson(`${stack.url}/api/test/echo?value=still-here`);
  assert.equal(next.status, 200);
  assert.equal(next.body.result, 'still-here');
  const small = await httpJson(`${stack.url}/api/test/item`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'ok', qty: 1 }),
  });
  assert.equal(small.status, 200);
});

test('an unknown route is answered 404 NotFound', async (t) => {
  const stack = await startStack(t);
  const res = await httpJson(`${stack.url}/api/nothing/here`);
  assert.equal(res.status, 404);
  assert.equal(res.body.code, 'NotFound');
  const wrongVerb = await httpJson(`${stack.url}/api/test/echo?value=x`, { method: 'DELETE' });
  assert.equal(wrongVerb.status, 404);
});

test('a route whose service has no live instance is answered 503 with Retry-After', async (t) => {
  const stack = await startStack(t);
  await registerDeadNode(t, stack.cluster, IGhostAppService);
  await eventually(async () => {
    const doc = await getOpenApi(stack.url);
    return doc.body.paths['/api/ghost/ping'] !== undefined;
  });
  for (let i = 0; i < 2; i++) {
    const res = await httpJson(`${stack.url}/api/ghost/ping`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '2');
    assert.equal(res.body.code, 'ServiceUnavailable');
  }
});

test('a call that times out is answered 504', async (t) => {
  const stack = await startStack(t, { gateway: { callTimeoutMs: 200 }, host: { stopTimeoutMs: 100 } });
  const res = await httpJson(`${stack.url}/api/test/slow?ms=1500`);
  assert.equal(res.status, 504);
  assert.equal(res.body.code, 'Timeout');
  assert.equal(res.body.status, 519);
});

test('a business error is answered 400 with status 1000 and its message', async (t) => {
  const stack = await startStack(t);
  const res = await httpJson(`${stack.url}/api/test/fail?code=BusinessError`);
  assert.equal(res.status, 400);
  assert.deepEqual(res.body, {
    result: null,
    status: 1000,
    code: 'BusinessError',
    errorMessage: 'refused for a business reason',
    validErrors: null,
  });
});

test('invalid arguments are answered 400 with status 1001 and validErrors', async (t) => {
  const stack = await startStack(t);
  const res = await httpJson(`${stack.url}/api/test?a=x&b=1.5`, { method: 'POST' });
  assert.equal(res.status, 400);
  assert.equal(res.body.status, 1001);
  assert.equal(res.body.code, 'ValidateError');
  const fields = (res.body.validErrors ?? []).flatMap((v) => v.memberNames);
  assert.ok(fields.includes('a') && fields.includes('b'), JSON.stringify(res.body.validErrors));

  const item = await httpJson(`${stack.url}/api/test/item`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: '', qty: 0 }),
  });
  assert.equal(item.status, 400);
  const itemFields = (item.body.validErrors ?? []).flatMap((v) => v.memberNames);
  assert.ok(itemFields.includes('item.name') && itemFields.includes('item.qty'), JSON.stringify(item.body.validErrors));
});

test('a plain Error in a service is answered 500 without a stack or file path', async (t) => {
  const stack = await startStack(t);
  const res = await fetch(`${stack.url}/api/test/throwplain`);
  const text = await res.text();
  assert.equal(res.status, 500);
  const body = JSON.parse(text) as { code: string; status: number };
  assert.equal(body.code, 'ServerError');
  assert.equal(body.status, 520);
  assert.doesNotMatch(text, /secret|internal detail|\/srv\/|\.js:\d|\bat \S+ \(/);
});

test('/healthz answers ok with the services it routes', async (t) => {
  const stack = await startStack(t);
  const res = await getHealth(stack.url);
  assert.equal(res.status, 200);
  assert.equal(res.body.status, 'ok');
  assert.equal(res.body.nodeId, stack.gateway.nodeId);
  assert.ok(res.body.services.includes('ITestAppService'));
});

test('routes and /swagger.json follow the services live in the registry; a route whose service left answers 503', async (t) => {
  const stack = await startStack(t);
  const doc = await getOpenApi(stack.url);
  assert.equal(doc.status, 200);
  assert.match(doc.body.openapi, /^3\./);
  assert.ok(doc.body.paths['/api/test/echo']?.get, 'GET /api/test/echo is listed');
  assert.ok(doc.body.paths['/api/test/item']?.post, 'POST /api/test/item is listed');
  assert.ok(doc.body.paths['/api/test/{id}']?.get, 'GET /api/test/{id} is listed');
  assert.equal(doc.body.paths['/api/extra/hello'], undefined);
  assert.equal((await httpJson(`${stack.url}/api/extra/hello?name=ann`)).status, 404);

  const extra = await startExtraHost(t, stack.cluster, [implement(IExtraAppService, { hello: (name) => `hello ${name}` })]);
  await eventually(async () => (await getOpenApi(stack.url)).body.paths['/api/extra/hello']?.get, 5000, 'the new route listed');
  const hello = await httpJson(`${stack.url}/api/extra/hello?name=ann`);
  assert.equal(hello.status, 200);
  assert.equal(hello.body.result, 'hello ann');

  await extra.stop();
  // Gone from the document; the route it had answers 503 (retry later) rather than 404.
  await eventually(async () => (await getOpenApi(stack.url)).body.paths['/api/extra/hello'] === undefined, 5000, 'the route unlisted');
  const gone = await httpJson(`${stack.url}/api/extra/hello?name=ann`);
  assert.equal(gone.status, 503);
  assert.equal(gone.body.code, 'ServiceUnavailable');
  assert.equal(gone.headers.get('retry-after'), '2');
  const after = await getOpenApi(stack.url);
  assert.equal(after.body.paths['/api/extra/hello'], undefined);
  assert.ok(after.body.paths['/api/test/echo']?.get, 'the other service is still listed');
});

test('the authenticate hook refuses with 401 or 403 and passes the headers it returns to the service', async (t) => {
  const seen: string[] = [];
  const stack = await startStack(t, {
    gateway: {
      authenticate: (req) => {
        seen.push(`${req.kind} ${req.method} ${req.path}`);
        const auth = req.headers['authorization'];
        if (auth === undefined) throw new WeftError('Unauthenticated', 'no token');
        if (auth !== 'Bearer good') throw new WeftError('Unauthorized', 'token does not allow this');
        return { 'x-user-id': '42' };
      },
    },
  });
  const none = await httpJson(`${stack.url}/api/test/context`);
  assert.equal(none.status, 401);
  assert.equal(none.body.code, 'Unauthenticated');
  const bad = await httpJson(`${stack.url}/api/test/context`, { headers: { authorization: 'Bearer bad' } });
  assert.equal(bad.status, 403);
  assert.equal(bad.body.code, 'Unauthorized');
  const good = await httpJson(`${stack.url}/api/test/context`, { headers: { authorization: 'Bearer good' } });
  assert.equal(good.status, 200);
  const seenByService = good.body.result as SeenContext;
  assert.equal(seenByService.headers['x-user-id'], '42');
  assert.equal(seenByService.headers.authorization, 'Bearer good');
  assert.deepEqual(seen, ['http GET /api/test/context', 'http GET /api/test/context', 'http GET /api/test/context']);
});

test('malformed percent-encoding in the path is answered 400', async (t) => {
  const stack = await startStack(t);
  const res = await httpJson(`${stack.url}/api/test/%E0%A4%A`);
  assert.equal(res.status, 400);
  assert.equal(res.body.code, 'BadRequest');
  const other = await httpJson(`${stack.url}/api/test/%zz`);
  assert.equal(other.status, 400);
  // The gateway is fine afterwards.
  assert.equal((await httpJson(`${stack.url}/api/test/ok`)).body.result, 'item ok');
});

test('a route whose service has been gone longer than goneRouteGraceMs answers 404 again', async (t) => {
  const stack = await startStack(t, { gateway: { goneRouteGraceMs: 300 } });
  const extra = await startExtraHost(t, stack.cluster, [implement(IExtraAppService, { hello: (name) => `hello ${name}` })]);
  await eventually(async () => (await httpJson(`${stack.url}/api/extra/hello?name=ann`)).status === 200, 5000, 'the new route served');
  await extra.stop();
  await eventually(async () => (await httpJson(`${stack.url}/api/extra/hello?name=ann`)).status === 503, 5000, 'the gone route answering 503');
  // No registry change comes after the service left: the gateway's own timer expires the route.
  await eventually(
    async () => (await httpJson(`${stack.url}/api/extra/hello?name=ann`)).status === 404,
    5000,
    'the route removed after the grace period',
  );
  assert.equal((await httpJson(`${stack.url}/api/test/echo?value=x`)).status, 200, 'other routes stay');
});

/** Another contract that declares IExtraAppService's route GET /api/extra/hello. */
const IExtraImpostor = defineContract({
  name: 'IImpostorAppService',
  route: 'api/{appservice=extra}',
  methods: { hello: { params: [param('name', Type.String())], returns: Type.String() } },
});

test('a host whose contract declares a route another live contract has is refused at start, naming both', async (t) => {
  const stack = await startStack(t);
  await startExtraHost(t, stack.cluster, [implement(IExtraAppService, { hello: (name) => `hello ${name}` })]);
  await eventually(async () => (await httpJson(`${stack.url}/api/extra/hello?name=ann`)).status === 200, 5000, 'the first contract served');
  const impostor = createHost({ cluster: stack.cluster, logger: quietLogger(), services: [implement(IExtraImpostor, { hello: () => 'impostor' })] });
  const refused = await rejection(impostor.start());
  assert.equal(refused.code, 'InvalidContract');
  assert.match(refused.message, /IImpostorAppService/);
  assert.match(refused.message, /IExtraAppService/);
  assert.equal((await httpJson(`${stack.url}/api/extra/hello?name=ann`)).body.result, 'hello ann', 'the first contract keeps its route');
});
