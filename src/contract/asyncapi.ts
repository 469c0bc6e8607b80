/**
 * AsyncAPI 3.0.0 document of the WebSocket services a gateway serves, built
 * from contract descriptors (as OpenAPI is): one channel per service path,
 * an operation `send` per push (the service sends it to clients) and
 * `receive` per client message, with its reply. Payloads are the messages
 * as they cross the socket (docs/protocol.md): a push is
 * `{"push":<name>,"data":<payload>}`, a message is a weft.v1 `request`
 * answered by a `reply` of the same `id`. The schemas are the contracts'
 * own, JSON Schema already.
 */
import { ERRORS } from '../errors.js';
import type { ContractDescriptor } from './contract.js';

export interface AsyncApiInfo {
  title: string;
  version: string;
}

/** A WebSocket service as the gateway routes it: its contract and its path (`/api/shop`, `/api/{tenant}/chat`). */
export interface AsyncApiService {
  contract: ContractDescriptor;
  path: string;
}

export interface AsyncApiSecurity {
  /** Handshakes need a JWT (the gateway's `auth.jwt`). */
  bearerJwt: boolean;
  description?: string;
}

/** AsyncAPI keys (channels, operations, messages) take letters, digits, `_` and `-` only. */
function key(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_');
}

const REPLY_ERROR = {
  type: 'object',
  properties: {
    code: { type: 'string', enum: Object.keys(ERRORS) },
    message: { type: 'string' },
    data: {},
    validErrors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { memberNames: { type: 'array', items: { type: 'string' } }, errorMessage: { type: 'string' } },
      },
    },
  },
  required: ['code', 'message'],
};

const REQUEST_ID = { type: 'integer', minimum: 1, maximum: 0x7fff_ffff, description: 'Chosen by the client; the reply carries it back.' };

/** The `{param}` segments of a path, as AsyncAPI channel parameters. */
function channelParameters(path: string): Record<string, unknown> | undefined {
  const names = [...path.matchAll(/\{([^}=]+)[^}]*\}/g)].map((m) => m[1]!);
  if (names.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const name of names) out[key(name)] = { description: `A segment of the route; the service sees it as session.params.${name}.` };
  return out;
}

function channelBindings(): Record<string, unknown> {
  return {
    ws: {
      method: 'GET',
      query: {
        type: 'object',
        properties: {
          businessId: {
            type: 'string',
            description: 'The business the session belongs to (or the header `businessId`; with auth, the token names it).',
          },
          token: { type: 'string', description: 'A JWT, for browsers that cannot set the Authorization header.' },
          since: { type: 'string', description: 'weft.v1: resume after this position, `<epoch>:<offset>`.' },
        },
      },
      bindingVersion: '0.1.0',
    },
  };
}

/**
 * Builds the document.
 *
 * @example
 * const doc = buildAsyncApi([{ contract: IShopAppService.descriptor, path: IShopAppService.basePath }], { title: 'shop', version: '1.0.0' });
 * console.log(Object.keys(doc['operations'] as object)); // ['IShopAppService_push_orderShipped', 'IShopAppService_message_typing']
 */
export function buildAsyncApi(
  services: Iterable<AsyncApiService>,
  info: AsyncApiInfo,
  security: AsyncApiSecurity = { bearerJwt: false },
): Record<string, unknown> {
  const secured = security.bearerJwt
    ? { security: [{ $ref: '#/components/securitySchemes/bearerAuth' }, { $ref: '#/components/securitySchemes/tokenQuery' }] }
    : {};
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  const sorted = [...services].sort((a, b) => (a.contract.name < b.contract.name ? -1 : a.contract.name > b.contract.name ? 1 : 0));
  for (const { contract, path } of sorted) {
    const channelKey = key(contract.name);
    const channelRef = { $ref: `#/channels/${channelKey}` };
    const channelMessages: Record<string, unknown> = {};
    const messageRef = (id: string): { $ref: string } => ({ $ref: `#/channels/${channelKey}/messages/${id}` });
    for (const push of contract.pushes ?? []) {
      const id = `push_${key(push.name)}`;
      const componentKey = `${channelKey}_${id}`;
      messages[componentKey] = {
        name: push.name,
        title: `${push.name} (push)`,
        ...(push.description === undefined ? {} : { summary: push.description }),
        contentType: 'application/json',
        payload: {
          type: 'object',
          properties: { push: { type: 'string', const: push.name }, data: push.schema },
          required: ['push', 'data'],
        },
      };
      channelMessages[id] = { $ref: `#/components/messages/${componentKey}` };
      operations[`${channelKey}_push_${key(push.name)}`] = {
        action: 'send',
        channel: channelRef,
        title: push.name,
        summary: push.description ?? `The ${push.name} push.`,
        description: 'Sent by the service to the sessions it pushes to (`this.pushes`); `weft/client` hands it to `on(name)`.',
        messages: [messageRef(id)],
        ...secured,
      };
    }
    for (const message of contract.messages ?? []) {
      const requestId = `message_${key(message.name)}`;
      const replyId = `reply_${key(message.name)}`;
      const requestKey = `${channelKey}_${requestId}`;
      const replyKey = `${channelKey}_${replyId}`;
      const correlationId = { location: '$message.payload#/id' };
      messages[requestKey] = {
        name: message.name,
        title: `${message.name} (request)`,
        ...(message.description === undefined ? {} : { summary: message.description }),
        contentType: 'application/json',
        correlationId,
        payload: {
          type: 'object',
          properties: {
            type: { type: 'string', const: 'request' },
            id: REQUEST_ID,
            name: { type: 'string', const: message.name },
            params: message.params,
          },
          required: ['type', 'id', 'name'],
        },
      };
      messages[replyKey] = {
        name: `${message.name}.reply`,
        title: `${message.name} (reply)`,
        contentType: 'application/json',
        correlationId,
        payload: {
          type: 'object',
          properties: { type: { type: 'string', const: 'reply' }, id: REQUEST_ID, result: message.returns, error: REPLY_ERROR },
          required: ['type', 'id'],
          description: '`result` (the handler return value) or `error` (its code from the catalogue: ValidateError, BusinessError, NotFound...).',
        },
      };
      channelMessages[requestId] = { $ref: `#/components/messages/${requestKey}` };
      channelMessages[replyId] = { $ref: `#/components/messages/${replyKey}` };
      operations[`${channelKey}_message_${key(message.name)}`] = {
        action: 'receive',
        channel: channelRef,
        title: message.name,
        summary: message.description ?? `The ${message.name} message.`,
        description: 'A weft.v1 request (`weft/client` `call`), run by the service method of this name; its reply answers it.',
        messages: [messageRef(requestId)],
        reply: { channel: channelRef, messages: [messageRef(replyId)] },
        ...secured,
      };
    }
    const parameters = channelParameters(path);
    channels[channelKey] = {
      address: path,
      title: contract.name,
      ...(contract.description === undefined ? {} : { description: contract.description }),
      messages: channelMessages,
      ...(parameters === undefined ? {} : { parameters }),
      bindings: channelBindings(),
    };
  }
  const description = security.description ?? 'A JWT signed with the key the gateway was given.';
  return {
    asyncapi: '3.0.0',
    info: {
      ...info,
      description:
        'The WebSocket services of a weft gateway. Connect with the `weft.v1` subprotocol (weft/client does) for requests and replies; named pushes reach plain clients too, as their JSON.',
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: {
      messages,
      ...(security.bearerJwt
        ? {
            securitySchemes: {
              bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description },
              tokenQuery: { type: 'httpApiKey', in: 'query', name: 'token', description: `${description} Passed as \`?token=\`.` },
            },
          }
        : {}),
    },
  };
}
