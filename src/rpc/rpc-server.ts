/**
 * The serving side of RPC: finds the method, validates the arguments against
 * the contract, keeps to the concurrency limit, runs the method in its call
 * context and answers. Errors cross as {code, message, data}, never a stack.
 */
import { SpanKind, contextFrom, endSpan, startSpan, traceparentOf, withContext, type Attributes } from '../tracing/tracing.js';
import { observeRpcServer } from '../metrics/metrics.js';
import { WeftError, isWeftError, toWire, toWeftError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AnyContract, MethodMap } from '../contract/contract.js';
import { ArgsValidator } from '../contract/validate.js';
import { FrameType, type WireCallContext } from '../protocol/frames.js';
import type { FrameRoutes, PeerLink } from '../transport/peer-link.js';
import { runInContext, type CallContext } from './context.js';

export interface RpcServerOptions {
  maxConcurrentCalls: number;
  logger: Logger;
  /** The server claims Call frames. */
  frames: FrameRoutes;
}

interface MethodEntry {
  fn: (...args: unknown[]) => unknown;
  validator: ArgsValidator;
  /** The server span's name and attributes, made once per method rather than per call. */
  spanName: string;
  spanAttributes: Attributes;
}

interface ServiceEntry {
  contract: AnyContract;
  instance: object;
  methods: Map<string, MethodEntry>;
}

const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export class RpcServer {
  readonly #o: RpcServerOptions;
  readonly #services = new Map<string, ServiceEntry>();
  #inFlight = 0;
  #draining = false;
  #idleWaiters: (() => void)[] = [];

  constructor(options: RpcServerOptions) {
    this.#o = options;
    options.frames.on(FrameType.Call, (frame, link) => this.#dispatch(frame[2], frame[3], frame[4], frame[5], link, frame[1]));
  }

  /** Serves `instance` as `contract`; every method of the contract must be there. */
  addService(contract: AnyContract, instance: object): void {
    if (this.#services.has(contract.name)) {
      throw new WeftError('InvalidContract', `service ${contract.name} is registered twice on one host`);
    }
    const methods = new Map<string, MethodEntry>();
    for (const [name, def] of Object.entries(contract.methods as MethodMap)) {
      const fn = (instance as Record<string, unknown>)[name];
      if (typeof fn !== 'function') {
        throw new WeftError('InvalidContract', `${contract.name}.${name} is in the contract but the implementation has no such method`);
      }
      methods.set(name, {
        fn: fn as (...args: unknown[]) => unknown,
        validator: new ArgsValidator(def),
        spanName: `${contract.name}/${name}`,
        spanAttributes: Object.freeze({ 'rpc.system': 'weft', 'rpc.service': contract.name, 'rpc.method': name }),
      });
    }
    this.#services.set(contract.name, { contract, instance, methods });
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Refuses new calls from now on (callers fail over); calls in flight go on. */
  startDraining(): void {
    this.#draining = true;
  }

  /** Resolves true when no call is in flight, false if `timeoutMs` passes first. */
  waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.#inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Answers over the link the call came on. */
  #reply(link: PeerLink, id: number, error: WeftError | undefined, value?: unknown): void {
    if (!link.isOpen) return;
    try {
      if (error === undefined) link.send([FrameType.Result, id, value]);
      else link.send([FrameType.Error, id, toWire(error)]);
    } catch (e) {
      const err = isWeftError(e) ? e : this.#unserializable(e);
      // A full or closing link takes nothing more: the caller's timeout or failover answers.
      if (err.code === 'Overloaded' || err.code === 'CommunicationError') return;
      // Anything else (a result over maxFrameBytes, one that cannot be encoded) becomes an error the caller reads.
      try {
        link.send([FrameType.Error, id, toWire(err)]);
      } catch {
        // as above
      }
    }
  }

  #unserializable(cause: unknown): WeftError {
    this.#o.logger.error({ err: cause }, 'a service result could not be serialized');
    return new WeftError('ServerError', 'the result could not be serialized', { cause });
  }

  // (link, id) rather than a closure: nothing allocated per call for its answer.
  #dispatch(service: string, method: string, args: unknown[], wireCtx: WireCallContext, link: PeerLink, id: number): void {
    if (this.#draining) {
      this.#reply(link, id, new WeftError('Draining', `this instance of ${service} is stopping`));
      return;
    }
    const entry = this.#services.get(service);
    const m = entry?.methods.get(method);
    if (entry === undefined || m === undefined) {
      this.#reply(link, id, new WeftError('NotFound', `no method ${service}.${method} on this node`));
      return;
    }
    if (this.#inFlight >= this.#o.maxConcurrentCalls) {
      this.#reply(link, id, new WeftError('Overloaded', `host is at its limit of ${this.#o.maxConcurrentCalls} concurrent calls`));
      return;
    }
    const validErrors = m.validator.validate(args);
    if (validErrors !== undefined) {
      this.#reply(link, id, new WeftError('ValidateError', `invalid arguments for ${service}.${method}`, { validErrors }));
      return;
    }
    const traced = startSpan(m.spanName, SpanKind.SERVER, contextFrom(wireCtx.p), m.spanAttributes);
    const traceparent = traceparentOf(traced.ctx) || wireCtx.p;
    // Built field by field, not from spreads of little objects made for each call.
    const ctx: { -readonly [K in keyof CallContext]: CallContext[K] } = {
      traceId: wireCtx.t,
      callerNodeId: wireCtx.c,
      headers: wireCtx.h ?? EMPTY_HEADERS,
      deadline: Date.now() + (wireCtx.d ?? 0),
    };
    if (traceparent !== undefined && traceparent !== '') ctx.traceparent = traceparent;
    if (wireCtx.k !== undefined) ctx.callKey = wireCtx.k;
    this.#inFlight += 1;
    const startedAt = performance.now();
    const seconds = (): number => (performance.now() - startedAt) / 1000;
    let result: unknown;
    try {
      result = withContext(traced.ctx, () => runInContext(ctx, m.fn, entry.instance, args));
    } catch (e) {
      this.#done();
      const error = this.#errorOf(e, service, method, ctx);
      observeRpcServer(service, method, error.code, seconds());
      endSpan(traced.span, error.code);
      this.#reply(link, id, error);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(
        (value) => {
          this.#done();
          observeRpcServer(service, method, 'Success', seconds());
          endSpan(traced.span);
          this.#reply(link, id, undefined, value);
        },
        (e: unknown) => {
          this.#done();
          const error = this.#errorOf(e, service, method, ctx);
          observeRpcServer(service, method, error.code, seconds());
          endSpan(traced.span, error.code);
          this.#reply(link, id, error);
        },
      );
      return;
    }
    this.#done();
    observeRpcServer(service, method, 'Success', seconds());
    endSpan(traced.span);
    this.#reply(link, id, undefined, result);
  }

  #errorOf(e: unknown, service: string, method: string, ctx: CallContext): WeftError {
    let error = toWeftError(e);
    // These codes tell a caller to try another instance. Thrown by the method (from a call of
    // its own), they would make the caller run this method again elsewhere: after it already ran.
    if (error.code === 'Overloaded' || error.code === 'Draining' || error.code === 'CommunicationError') {
      error = new WeftError('ServiceUnavailable', error.message, { cause: error });
    }
    if (error.code === 'ServerError') {
      this.#o.logger.error({ err: e, service, method, traceId: ctx.traceId }, 'service method threw an unexpected error');
    }
    return error;
  }

  #done(): void {
    this.#inFlight -= 1;
    if (this.#inFlight === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
