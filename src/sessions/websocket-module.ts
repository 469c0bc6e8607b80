/**
 * WebSocketModule turns a host into a WebSocket host: its WsAppServiceBase
 * services are announced with their WebSocket path, sessions that gateways
 * bind here run their hooks here, and every service gets a SessionManager
 * that reaches sessions anywhere in the cluster.
 */
import { WeftError, toWire, toWeftError } from '../errors.js';
import type { HostContext, ModuleInstance, WeftModule } from '../host/module.js';
import {
  FrameType,
  type SessionClosedFrame,
  type SessionMessageFrame,
  type SessionOpenFrame,
} from '../protocol/frames.js';
import type { Link } from '../transport/link.js';
import { PushClient } from './push-client.js';
import { BusinessSessionIds, SessionManager } from './session-manager.js';
import { isWsService, type WsAppServiceBase } from './ws-app-service.js';
import { HostSession } from './ws-session.js';

interface WsServiceEntry {
  name: string;
  instance: WsAppServiceBase;
  manager: SessionManager;
  bound: Map<string, HostSession>;
}

interface BoundSession {
  session: HostSession;
  service: WsServiceEntry;
  link: Link;
}

/** Pushes are capped below the link frame limit, leaving room for the frame's own fields. */
const FRAME_OVERHEAD_BYTES = 4096;

class WebSocketRuntime implements ModuleInstance {
  readonly #ctx: HostContext;
  readonly #services = new Map<string, WsServiceEntry>();
  readonly #sessions = new Map<string, BoundSession>();
  readonly #byLink = new Map<Link, Set<string>>();

  constructor(ctx: HostContext) {
    this.#ctx = ctx;
    const node = ctx.node;
    const push = new PushClient(node);
    for (const hosted of ctx.services) {
      if (!isWsService(hosted.instance)) continue;
      const name = hosted.contract.name;
      // Announced with its path so gateways can route WebSocket handshakes to it.
      (hosted.record as { websocket?: { path: string } }).websocket = { path: hosted.contract.basePath };
      const bound = new Map<string, HostSession>();
      const entry: WsServiceEntry = {
        name,
        instance: hosted.instance,
        bound,
        manager: new SessionManager(name, node, push, bound, Math.max(1024, node.maxFrameBytes - FRAME_OVERHEAD_BYTES)),
      };
      hosted.instance.attachWsRuntime({ sessionManager: entry.manager, businessSessionIds: new BusinessSessionIds(entry.manager) });
      this.#services.set(name, entry);
    }
    node.handle(FrameType.SessionOpen, (frame, link) => this.#onOpen(frame as SessionOpenFrame, link));
    node.handle(FrameType.SessionMessage, (frame) => this.#onMessage(frame as SessionMessageFrame));
    node.handle(FrameType.SessionClosed, (frame) => this.#onClosed(frame as SessionClosedFrame));
    node.onLinkClosed((link) => this.#onLinkClosed(link));
  }

  async start(): Promise<void> {
    const directory = this.#ctx.node.membership.directory;
    for (const name of this.#services.keys()) await directory.watch(name);
  }

  /** Tells gateways to close the sessions bound here: clients reconnect and land on another host. */
  stop(): void {
    for (const [id, bound] of this.#sessions) {
      if (bound.link.isOpen) {
        try {
          bound.link.send([FrameType.SessionClose, id, 1012, 'service restart']);
        } catch {
          // link going away: the gateway closes the session itself
        }
      }
      this.#end(id, 1012, 'service restart');
    }
  }

  #onOpen(frame: SessionOpenFrame, link: Link): void {
    const [, sessionId, serviceName, businessId, handshake] = frame;
    const reject = (error: WeftError): void => {
      if (link.isOpen) link.send([FrameType.SessionReject, sessionId, toWire(error)]);
    };
    const service = this.#services.get(serviceName);
    if (service === undefined) return reject(new WeftError('NotFound', `no WebSocket service ${serviceName} on this host`));
    if (this.#ctx.isDraining()) return reject(new WeftError('Draining', 'this host is stopping'));
    const session = new HostSession(sessionId, businessId, link.peerNodeId, handshake, service.manager);
    this.#sessions.set(sessionId, { session, service, link });
    service.bound.set(sessionId, session);
    let ids = this.#byLink.get(link);
    if (ids === undefined) this.#byLink.set(link, (ids = new Set()));
    ids.add(sessionId);
    const accept = (): void => {
      if (!this.#sessions.has(sessionId) || !link.isOpen) return; // closed while onOpen ran
      // Known here at once, so a push right after the client sees the handshake finds it
      // (the directory's own update may still be on its way).
      this.#ctx.node.membership.directory.index(serviceName).add(sessionId, businessId, link.peerNodeId);
      link.send([FrameType.SessionAccept, sessionId]);
    };
    const refuse = (e: unknown): void => {
      const error = toWeftError(e);
      if (error.code === 'ServerError') this.#ctx.logger.error({ err: e, sessionId, service: serviceName }, 'onOpen threw');
      this.#forget(sessionId);
      reject(error);
    };
    try {
      const result = service.instance.onOpen(session);
      if (result instanceof Promise) result.then(accept, refuse);
      else accept();
    } catch (e) {
      refuse(e);
    }
  }

  #onMessage(frame: SessionMessageFrame): void {
    const bound = this.#sessions.get(frame[1]);
    if (bound === undefined) return;
    const data = Buffer.isBuffer(frame[2]) ? frame[2] : Buffer.from(frame[2]);
    const message = frame[3] ? data.toString('utf8') : data;
    this.#hook(bound, () => bound.service.instance.onMessage(bound.session, message));
  }

  #onClosed(frame: SessionClosedFrame): void {
    this.#end(frame[1], frame[2], frame[3]);
  }

  #onLinkClosed(link: Link): void {
    const ids = this.#byLink.get(link);
    if (ids === undefined) return;
    this.#byLink.delete(link);
    for (const id of ids) this.#end(id, 1006, 'gateway link lost');
  }

  #end(sessionId: string, code: number, reason: string): void {
    const bound = this.#forget(sessionId);
    if (bound === undefined) return;
    this.#ctx.node.membership.directory.index(bound.service.name).remove(sessionId);
    this.#hook(bound, () => bound.service.instance.onClose(bound.session, code, reason), false);
  }

  #forget(sessionId: string): BoundSession | undefined {
    const bound = this.#sessions.get(sessionId);
    if (bound === undefined) return undefined;
    this.#sessions.delete(sessionId);
    bound.service.bound.delete(sessionId);
    this.#byLink.get(bound.link)?.delete(sessionId);
    return bound;
  }

  /** Runs a hook; what it throws goes to onError and the log, never further. */
  #hook(bound: BoundSession, run: () => void | Promise<void>, reportToOnError = true): void {
    const fail = (e: unknown): void => {
      this.#ctx.logger.warn({ err: e, sessionId: bound.session.id, service: bound.service.name }, 'WebSocket hook threw');
      if (!reportToOnError) return;
      try {
        const r = bound.service.instance.onError(bound.session, e);
        if (r instanceof Promise) r.catch((err: unknown) => this.#ctx.logger.warn({ err }, 'onError threw'));
      } catch (err) {
        this.#ctx.logger.warn({ err }, 'onError threw');
      }
    };
    try {
      const r = run();
      if (r instanceof Promise) r.catch(fail);
    } catch (e) {
      fail(e);
    }
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
 * createHost({ modules: [WsHostModule], services: [...] })
 */
export const WsHostModule: WeftModule = Object.freeze({
  name: 'WsHost',
  dependsOn: [WebSocketModule],
  setup: () => undefined,
});
