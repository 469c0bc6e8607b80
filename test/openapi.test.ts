/**
 * /swagger.json is an OpenAPI 3.1.0 document that a real validator
 * (@seriousme/openapi-schema-validator, the JSON Schemas of the OpenAPI
 * Initiative) accepts, and it carries the security schemes of `auth.jwt`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Type, defineContract, implement, param } from '../src/index.js';
import { buildOpenApi } from '../src/contract/openapi.js';
import { startStack } from './fixtures/stack.js';
import { getOpenApi, httpJson } from './helpers/index.js';
import { SECRET, tokenFor } from './helpers/tokens.js';

async function validate(doc: unknown): Promise<{ valid: boolean; errors: unknown; version: string }> {
  const validator = new Validator();
  // A copy: the validator may annotate what it is given.
  const res = await validator.validate(structuredClone(doc) as Record<string, unknown>);
  return { valid: res.valid, errors: res.errors, version: validator.version };
}

/** A contract with what the schemas of a real service have: null, const, unions, nested objects, a body, path and header params. */
const IShapesAppService = defineContract({
  name: 'IShapesAppService',
  description: 'shapes for the document',
  methods: {
    find: {
      description: 'finds a shape',
      params: [param('id', Type.String()), param('kind', Type.Optional(Type.Union([Type.Literal('circle'), Type.Literal('square')])))],
      returns: Type.Union([Type.Null(), Type.Object({ id: Type.String(), area: Type.Number({ minimum: 0 }) })]),
      http: { path: '{id}' },
    },
    create: {
      params: [param('shape', Type.Object({ kind: Type.String(), sides: Type.Integer({ minimum: 0 }), tags: Type.Array(Type.String()) }))],
      returns: Type.Object({ id: Type.String() }),
    },
    ping: { params: [], returns: Type.Literal('pong') },
  },
});

const shapes = implement(IShapesAppService, {
  find: (id) => ({ id, area: 1 }),
  create: () => ({ id: 'new' }),
  ping: () => 'pong' as const,
});

test('/swagger.json says OpenAPI 3.1.0 and a validator of 3.1 finds no error in it', async (t) => {
  const stack = await startStack(t, { host: { services: [shapes] } });
  const doc = await getOpenApi(stack.url);
  assert.equal(doc.status, 200);
  assert.equal(doc.body.openapi, '3.1.0');
  assert.ok(doc.body.paths['/api/shapes/{id}']?.get, 'the path-parameter route is listed');
  assert.ok(doc.body.paths['/api/shapes']?.post, 'the body route is listed');
  const result = await validate(doc.body);
  assert.equal(result.version, '3.1');
  assert.deepEqual(result.errors, undefined);
  assert.equal(result.valid, true);
  // Without auth.jwt, nothing claims a token is needed.
  const raw = doc.body as unknown as { security?: unknown; components: { securitySchemes?: unknown } };
  assert.equal(raw.security, undefined);
  assert.equal(raw.components.securitySchemes, undefined);
});

test('with auth.jwt, /swagger.json declares bearer JWT (header or ?token=) on every route, with 401 and 403, and still validates', async (t) => {
  const stack = await startStack(t, { host: { services: [shapes] }, gateway: { auth: { jwt: { secret: SECRET } } } });
  const doc = (await getOpenApi(stack.url)).body as unknown as {
    openapi: string;
    security: Record<string, string[]>[];
    components: { securitySchemes: Record<string, Record<string, string>> };
    paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  };
  assert.equal(doc.openapi, '3.1.0');
  assert.deepEqual(doc.security, [{ bearerAuth: [] }, { tokenQuery: [] }]);
  const { bearerAuth, tokenQuery } = doc.components.securitySchemes;
  assert.equal(bearerAuth?.['type'], 'http');
  assert.equal(bearerAuth?.['scheme'], 'bearer');
  assert.equal(bearerAuth?.['bearerFormat'], 'JWT');
  assert.match(bearerAuth?.['description'] ?? '', /`sub` claim is the businessId/);
  assert.deepEqual(
    { type: tokenQuery?.['type'], in: tokenQuery?.['in'], name: tokenQuery?.['name'] },
    { type: 'apiKey', in: 'query', name: 'token' },
  );
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [verb, op] of Object.entries(item)) {
      assert.ok(op.responses['401'] !== undefined && op.responses['403'] !== undefined, `${verb} ${path} lists 401 and 403`);
    }
  }
  const result = await validate(doc);
  assert.deepEqual(result.errors, undefined);
  assert.equal(result.valid, true);
  // What the document says is what the gateway does; the health endpoints are outside it and need no token.
  assert.equal((await fetch(`${stack.url}/readyz`)).status, 200);
  assert.equal((await fetch(`${stack.url}/healthz`)).status, 200);
  assert.equal((await httpJson(`${stack.url}/api/shapes/ping`)).status, 401);
  const token = await tokenFor('100');
  assert.equal((await httpJson(`${stack.url}/api/shapes/ping`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  assert.equal((await httpJson(`${stack.url}/api/shapes/ping?token=${token}`)).status, 200);
});

test('a WebSocket path is listed as a GET answered 101 (templated too), and the document still validates', async () => {
  const IRoomAppService = defineContract({
    name: 'IRoomAppService',
    route: 'api/{tenant}/{appservice}',
    methods: {},
    pushes: { joined: Type.Object({ who: Type.String() }) },
    messages: { say: { params: Type.Object({ text: Type.String() }) } },
  });
  for (const bearerJwt of [false, true]) {
    const doc = buildOpenApi([IShapesAppService.descriptor, IRoomAppService.descriptor], { title: 'weft', version: '0' }, { bearerJwt }, [
      { contract: IShapesAppService.descriptor, path: '/api/shapes' },
      { contract: IRoomAppService.descriptor, path: '/api/{tenant}/room' },
    ]) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown>; description: string; parameters: { name: string; in: string }[] }>>;
    };
    const room = doc.paths['/api/{tenant}/room']?.['get'];
    assert.ok(room !== undefined && '101' in room.responses);
    assert.match(room.description, /pushes: joined; messages: say/);
    assert.ok(room.parameters.some((p) => p.name === 'tenant' && p.in === 'path'));
    // IShapesAppService's own GET (find) is on another path: /api/shapes gets the handshake.
    assert.ok(doc.paths['/api/shapes']?.['get']?.responses['101'] !== undefined);
    const result = await validate(doc);
    assert.deepEqual(result.errors, undefined);
    assert.equal(result.valid, true);
  }
});

test('an empty gateway document validates too', async () => {
  const result = await validate(buildOpenApi([], { title: 'weft', version: '0' }));
  assert.equal(result.valid, true, JSON.stringify(result.errors));
});
