/**
 * OpenAPI 3 document of the routes a gateway serves, built from contract
 * descriptors (the gateway has descriptors from the registry, not the code).
 */
import { ERRORS } from '../errors.js';
import type { ContractDescriptor, MethodDescriptor } from './contract.js';

export interface OpenApiInfo {
  title: string;
  version: string;
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

function operation(contract: ContractDescriptor, method: MethodDescriptor): Record<string, unknown> {
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

/** Builds the document; paths use OpenAPI's `{param}` form, which is also ours. */
export function buildOpenApi(contracts: Iterable<ContractDescriptor>, info: OpenApiInfo): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const tags: { name: string; description?: string }[] = [];
  for (const contract of contracts) {
    tags.push(contract.description === undefined ? { name: contract.name } : { name: contract.name, description: contract.description });
    for (const method of contract.methods) {
      const item = (paths[method.path] ??= {});
      item[method.verb.toLowerCase()] = operation(contract, method);
    }
  }
  return {
    openapi: '3.0.3',
    info,
    tags,
    paths,
    components: {
      responses: {
        Error: { description: 'weft error wrapper', content: { 'application/json': { schema: ERROR_BODY } } },
      },
    },
  };
}
