/**
 * defineContract: what a contract refuses, and what its descriptor carries.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineContract, param, Type, isSimpleSchema, type ContractSpec } from '../src/index.js';
import type { MethodMap } from '../src/contract/contract.js';

/** defineContract must throw InvalidContract whose message contains every fragment. */
function assertRefused(spec: ContractSpec<MethodMap>, ...fragments: string[]): void {
  assert.throws(
    () => defineContract(spec),
    (e: unknown) => {
      const error = e as { code?: unknown; message: string };
      assert.equal(error.code, 'InvalidContract', error.message);
      for (const f of fragments) assert.ok(error.message.includes(f), `"${error.message}" contains "${f}"`);
      return true;
    },
  );
}

test('refuses a parameter declared twice, naming the method and the parameter', () => {
  assertRefused(
    { name: 'IUserAppService', methods: { rename: { params: [param('id', Type.String()), param('id', Type.String())] } } },
    'IUserAppService.rename',
    '"id"',
    'declared twice',
  );
});

test('refuses a required parameter after an optional one', () => {
  assertRefused(
    {
      name: 'IUserAppService',
      methods: { list: { params: [param('page', Type.Optional(Type.Integer())), param('size', Type.Integer())] } },
    },
    'IUserAppService.list',
    '"size"',
    'follows an optional one',
  );
});

test('accepts several trailing optional parameters', () => {
  const c = defineContract({
    name: 'IUserAppService',
    methods: {
      list: { params: [param('q', Type.String()), param('page', Type.Optional(Type.Integer())), param('size', Type.Optional(Type.Integer()))] },
    },
  });
  assert.deepEqual(
    c.descriptor.methods[0]!.params.map((p) => p.required),
    [true, false, false],
  );
});

test('refuses select.hashBy naming no parameter', () => {
  assertRefused(
    { name: 'IWsTestAppService', methods: { echo: { params: [param('businessId', Type.String())], select: { hashBy: 'tenantId' } } } },
    'IWsTestAppService.echo',
    'hashBy "tenantId"',
  );
});

test('refuses two methods on the same verb and route, naming both', () => {
  assertRefused(
    {
      name: 'IUserAppService',
      methods: {
        getUser: { params: [param('id', Type.String())] },
        getUserAsync: { params: [param('id', Type.String())] },
      },
    },
    'IUserAppService.getUserAsync',
    'GET /api/user/user',
    'already taken by getUser',
  );
});

test('refuses two methods whose routes differ only in the path parameter name', () => {
  assertRefused(
    {
      name: 'IUserAppService',
      methods: {
        get: { params: [param('id', Type.String())], http: { path: '{id}' } },
        getByName: { params: [param('name', Type.String())], http: { path: '{name}' } },
      },
    },
    'IUserAppService.getByName',
    'already taken by get',
  );
});

test('accepts the same path under different verbs', () => {
  const c = defineContract({
    name: 'IUserAppService',
    methods: {
      get: { params: [param('id', Type.String({ minLength: 1 }))], http: { path: '{id}' } },
      update: { params: [param('id', Type.String(), { from: 'path' }), param('dto', Type.Object({ name: Type.String() }))] },
      delete: { params: [param('id', Type.String(), { from: 'path' })] },
    },
  });
  assert.deepEqual(
    c.descriptor.methods.map((m) => `${m.verb} ${m.path}`),
    ['GET /api/user/{id}', 'PUT /api/user/{id}', 'DELETE /api/user/{id}'],
  );
});

test('refuses a contract name that is not an identifier', () => {
  for (const name of ['my-service', '', '1Service', 'I User']) {
    assertRefused({ name, methods: {} }, 'contract name', 'is not an identifier');
  }
});

test('refuses a method name that is not an identifier, naming it', () => {
  assertRefused({ name: 'IUserAppService', methods: { 'get-user': { params: [] } } }, 'IUserAppService.get-user', 'method name');
  assertRefused({ name: 'IUserAppService', methods: { 'two words': { params: [] } } }, 'IUserAppService.two words');
});

test('refuses a parameter name that is not an identifier, naming the method', () => {
  assertRefused(
    { name: 'IUserAppService', methods: { find: { params: [param('user-name', Type.String())] } } },
    'IUserAppService.find',
    'parameter 0',
  );
  assertRefused(
    { name: 'IUserAppService', methods: { find: { params: [param('q', Type.String()), param('', Type.String())] } } },
    'IUserAppService.find',
    'parameter 1',
  );
});

test('refuses params that are not an array, an unknown verb and a bad timeout, naming the method', () => {
  assertRefused({ name: 'IUserAppService', methods: { find: { params: 'q' as unknown as [] } } }, 'IUserAppService.find', 'params');
  assertRefused(
    { name: 'IUserAppService', methods: { find: { params: [], http: { method: 'FETCH' as 'GET' } } } },
    'IUserAppService.find',
    'unknown HTTP verb "FETCH"',
  );
  for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assertRefused({ name: 'IUserAppService', methods: { find: { params: [], timeoutMs } } }, 'IUserAppService.find', 'timeoutMs');
  }
});

test('a route rule broken by one method is reported with that method and parameter', () => {
  assertRefused(
    {
      name: 'IUserAppService',
      methods: {
        list: { params: [] },
        getUser: { params: [param('filter', Type.Object({ name: Type.String() }))] },
      },
    },
    'IUserAppService.getUser',
    '"filter"',
  );
});

test('the descriptor carries routes, bindings, JSON schemas and call options', () => {
  const c = defineContract({
    name: 'IWsTestAppService',
    description: 'the seed service',
    methods: {
      echo: {
        params: [param('businessId', Type.String({ minLength: 1 }), { description: 'who to push to' }), param('msg', Type.String())],
        returns: Type.Integer(),
        select: { hashBy: 'businessId' },
        timeoutMs: 2000,
        idempotent: false,
        description: 'pushes msg',
      },
      ping: { params: [] },
    },
  });
  assert.equal(c.name, 'IWsTestAppService');
  assert.equal(c.route, 'api/{appservice}');
  assert.equal(c.basePath, '/api/wstest');
  assert.ok(Object.isFrozen(c));
  const d = c.descriptor;
  assert.equal(d.segment, 'wstest');
  assert.equal(d.description, 'the seed service');
  const [echo, ping] = d.methods;
  assert.deepEqual(
    { name: echo!.name, verb: echo!.verb, path: echo!.path, timeoutMs: echo!.timeoutMs, select: echo!.select, idempotent: echo!.idempotent },
    { name: 'echo', verb: 'GET', path: '/api/wstest/echo', timeoutMs: 2000, select: { hashBy: 'businessId' }, idempotent: false },
  );
  assert.equal(echo!.description, 'pushes msg');
  assert.deepEqual(echo!.params[0], {
    name: 'businessId',
    from: 'query',
    required: true,
    simple: true,
    schema: { type: 'string', minLength: 1 },
    description: 'who to push to',
  });
  assert.deepEqual(echo!.returns, { type: 'integer' });
  // No return type: the method returns nothing.
  assert.deepEqual(ping!.returns, { type: 'null' });
  assert.equal(ping!.idempotent, true, 'idempotent by default');
  // The descriptor travels in the registry: it must be plain JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(d)), d);
});

test('simple schemas are scalars, literals and unions of them; objects and arrays are not', () => {
  for (const s of [
    Type.String(),
    Type.Number(),
    Type.Integer(),
    Type.Boolean(),
    Type.Null(),
    Type.Literal('a'),
    Type.Union([Type.Literal(1), Type.String()]),
    Type.Optional(Type.String()),
  ]) {
    assert.equal(isSimpleSchema(s), true, JSON.stringify(s));
  }
  for (const s of [
    Type.Object({}),
    Type.Array(Type.String()),
    Type.Record(Type.String(), Type.String()),
    Type.Any(),
    Type.Union([Type.String(), Type.Object({})]),
  ]) {
    assert.equal(isSimpleSchema(s), false, JSON.stringify(s));
  }
});
