/**
 * A weft.v1 client's requests on the host its session is bound to: the
 * contract's `messages` name them, the service's method of each name is its
 * handler. A request runs in its session's queue, in order with the
 * session's other messages; its params are checked against the message's
 * schema (ValidateError), and the handler's return value, or the error it
 * threw (BusinessException...), is the reply, sent to exactly that session.
 * A bad request never ends the session.
 */
import { WeftError, toWeftError, toWire } from '../errors.js';
import type { AnyContract, MessageDef } from '../contract/contract.js';
import { ValueValidator } from '../contract/validate.js';
import { FrameType } from '../protocol/frames.js';
import { SpanKind, contextFrom, endSpan, startSpan, withContext, type Span } from '../tracing/tracing.js';
import type { ClientRequest } from './message-queue.js';
import type { HostSession } from './ws-session.js';

type Handler = (params: unknown, session: HostSession) => unknown;

interface MessageRuntime {
  /** undefined: the message takes no params. */
  validator: ValueValidator | undefined;
  handler: Handler;
}

const decoder = new TextDecoder();

/**
 * The handlers of a contract's messages on one service instance. Throws
 * InvalidContract when a message has no handler, so a host with a missing
 * one does not start.
 */
export class SessionRequests {
  readonly #contract: AnyContract;
  readonly #messages = new Map<string, MessageRuntime>();
  /** A handler threw something that is not a weft error: the log and onError hear of it. */
  readonly #unexpected: (session: HostSession, error: unknown) => void;

  constructor(contract: AnyContract, instance: object, unexpected: (session: HostSession, error: unknown) => void) {
    this.#contract = contract;
    this.#unexpected = unexpected;
    for (const [name, def] of Object.entries(contract.messages as Record<string, MessageDef>)) {
      const handler = (instance as Record<string, unknown>)[name];
      if (typeof handler !== 'function') {
        throw new WeftError(
          'InvalidContract',
          `${contract.name} message ${name} has no handler: give ${instance.constructor.name} a method ${name}(params, session)`,
        );
      }
      this.#messages.set(name, {
        validator: def.params === undefined ? undefined : new ValueValidator(def.params, 'params'),
        handler: (handler as Handler).bind(instance),
      });
    }
  }

  /** Does the contract declare any message? */
  get any(): boolean {
    return this.#messages.size > 0;
  }

  /** Runs one request and sends its reply; settles (never rejects) once the handler did. */
  run(session: HostSession, request: ClientRequest): Promise<void> | undefined {
    // A root span: pushes the handler makes are its children.
    const traced = startSpan('weft.session.request', SpanKind.SERVER, contextFrom(undefined), {
      'weft.service': this.#contract.name,
      'weft.message': request.name,
    });
    const span = traced.span;
    let result: unknown;
    try {
      const message = this.#messages.get(request.name);
      if (message === undefined) {
        throw new WeftError('NotFound', `${this.#contract.name} has no message ${JSON.stringify(request.name)}`);
      }
      const params = paramsOf(request.body);
      if (message.validator === undefined) {
        if (params !== undefined && params !== null) {
          throw new WeftError('ValidateError', `message ${request.name} takes no params`, {
            validErrors: [{ memberNames: ['params'], errorMessage: 'takes no params' }],
          });
        }
      } else {
        const errors = message.validator.validate(params);
        if (errors !== undefined) throw new WeftError('ValidateError', `invalid params for message ${request.name}`, { validErrors: errors });
      }
      result = withContext(traced.ctx, () => message.handler(params, session));
    } catch (e) {
      this.#fail(session, request, e, span);
      return undefined;
    }
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => this.#reply(session, request, value, span),
        (e: unknown) => this.#fail(session, request, e, span),
      );
    }
    this.#reply(session, request, result, span);
    return undefined;
  }

  #reply(session: HostSession, request: ClientRequest, value: unknown, span: Span): void {
    let json: string | undefined;
    try {
      // undefined (a handler that returns nothing) and what JSON cannot hold (a function) answer null.
      json = JSON.stringify(value ?? null) ?? 'null';
    } catch (e) {
      return this.#fail(session, request, new WeftError('ServerError', 'internal server error', { cause: e }), span);
    }
    endSpan(span);
    send(session, request.id, true, json);
  }

  #fail(session: HostSession, request: ClientRequest, e: unknown, span: Span): void {
    const error = toWeftError(e);
    endSpan(span, error.code);
    if (error.code === 'ServerError') this.#unexpected(session, e);
    send(session, request.id, false, JSON.stringify(toWire(error)));
  }
}

/** The params of a request message (the gateway checked it is a JSON object). */
function paramsOf(body: Uint8Array): unknown {
  let message: unknown;
  try {
    message = JSON.parse(decoder.decode(body));
  } catch {
    throw new WeftError('BadRequest', 'the request is not JSON');
  }
  return typeof message === 'object' && message !== null ? (message as { params?: unknown }).params : undefined;
}

/**
 * Sends a reply on the session's link. A link that is full gets it once it
 * drains (the client's call is waiting for it); one over the frame limit
 * gets an error reply instead; a closed one ends the session anyway.
 */
function send(session: HostSession, requestId: number, ok: boolean, json: string): void {
  const link = session.link;
  if (!link.isOpen) return;
  try {
    link.send([FrameType.SessionReply, session.id, requestId, ok, Buffer.from(json, 'utf8')]);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'Overloaded') link.onceDrained(() => send(session, requestId, ok, json));
    else if (code === 'ProtocolError' && ok) {
      const error = new WeftError('ServerError', `the reply of ${Buffer.byteLength(json)} bytes is over the link's frame limit`);
      send(session, requestId, false, JSON.stringify(toWire(error)));
    }
  }
}
