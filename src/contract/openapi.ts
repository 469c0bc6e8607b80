/**
 * OpenAPI 3.1 document of the routes a gateway serves, built from contract
 * descriptors (the gateway has descriptors from the registry, not the code).
 * 3.1 because its schemas are JSON Schema (2020-12), as the contracts' are:
 * `type: 'null'`, `const` and the rest need no translation.
 */
import { ERRORS } from '../errors.js';
import type { ContractDescriptor, MethodDescriptor } from './contract.js';

export interface OpenApiInfo {
  title: string;
  version: string;
}

/** How the gateway's routes are secured, for the document's security schemes. */
export interface OpenApiSecurity {
  /** Every route needs a JWT (the gateway's `auth.jwt`): as a Bearer header or a `token` query parameter. */
  bearerJwt: boolean;
  /** What the token is, for the scheme's description (e.g. which claim is the businessId). */
  description?: string;
}

const ERROR_BODY = {
  type: 'object',
  properties: {
    result: { type: 'null' },
    status: { type: 'integer', description: 'weft status (1000 BusinessError, 1001 ValidateError, ...)' },
    code: { type: 'string', enum: Object.keys(ERRORS) },
    errorMessage: { type: 'string' },
    validErrors: {
      oneOf: [
        { type: 'null' },
        {
          type: 'array',
          items: {
            type: 'object',
            properties: { memberNames: { type: 'array', items: { type: 'string' } }, errorMessage: { type: 'string' } },
          },
        },
      ],
    },
  },
  required: ['result', 'status', 'code', 'errorMessage', 'validErrors'],
};

function operation(contract: ContractDescriptor, method: MethodDescriptor, secured: boolean): Record<string, unknown> {
  const parameters = method.params
    .filter((p) => p.from !== 'body')
    .map((p) => ({
      name: p.name,
      in: p.from,
      required: p.from === 'path' ? true : p.required,
      schema: p.schema,
      ...(p.description === undefined ? {} : { description: p.description }),
    }));
  const body = method.params.find((p) => p.from === 'body');
  const op: Record<string, unknown> = {
    operationId: `${contract.name}.${method.name}`,
    tags: [contract.name],
    parameters,
    responses: {
      200: {
        description: 'Success',
        content: {
          'application/json': {
            schema: {
              type: 'object',
              properties: {
                result: method.returns,
                status: { type: 'integer', const: 200 },
                code: { type: 'string', const: 'Success' },
                errorMessage: { type: 'null' },
                validErrors: { type: 'null' },
              },
            },
          },
        },
      },
      400: { $ref: '#/components/responses/Error' },
      ...(secured ? { 401: { $ref: '#/components/responses/Error' }, 403: { $ref: '#/components/responses/Error' } } : {}),
      404: { $ref: '#/components/responses/Error' },
      503: { $ref: '#/components/responses/Error' },
      504: { $ref: '#/components/responses/Error' },
      500: { $ref: '#/components/responses/Error' },
    },
  };
  if (method.description !== undefined) op['summary'] = method.description;
  if (body !== undefined) {
    op['requestBody'] = { required: body.required, content: { 'application/json': { schema: body.schema } } };
  }
  return op;
}

/** A WebSocket service's path, for its handshake operation. */
export interface OpenApiWebSocket {
  contract: ContractDescriptor;
  /** `/api/shop`, or a template `/api/{tenant}/chat`. */
  path: string;
}

/** The handshake of a WebSocket service: a GET with Upgrade, answered 101 (its messages are in /asyncapi.json). */
function handshakeOperation(ws: OpenApiWebSocket, secured: boolean): Record<string, unknown> {
  const names = ws.contract.messages?.map((m) => m.name) ?? [];
  const pushes = ws.contract.pushes?.map((p) => p.name) ?? [];
  const pathParams = [...ws.path.matchAll(/\{([^}=]+)[^}]*\}/g)].map((m) => ({
    name: m[1]!,
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  return {
    operationId: `${ws.contract.name}.websocket`,
    tags: [ws.contract.name],
    summary: `WebSocket session of ${ws.contract.name}`,
    description:
      'Opens a WebSocket session (HTTP Upgrade, RFC 6455). Offer the `weft.v1` subprotocol for positions, resume and request/reply. ' +
      'The messages on the socket are described in the AsyncAPI document at /asyncapi.json' +
      (pushes.length === 0 ? '' : `; pushes: ${pushes.join(', ')}`) +
      (names.length === 0 ? '' : `; messages: ${names.join(', ')}`) +
      '. A plain GET without Upgrade answers 426.',
    parameters: [
      ...pathParams,
      {
        name: 'businessId',
        in: 'query',
        required: !secured,
        schema: { type: 'string' },
        description: 'Or the `businessId` header; with auth the token names it.',
      },
      {
        name: 'since',
        in: 'query',
        required: false,
        schema: { type: 'string' },
        description: 'weft.v1: resume after this position, `<epoch>:<offset>`.',
      },
      { name: 'Upgrade', in: 'header', required: true, schema: { type: 'string', const: 'websocket' } },
      { name: 'Sec-WebSocket-Protocol', in: 'header', required: false, schema: { type: 'string' }, description: '`weft.v1` for weft/client.' },
    ],
    responses: {
      101: { description: 'Switching Protocols: the session is open.' },
      400: { $ref: '#/components/responses/Error' },
      ...(secured ? { 401: { $ref: '#/components/responses/Error' }, 403: { $ref: '#/components/responses/Error' } } : {}),
      404: { $ref: '#/components/responses/Error' },
      426: { $ref: '#/components/responses/Error' },
      429: { $ref: '#/components/responses/Error' },
      503: { $ref: '#/components/responses/Error' },
    },
  };
}

/** Builds the document; paths use OpenAPI's `{param}` form, which is also ours. */
export function buildOpenApi(
  contracts: Iterable<ContractDescriptor>,
  info: OpenApiInfo,
  security: OpenApiSecurity = { bearerJwt: false },
  websockets: Iterable<OpenApiWebSocket> = [],
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const tags: { name: string; description?: string }[] = [];
  for (const contract of contracts) {
    tags.push(contract.description === undefined ? { name: contract.name } : { name: contract.name, description: contract.description });
    for (const method of contract.methods) {
      const item = (paths[method.path] ??= {});
      item[method.verb.toLowerCase()] = operation(contract, method, security.bearerJwt);
    }
  }
  for (const ws of websockets) {
    const item = (paths[ws.path] ??= {});
    // A method mapped to the service route itself holds the GET: the handshake is told in the path's description.
    if (item['get'] === undefined) item['get'] = handshakeOperation(ws, security.bearerJwt);
    else item['description'] = `Also the WebSocket path of ${ws.contract.name} (GET with Upgrade: websocket answers 101).`;
  }
  const description = security.description ?? 'A JWT signed with the key the gateway was given.';
  return {
    openapi: '3.1.0',
    info,
    tags,
    paths,
    // Either scheme will do: the header, or the query parameter browsers use for WebSockets.
    ...(security.bearerJwt ? { security: [{ bearerAuth: [] }, { tokenQuery: [] }] } : {}),
    components: {
      responses: {
        Error: { description: 'weft error wrapper', content: { 'application/json': { schema: ERROR_BODY } } },
      },
      ...(security.bearerJwt
        ? {
            securitySchemes: {
              bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description },
              tokenQuery: { type: 'apiKey', in: 'query', name: 'token', description: `${description} Passed as \`?token=\`.` },
            },
          }
        : {}),
    },
  };
}
