/**
 * The RPC client: picks an instance, sends the call over the link, waits for
 * the answer within the timeout, and fails over to another instance when the
 * transport fails (never on a business or validation error).
 */
import {
  SpanKind,
  endSpan,
  parentContext,
  startSpan,
  traceIdOf,
  traceparentOf,
  type Attributes,
  type Context,
  type Span,
} from '../tracing/tracing.js';
import { observeRpcClient } from '../metrics/metrics.js';
import { WeftError, fromWire, isWeftError } from '../errors.js';
import type { Logger } from '../logger.js';
import { FrameType, type ErrorFrame, type ResultFrame, type WireCallContext } from '../protocol/frames.js';
import type { FrameRoutes, NodeLinks, PeerLink } from '../transport/peer-link.js';
import type { SelectStrategy } from '../contract/contract.js';
import { CircuitBreakers } from './circuit-breaker.js';
import { Deadlines, type Due } from './deadlines.js';
import { InFlight } from '../util/in-flight.js';
import { currentContext, newCallKey, newTraceId } from './context.js';
import type { Endpoints } from './endpoints.js';

export interface RpcClientOptions {
  nodeId: string;
  defaultTimeoutMs: number;
  /** Instances tried for one call, the first included. */
  maxAttempts: number;
  breaker: { failureThreshold: number; resetAfterMs: number };
  logger: Logger;
}

/** Per-call options. */
export interface CallOptions {
  timeoutMs?: number;
  /** Headers to pass on (the gateway forwards client headers this way). */
  headers?: Record<string, string>;
  traceId?: string;
  /** @internal the OpenTelemetry context the call's span is a child of (the gateway's HTTP span) */
  traceContext?: Context;
}

/** What the client needs to know about the method it calls. */
export interface CallTarget {
  service: string;
  method: string;
  timeoutMs?: number;
  select?: SelectStrategy;
  /** Index of the parameter hashed for `select: { hashBy }`. */
  hashParamIndex?: number;
  idempotent?: boolean;
  /** The client span's name and attributes, made once with the target (callTarget in proxy.ts). */
  spanName: string;
  spanAttributes: Attributes;
}

/** Called once with a call's outcome: its error, or undefined and its value. */
export type CallDone = (error: WeftError | undefined, value: unknown) => void;

/** What the client needs of its node. */
export interface RpcClientDeps {
  links: NodeLinks;
  endpoints: Endpoints;
  /** The client claims Result and Error frames. */
  frames: FrameRoutes;
}

interface PendingCall extends Due {
  id: number;
  target: CallTarget;
  args: unknown[];
  ctx: WireCallContext;
  timeoutMs: number;
  deadline: number;
  /** A promise's (call) or a callback (start): one or the other. */
  resolve: ((value: unknown) => void) | undefined;
  reject: ((error: WeftError) => void) | undefined;
  done: CallDone | undefined;
  nodeId: string;
  link: PeerLink | undefined;
  tried: Set<string> | undefined;
  attempts: number;
  lastError: WeftError | undefined;
  settled: boolean;
  span: Span;
}

/** Errors after which another instance may take the call. */
function failsOver(code: string): boolean {
  return code === 'Overloaded' || code === 'Draining' || code === 'CommunicationError';
}

function hasKeys(record: Record<string, string>): boolean {
  for (const key in record) if (Object.hasOwn(record, key)) return true;
  return false;
}

export class RpcClient {
  readonly #o: RpcClientOptions;
  readonly #links: NodeLinks;
  readonly #endpoints: Endpoints;
  readonly #breakers: CircuitBreakers;
  readonly #pending = new InFlight<PendingCall>();
  readonly #deadlines = new Deadlines<PendingCall>((call) => this.#onTimeout(call));
  readonly #roundRobin = new Map<string, number>();
  #nextId = 1;
  #stoppedWith: WeftError | undefined;

  constructor(deps: RpcClientDeps, options: RpcClientOptions) {
    this.#links = deps.links;
    this.#endpoints = deps.endpoints;
    this.#o = options;
    this.#breakers = new CircuitBreakers(options.breaker);
    deps.frames.on(FrameType.Result, (frame) => this.#onResult(frame));
    deps.frames.on(FrameType.Error, (frame) => this.#onError(frame));
    deps.links.onLinkClosed((link) => this.#onLinkClosed(link));
  }

  /** Drops per-endpoint state of nodes no longer in the registry. */
  forgetAllBut(live: (nodeId: string) => boolean): void {
    this.#breakers.forgetAllBut(live);
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  /** Calls `target` with positional `args`. Rejects with a WeftError. */
  call(target: CallTarget, args: unknown[], options: CallOptions = {}): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => this.#start(target, args, options, resolve, reject, undefined));
  }

  /**
   * The same, with a callback in place of a promise: what the gateway uses,
   * so a request makes no promise, resolving functions or await. `done` may
   * be called before `start` returns (no instance, arguments that cannot be
   * encoded).
   */
  start(target: CallTarget, args: unknown[], options: CallOptions, done: CallDone): void {
    this.#start(target, args, options, undefined, undefined, done);
  }

  #start(
    target: CallTarget,
    args: unknown[],
    options: CallOptions,
    resolve: ((value: unknown) => void) | undefined,
    reject: ((error: WeftError) => void) | undefined,
    done: CallDone | undefined,
  ): void {
    const parent = currentContext();
    const now = Date.now();
    let timeoutMs = options.timeoutMs ?? target.timeoutMs ?? this.#o.defaultTimeoutMs;
    if (parent !== undefined) timeoutMs = Math.min(timeoutMs, Math.max(0, parent.deadline - now));
    const traced = startSpan(target.spanName, SpanKind.CLIENT, options.traceContext ?? parentContext(parent?.traceparent), target.spanAttributes);
    const ctx: WireCallContext = {
      t: options.traceId ?? parent?.traceId ?? traceIdOf(traced.ctx) ?? newTraceId(),
      c: this.#o.nodeId,
      d: timeoutMs,
      k: newCallKey(),
    };
    // Without an SDK the span has no traceparent: the caller's goes on as it came.
    const traceparent = traceparentOf(traced.ctx) || parent?.traceparent;
    if (traceparent !== undefined && traceparent !== '') ctx.p = traceparent;
    const headers = options.headers ?? parent?.headers;
    if (headers !== undefined && hasKeys(headers)) ctx.h = headers;
    const call: PendingCall = {
      id: 0,
      target,
      args,
      ctx,
      timeoutMs,
      deadline: now + timeoutMs,
      resolve,
      reject,
      done,
      dueAt: 0,
      dueList: undefined,
      duePrev: undefined,
      dueNext: undefined,
      nodeId: '',
      link: undefined,
      tried: undefined,
      attempts: 0,
      lastError: undefined,
      settled: false,
      span: traced.span,
    };
    if (timeoutMs <= 0) {
      this.#settle(call, new WeftError('Timeout', `${target.service}.${target.method}: no time left for the call`));
      return;
    }
    this.#deadlines.add(call, timeoutMs);
    this.#attempt(call);
  }

  /** Answers from a peer. */
  #onResult(frame: ResultFrame): void {
    const call = this.#pending.take(frame[1]);
    if (call === undefined) return; // late answer after a timeout
    this.#breakers.success(call.nodeId);
    this.#settle(call, undefined, frame[2]);
  }

  #onError(frame: ErrorFrame): void {
    const call = this.#pending.take(frame[1]);
    if (call === undefined) return;
    const wire = frame[2];
    const error = fromWire(wire);
    // An error the endpoint sent back is an answer: it is reachable, whatever it said.
    this.#breakers.success(call.nodeId);
    if (failsOver(error.code)) {
      this.#retry(call, error);
      return;
    }
    this.#settle(call, error);
  }

  /** A link closed: its calls go elsewhere (idempotent ones) or fail. */
  #onLinkClosed(link: PeerLink): void {
    for (const call of this.#pending.all()) {
      if (call.link !== link) continue;
      this.#pending.take(call.id);
      this.#breakers.failure(call.nodeId);
      if (call.target.idempotent === false) {
        // It may have run: sending it elsewhere could run it twice. The caller decides.
        this.#settle(
          call,
          new WeftError(
            'OutcomeUnknown',
            `${call.target.service}.${call.target.method}: the link to ${call.nodeId} closed with the call in flight; it may have run`,
          ),
        );
      } else this.#retry(call, new WeftError('CommunicationError', `link to ${call.nodeId} closed with the call in flight`));
    }
  }

  /** Fails every call in flight and every later attempt (the node is stopping). */
  failAll(error: WeftError): void {
    this.#stoppedWith = error;
    for (const call of this.#pending.all()) this.#settle(call, error);
    this.#pending.clear();
    // The deadlines stay: a call still being dialed settles at its own, if the dial never ends.
  }

  #retry(call: PendingCall, error: WeftError): void {
    (call.tried ??= new Set()).add(call.nodeId);
    call.lastError = error;
    this.#attempt(call);
  }

  #attempt(call: PendingCall): void {
    if (call.settled) return;
    // Calls still being dialed or answered in-process when the node stopped end here.
    if (this.#stoppedWith !== undefined) {
      this.#settle(call, this.#stoppedWith);
      return;
    }
    if (call.attempts >= this.#o.maxAttempts) {
      this.#settle(
        call,
        this.#unavailable(call.target.service, call.lastError ?? new WeftError('ServiceUnavailable', `${call.target.service}: no instance answered`)),
      );
      return;
    }
    const nodeId = this.#pick(call);
    if (nodeId === undefined) return; // #pick settled the call
    call.attempts += 1;
    call.nodeId = nodeId;
    const link = this.#links.get(nodeId);
    if (link !== undefined) {
      this.#send(call, link);
      return;
    }
    this.#links.connect(nodeId).then(
      (opened) => this.#send(call, opened),
      (error: WeftError) => {
        this.#breakers.failure(nodeId);
        this.#retry(call, error);
      },
    );
  }

  #send(call: PendingCall, link: PeerLink): void {
    if (call.settled) return;
    if (this.#stoppedWith !== undefined) {
      this.#settle(call, this.#stoppedWith);
      return;
    }
    const id = this.#nextId++;
    call.id = id;
    call.link = link;
    call.ctx.d = Math.max(0, call.deadline - Date.now());
    try {
      link.send([FrameType.Call, id, call.target.service, call.target.method, call.args, call.ctx]);
    } catch (e) {
      if (!isWeftError(e)) {
        // The arguments cannot be encoded (a cycle, a function...): no instance could take them.
        this.#settle(
          call,
          new WeftError('BadRequest', `arguments of ${call.target.service}.${call.target.method} cannot be serialized`, { cause: e }),
        );
        return;
      }
      if (e.code === 'ProtocolError') this.#settle(call, e);
      else this.#retry(call, e);
      return;
    }
    this.#pending.add(call);
  }

  /** Chooses an instance, or settles the call with the reason there is none. */
  #pick(call: PendingCall): string | undefined {
    const t = call.target;
    const ids = this.#endpoints.nodeIds(t.service);
    if (ids.length === 0) {
      this.#settle(call, this.#unavailable(t.service, call.lastError ?? new WeftError('ServiceUnavailable', `no live instance of ${t.service}`)));
      return undefined;
    }
    const tried = call.tried;
    let blockedByBreaker = 0;
    let chosen: string | undefined;
    const select = t.select ?? 'round-robin';
    if (typeof select === 'object') {
      const key = String(call.args[t.hashParamIndex ?? 0]);
      chosen = this.#endpoints.ring(t.service)?.pickWhere(key, (id) => {
        const why = this.#unusable(id, tried);
        if (why === 'breaker') blockedByBreaker += 1;
        return why === undefined;
      });
    } else {
      // A loop, not a predicate: the common path makes no closure per call.
      const start = select === 'random' ? Math.floor(Math.random() * ids.length) : this.#nextRoundRobin(t.service);
      for (let i = 0; i < ids.length; i++) {
        const id = ids[(start + i) % ids.length]!;
        const why = this.#unusable(id, tried);
        if (why === undefined) {
          chosen = id;
          break;
        }
        if (why === 'breaker') blockedByBreaker += 1;
      }
    }
    if (chosen !== undefined) return chosen;
    let error = call.lastError;
    if (error === undefined) {
      error =
        blockedByBreaker > 0
          ? new WeftError('CircuitOpen', `every instance of ${t.service} has an open circuit`)
          : new WeftError('ServiceUnavailable', `no reachable instance of ${t.service}`);
    }
    this.#settle(call, this.#unavailable(t.service, error));
    return undefined;
  }

  /** Why an instance cannot take a call now, or undefined when it can. */
  #unusable(id: string, tried: Set<string> | undefined): 'tried' | 'unreachable' | 'breaker' | undefined {
    if (tried?.has(id) === true) return 'tried';
    if (this.#links.get(id)?.peerDraining === true) return 'unreachable';
    if (this.#links.isBackingOff(id) || this.#links.isRefused(id)) return 'unreachable';
    if (!this.#breakers.allows(id)) return 'breaker';
    return undefined;
  }

  /** A transport failure that no instance could make up for is, to the caller, an unavailable service. */
  #unavailable(service: string, error: WeftError): WeftError {
    return error.code === 'CommunicationError' ? new WeftError('ServiceUnavailable', `${service}: ${error.message}`, { cause: error }) : error;
  }

  #nextRoundRobin(service: string): number {
    const n = this.#roundRobin.get(service) ?? 0;
    this.#roundRobin.set(service, n + 1 >= 0x3fffffff ? 0 : n + 1);
    return n;
  }

  #onTimeout(call: PendingCall): void {
    if (call.settled) return;
    if (call.id !== 0) this.#pending.take(call.id);
    if (call.nodeId !== '') this.#breakers.failure(call.nodeId);
    this.#settle(call, new WeftError('Timeout', `${call.target.service}.${call.target.method} did not answer within ${call.timeoutMs} ms`));
  }

  #settle(call: PendingCall, error: WeftError | undefined, value?: unknown): void {
    if (call.settled) return;
    call.settled = true;
    this.#deadlines.remove(call);
    // The call began timeoutMs before its deadline.
    observeRpcClient(call.target.service, call.target.method, error?.code ?? 'Success', (Date.now() - call.deadline + call.timeoutMs) / 1000);
    endSpan(call.span, error?.code);
    // A settled call keeps nothing of its caller, whatever still points at it.
    const { done, resolve, reject } = call;
    call.done = call.resolve = call.reject = undefined;
    if (done !== undefined) done(error, value);
    else if (error !== undefined) reject!(error);
    else resolve!(value);
  }
}
