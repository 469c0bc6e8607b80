/**
 * WebSocketModule turns a host into a WebSocket host: its WsAppServiceBase
 * services are announced with their WebSocket path, sessions that gateways
 * bind here run their hooks here, and every service gets a SessionManager
 * that reaches sessions anywhere in the cluster.
 *
 * A host keeps per-session state only for services that override a hook; a
 * service that only pushes costs its hosts nothing per session but its
 * directory entry.
 */
import { SpanKind, contextFrom, endSpan, startSpan, withContext } from '../tracing/tracing.js';
import { WeftError, toWire, toWeftError } from '../errors.js';
import type { HostContext, ModuleInstance, WeftModule } from '../host/module.js';
import { FrameType, type SessionClosedFrame, type SessionMessageFrame, type SessionOpenFrame, type SessionRequestFrame } from '../protocol/frames.js';
import type { PeerLink } from '../transport/peer-link.js';
import { WarnLimiter } from '../transport/warn-limiter.js';
import { countClientMessageDrop } from '../metrics/metrics.js';
import { QUEUE_FULL_CLOSE_CODE } from '../protocol/close-codes.js';
import { PushClient } from '../push/push-client.js';
import { historyLimitsOf } from './history-options.js';
import { MessageQueue, type ClientInput } from './message-queue.js';
import { BusinessSessionIds, SessionManager, type BoundSessions } from './session-manager.js';
import { SessionRequests } from './session-requests.js';
import { TypedPush } from './typed-push.js';
import { WsAppServiceBase, attachWsRuntime, isWsService } from './ws-app-service.js';
import { HostSession, type WsSession } from './ws-session.js';

interface WsServiceEntry {
  name: string;
  instance: WsAppServiceBase;
  manager: SessionManager;
  /** The handlers of its contract's messages (weft.v1 requests). */
  requests: SessionRequests;
  /** Does the service override any hook, or take messages? If not, no session state is kept here. */
  hasHooks: boolean;
}

/** Pushes are capped below the link frame limit, leaving room for the frame's own fields. */
const FRAME_OVERHEAD_BYTES = 4096;

const HOOKS = ['onOpen', 'onMessage', 'onClose', 'onError'] as const;

/**
 * How long onOpen may run when the gateway names no deadline (a gateway of an
 * older version): the gateway's default `websocket.sessionOpenTimeoutMs`.
 */
const DEFAULT_OPEN_TIMEOUT_MS = 5_000;
/** The longest delay setTimeout takes. */
const MAX_TIMER_MS = 2_147_483_647;
/** The window of client messages when the gateway names none (an older version): the gateway's default `websocket.maxQueuedMessages`. */
const DEFAULT_MAX_QUEUED_MESSAGES = 256;
/** Drop warnings: at most one line per kind each interval, the rest counted in it. */
const DROP_WARN_INTERVAL_MS = 10_000;
const QUEUE_FULL_REASON = 'too many messages waiting for the handler';

/** The deadline for onOpen that the gateway sent in the handshake, or the default. */
function openTimeoutOf(handshake: { openTimeoutMs?: unknown }): number {
  const ms = handshake.openTimeoutMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_TIMER_MS) : DEFAULT_OPEN_TIMEOUT_MS;
}

/** The window of client messages the gateway keeps to for a session, or the default. */
function maxQueuedMessagesOf(handshake: { maxQueuedMessages?: unknown }): number {
  const n = handshake.maxQueuedMessages;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : DEFAULT_MAX_QUEUED_MESSAGES;
}

/** A session whose onOpen is running: not yet bound here, and never bound once its deadline passed. */
interface OpeningSession {
  session: HostSession;
  timer: NodeJS.Timeout;
}

function constant<T>(value: T): () => T {
  return () => value;
}

function overridesAHook(instance: WsAppServiceBase): boolean {
  const base = WsAppServiceBase.prototype as unknown as Record<string, unknown>;
  const own = instance as unknown as Record<string, unknown>;
  return HOOKS.some((hook) => own[hook] !== base[hook]);
}

class WebSocketRuntime implements ModuleInstance {
  readonly #ctx: HostContext;
  readonly #services = new Map<string, WsServiceEntry>();
  /** Sessions bound here, of services with hooks (onOpen done). */
  readonly #sessions = new Map<string, HostSession>();
  /** Sessions whose onOpen is running. They get no onClose: they never opened. */
  readonly #opening = new Map<string, OpeningSession>();
  readonly #warnings: WarnLimiter;

  constructor(ctx: HostContext) {
    this.#ctx = ctx;
    this.#warnings = new WarnLimiter(ctx.logger, DROP_WARN_INTERVAL_MS);
    const push = new PushClient(ctx);
    for (const hosted of ctx.services) {
      if (!isWsService(hosted.instance)) {
        const declared = hosted.contract.descriptor;
        if (declared.messages !== undefined || declared.pushes !== undefined) {
          throw new WeftError('InvalidContract', `${declared.name} declares pushes or messages: its implementation must extend WsAppServiceBase`);
        }
        continue;
      }
      const name = hosted.contract.name;
      const instance = hosted.instance;
      const requests = new SessionRequests(hosted.contract, instance, (session, err) => {
        this.#ctx.logger.warn({ err, sessionId: session.id, service: name }, 'a message handler threw');
        void this.#hook(session, () => instance.onError(session, err), false);
      });
      // A service that takes messages keeps its sessions here, as one with hooks does: the handlers run here.
      const hasHooks = overridesAHook(instance) || requests.any;
      const limits = ctx.history === undefined ? undefined : historyLimitsOf(name, (hosted.instance.constructor as typeof WsAppServiceBase).history);
      // Announced with its path so gateways can route WebSocket handshakes to it, and with
      // its history so they know what a resuming client can get.
      hosted.record.websocket = { path: hosted.contract.basePath, hooks: hasHooks, ...(limits === undefined ? {} : { history: limits }) };
      const manager = new SessionManager(name, {
        push,
        history: limits === undefined ? () => undefined : constant({ store: ctx.history!, limits }),
        directory: ctx.directory,
        liveNodes: ctx.liveNodes,
        bound: this.#boundOf(name),
        maxPayloadBytes: Math.max(1024, ctx.maxFrameBytes - FRAME_OVERHEAD_BYTES),
      });
      const entry: WsServiceEntry = { name, instance, manager, requests, hasHooks };
      attachWsRuntime(instance, {
        sessionManager: manager,
        businessSessionIds: new BusinessSessionIds(manager),
        pushes: new TypedPush(hosted.contract, () => manager),
      });
      this.#services.set(name, entry);
    }
    ctx.frames.on(FrameType.SessionOpen, (frame, link) => this.#onOpen(frame, link));
    ctx.frames.on(FrameType.SessionMessage, (frame) => this.#onMessage(frame));
    ctx.frames.on(FrameType.SessionRequest, (frame, link) => this.#onRequest(frame, link));
    ctx.frames.on(FrameType.SessionClosed, (frame) => this.#onClosed(frame));
    ctx.links.onLinkClosed((link) => this.#onLinkClosed(link));
  }

  async start(): Promise<void> {
    const directory = this.#ctx.directory;
    for (const name of this.#services.keys()) await directory.watch(name);
  }

  /** Tells gateways to close the sessions bound here: clients reconnect and land on another host. */
  stop(): void {
    for (const { session } of [...this.#opening.values()]) {
      this.#forgetOpening(session.id);
      this.#reject(session.link, session.id, new WeftError('Draining', 'this host is stopping'));
    }
    for (const session of [...this.#sessions.values()]) {
      const link = session.link;
      if (link.isOpen) {
        try {
          link.send([FrameType.SessionClose, session.id, 1012, 'service restart']);
        } catch {
          // link going away: the gateway closes the session itself
        }
      }
      this.#end(session, 1012, 'service restart');
    }
  }

  /** The sessions of one service bound to this host, for its SessionManager. */
  #boundOf(service: string): BoundSessions {
    const sessions = this.#sessions;
    return {
      get: (id) => {
        const s = sessions.get(id);
        return s?.service === service ? s : undefined;
      },
      *values() {
        for (const s of sessions.values()) if (s.service === service) yield s;
      },
    };
  }

  #reject(link: PeerLink, sessionId: string, error: WeftError): void {
    if (!link.isOpen) return;
    try {
      link.send([FrameType.SessionReject, sessionId, toWire(error)]);
    } catch {
      // link full or closing: the gateway's own deadline answers its client
    }
  }

  /** Drops a session whose onOpen is running; true if it was. */
  #forgetOpening(sessionId: string): boolean {
    const opening = this.#opening.get(sessionId);
    if (opening === undefined) return false;
    clearTimeout(opening.timer);
    this.#opening.delete(sessionId);
    return true;
  }

  #onOpen(frame: SessionOpenFrame, link: PeerLink): void {
    const [, sessionId, serviceName, businessId, handshake] = frame;
    const service = this.#services.get(serviceName);
    if (service === undefined) return this.#reject(link, sessionId, new WeftError('NotFound', `no WebSocket service ${serviceName} on this host`));
    if (this.#ctx.isDraining()) return this.#reject(link, sessionId, new WeftError('Draining', 'this host is stopping'));
    const accept = (session?: HostSession): void => {
      if (!link.isOpen) return;
      // Known here at once, so a push right after the client sees the handshake finds it
      // (the directory's own update may still be on its way).
      this.#ctx.directory.bind(serviceName, businessId, sessionId, link.peerNodeId);
      // Just before the accept, on the same link: the gateway has it when it writes the session's entry.
      if (session?.metadataJson !== undefined) link.send([FrameType.SessionMetadata, sessionId, session.metadataJson]);
      link.send([FrameType.SessionAccept, sessionId]);
    };
    if (!service.hasHooks) {
      accept();
      return;
    }
    const session = new HostSession(sessionId, businessId, link, handshake, service.manager, this.#ctx.maxSessionMetadataBytes);
    // The gateway answers its client 504 at this deadline; past it, the session is given up here
    // too, and an onOpen that settles later is ignored.
    const timeoutMs = openTimeoutOf(handshake);
    const timer = setTimeout(() => {
      if (this.#opening.get(sessionId)?.session !== session) return;
      this.#opening.delete(sessionId);
      this.#ctx.logger.warn({ sessionId, service: serviceName, timeoutMs }, 'onOpen did not settle in time; session given up');
      this.#reject(link, sessionId, new WeftError('Timeout', `onOpen did not settle within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    this.#opening.set(sessionId, { session, timer });
    // A child of the handshake's traceparent, when the client sent one.
    const traced = startSpan('weft.session.onOpen', SpanKind.SERVER, contextFrom(handshake.traceparent), { 'weft.service': serviceName });
    const opened = (): void => {
      endSpan(traced.span);
      session.metadataSealed = true;
      // Else given up (deadline, client gone, link lost) while onOpen ran.
      if (this.#opening.get(sessionId)?.session !== session) return;
      this.#forgetOpening(sessionId);
      session.inbox = this.#inboxOf(session, service, maxQueuedMessagesOf(handshake));
      this.#sessions.set(sessionId, session);
      accept(session);
    };
    const refuse = (e: unknown): void => {
      session.metadataSealed = true;
      const error = toWeftError(e);
      endSpan(traced.span, error.code);
      if (error.code === 'ServerError') this.#ctx.logger.error({ err: e, sessionId, service: serviceName }, 'onOpen threw');
      if (this.#opening.get(sessionId)?.session !== session) return;
      this.#forgetOpening(sessionId);
      this.#reject(link, sessionId, error);
    };
    try {
      const result = withContext(traced.ctx, () => service.instance.onOpen(session));
      if (result instanceof Promise) {
        result.then(opened, refuse).catch((err: unknown) => this.#ctx.logger.warn({ err, sessionId }, 'could not answer a session open'));
      } else opened();
    } catch (e) {
      refuse(e);
    }
  }

  /**
   * The session's client messages: onMessage for one at a time, in order;
   * the gateway hears how many ran (SessionHandled) so it reads its client again.
   */
  #inboxOf(session: HostSession, service: WsServiceEntry, bound: number): MessageQueue<ClientInput> {
    const { instance, requests } = service;
    const link = session.link;
    let unsent = 0;
    let waiting = false;
    const tell = (): void => {
      if (unsent === 0 || !link.isOpen) return;
      try {
        link.send([FrameType.SessionHandled, session.id, unsent]);
        unsent = 0;
      } catch {
        // The link is full: the count waits for it to drain (lost, the gateway would never read its client again).
        if (waiting) return;
        waiting = true;
        link.onceDrained(() => {
          waiting = false;
          tell();
        });
      }
    };
    return new MessageQueue<ClientInput>(bound, {
      run: (message) =>
        typeof message === 'string' || Buffer.isBuffer(message)
          ? this.#hook(session, () => instance.onMessage(session, message))
          : requests.run(session, message),
      handled: (count) => {
        unsent += count;
        tell();
      },
    });
  }

  #onMessage(frame: SessionMessageFrame): void {
    const session = this.#sessions.get(frame[1]);
    if (session === undefined) {
      // Ended here (closed, or past its window) while the message travelled, or this host restarted.
      countClientMessageDrop('unknown_session');
      this.#warnings.warn({ sessionId: frame[1] }, 'dropped a client message: no such session on this host');
      return;
    }
    const data = Buffer.isBuffer(frame[2]) ? frame[2] : Buffer.from(frame[2]);
    const message = frame[3] ? data.toString('utf8') : data;
    if (!session.inbox!.push(message)) this.#overflow(session);
  }

  /** A weft.v1 client's request: queued behind the session's messages, like one. */
  #onRequest(frame: SessionRequestFrame, link: PeerLink): void {
    const [, sessionId, id, name, body] = frame;
    const session = this.#sessions.get(sessionId);
    if (session === undefined) {
      countClientMessageDrop('unknown_session');
      this.#warnings.warn({ sessionId }, 'dropped a client request: no such session on this host');
      // Its client may still be waiting: tell it rather than let its call time out.
      const error = new WeftError('ServiceUnavailable', 'the session is not open on its host; reconnect');
      try {
        if (link.isOpen) link.send([FrameType.SessionReply, sessionId, id, false, Buffer.from(JSON.stringify(toWire(error)))]);
      } catch {
        // link full or closing: the session ends with it
      }
      return;
    }
    if (!session.inbox!.push({ id, name, body })) this.#overflow(session);
  }

  /**
   * More messages wait than the gateway's window allows, which a gateway of
   * this version never sends: the session is closed with 1013 (try again
   * later) rather than let its queue grow.
   */
  #overflow(session: HostSession): void {
    countClientMessageDrop('queue_full');
    this.#warnings.warn(
      { sessionId: session.id, service: session.service, pending: session.inbox!.pending },
      'closing a session with 1013: more client messages than its window wait for onMessage',
    );
    const link = session.link;
    if (link.isOpen) {
      try {
        link.send([FrameType.SessionClose, session.id, QUEUE_FULL_CLOSE_CODE, QUEUE_FULL_REASON]);
      } catch {
        // link full or closing: the gateway ends the session when it learns the link is gone
      }
    }
    this.#end(session, QUEUE_FULL_CLOSE_CODE, QUEUE_FULL_REASON);
  }

  #onClosed(frame: SessionClosedFrame): void {
    const [, sessionId, code, reason, service, businessId] = frame;
    this.#ctx.directory.unbind(service, businessId, sessionId);
    // Still in onOpen: it never opened, so no onClose.
    if (this.#forgetOpening(sessionId)) return;
    const session = this.#sessions.get(sessionId);
    if (session !== undefined) this.#end(session, code, reason);
  }

  #onLinkClosed(link: PeerLink): void {
    for (const { session } of [...this.#opening.values()]) if (session.link === link) this.#forgetOpening(session.id);
    for (const session of [...this.#sessions.values()]) {
      if (session.link === link) this.#end(session, 1006, 'gateway link lost');
    }
  }

  #end(session: HostSession, code: number, reason: string): void {
    if (!this.#sessions.delete(session.id)) return;
    this.#ctx.directory.unbind(session.service, session.businessId, session.id);
    const instance = this.#services.get(session.service)!.instance;
    // After the messages already queued: hooks of one session never overlap.
    const close = (): void => void this.#hook(session, () => instance.onClose(session, code, reason), false);
    if (session.inbox === undefined) close();
    else session.inbox.end(close);
  }

  /**
   * Runs a hook; what it throws goes to onError and the log, never further.
   * Returns a promise that settles (never rejects) once the hook and its
   * onError did, when the hook is async.
   */
  #hook(session: WsSession, run: () => void | Promise<void>, reportToOnError = true): Promise<void> | undefined {
    const instance = this.#services.get(session.service)!.instance;
    const fail = (e: unknown): Promise<void> | undefined => {
      this.#ctx.logger.warn({ err: e, sessionId: session.id, service: session.service }, 'WebSocket hook threw');
      if (!reportToOnError) return undefined;
      try {
        const r = instance.onError(session, e);
        if (r instanceof Promise) return r.catch((err: unknown) => this.#ctx.logger.warn({ err }, 'onError threw'));
      } catch (err) {
        this.#ctx.logger.warn({ err }, 'onError threw');
      }
      return undefined;
    };
    try {
      const r = run();
      if (r instanceof Promise) return r.then(undefined, fail);
    } catch (e) {
      return fail(e);
    }
    return undefined;
  }
}

/**
 * Add it to a host's modules to serve WebSocket services.
 *
 * @example
 * createHost({ modules: [WebSocketModule], services: [implement(IWsTestAppService, new WsTestAppService())] })
 */
export const WebSocketModule: WeftModule = Object.freeze({
  name: 'WebSocket',
  setup: (ctx: HostContext) => new WebSocketRuntime(ctx),
});

/**
 * A ready startup module for a WebSocket host (the seed's `WsHostModule`).
 *
 * @example
 * createHost({ cluster, modules: [WsHostModule], services: [implement(IWsTestAppService, new WsTestAppService())] });
 */
export const WsHostModule: WeftModule = Object.freeze({
  name: 'WsHost',
  dependsOn: [WebSocketModule],
  setup: () => undefined,
});
