/**
 * The base class of a WebSocket service, as in the seed: extend it and
 * implement a contract. Its methods are ordinary service methods (RPC and
 * HTTP); `sessionManager` and `businessSessionIds` reach its sessions across
 * the cluster; the hooks run on the host each session is bound to.
 */
import { WeftError } from '../errors.js';
import type { AnyContract } from '../contract/contract.js';
import { NEEDS_MODULE } from '../host/module.js';
import type { WsHistoryOptions } from './history-options.js';
import type { BusinessSessionIds, SessionManager } from './session-manager.js';
import type { TypedPush } from './typed-push.js';
import type { WsSession } from './ws-session.js';

/** @internal Marks WebSocket services without relying on `instanceof` across package copies. */
export const WS_SERVICE = Symbol.for('weft.ws-service');

/** @internal */
export interface WsServiceRuntime {
  sessionManager: SessionManager;
  businessSessionIds: BusinessSessionIds;
  pushes: TypedPush<AnyContract>;
}

/**
 * @example
 * class WsTestAppService extends WsAppServiceBase implements Implementation<typeof IWsTestAppService> {
 *   async echo(businessId: string, msg: string) {
 *     const ids = await this.businessSessionIds.get(businessId);
 *     if (ids.length === 0) throw new BusinessException(`no session exists for businessId ${businessId}`);
 *     const sent = await Promise.all(ids.map((id) => this.sessionManager.sendTo(`message:${msg},sessionId:${id}`, id)));
 *     return sent.filter(Boolean).length;
 *   }
 * }
 *
 * @example
 * // Name the contract to get typed pushes (`this.pushes`); a method per message is its handler.
 * class ShopAppService extends WsAppServiceBase<typeof IShopAppService> implements Implementation<typeof IShopAppService> {
 *   async ship(businessId: string, orderId: string) {
 *     return this.pushes.toBusiness(businessId, 'orderShipped', { orderId, at: Date.now() });
 *   }
 *   typing(params: { room: string }, session: WsSession) {
 *     return { seen: `${session.businessId} in ${params.room}` };
 *   }
 * }
 */
export abstract class WsAppServiceBase<C extends AnyContract = AnyContract> {
  /** @internal */
  static readonly [WS_SERVICE] = true;
  /** @internal */
  static readonly [NEEDS_MODULE] = 'WebSocket';

  /**
   * What is kept of the pushes to each businessId, so a `weft/client` that
   * reconnects gets what it missed (docs/delivery.md). Defaults: the last 100
   * pushes, for 120 s. `false` keeps nothing: pushes then skip the history
   * write, and a resuming client is told it did not recover.
   */
  static history?: Partial<WsHistoryOptions> | false;

  /** Sends to sessions of this service anywhere in the cluster. */
  protected get sessionManager(): SessionManager {
    return this.#need().sessionManager;
  }

  /** businessId -> its session ids, cluster-wide (async lookups). */
  protected get businessSessionIds(): BusinessSessionIds {
    return this.#need().businessSessionIds;
  }

  /**
   * The contract's named pushes, checked against their schemas and encoded
   * once (`extends WsAppServiceBase<typeof IMyService>` types them).
   */
  protected get pushes(): TypedPush<C> {
    return this.#need().pushes as unknown as TypedPush<C>;
  }

  /**
   * A client is connecting. Runs before the gateway completes the handshake:
   * throw a WeftError (Unauthenticated, Unauthorized, BusinessError...) to
   * refuse it with that error's HTTP status.
   *
   * @example
   * class ChatService extends WsAppServiceBase {
   *   override onOpen(session: WsSession) {
   *     if (session.query['room'] === undefined) throw new BusinessException('say which room: ?room=');
   *     session.state = { room: session.query['room'] };
   *   }
   * }
   */
  onOpen(_session: WsSession): void | Promise<void> {}

  /**
   * A message from the client: a string for a text frame, a Buffer for a binary one.
   *
   * @example
   * class EchoService extends WsAppServiceBase {
   *   override async onMessage(session: WsSession, message: string | Buffer) {
   *     await session.send(typeof message === 'string' ? `echo: ${message}` : message);
   *   }
   * }
   */
  onMessage(_session: WsSession, _message: string | Buffer): void | Promise<void> {}

  /**
   * The session ended (client left, gateway or this host going away).
   *
   * @example
   * class ChatService extends WsAppServiceBase {
   *   override onClose(session: WsSession, code: number, reason: string) {
   *     console.log(`${session.businessId} left (${code} ${reason})`);
   *   }
   * }
   */
  onClose(_session: WsSession, _code: number, _reason: string): void | Promise<void> {}

  /**
   * A hook of this session threw.
   *
   * @example
   * class ChatService extends WsAppServiceBase {
   *   override onError(session: WsSession, error: unknown) {
   *     console.error(`a hook of session ${session.id} threw`, error);
   *   }
   * }
   */
  onError(_session: WsSession, _error: unknown): void | Promise<void> {}

  #need(): WsServiceRuntime {
    const runtime = runtimes.get(this);
    if (runtime === undefined) {
      throw new WeftError('ServerError', `${this.constructor.name} is not running on a host with WebSocketModule`);
    }
    return runtime;
  }
}

/** Each service's runtime, set by WebSocketModule; a WeakMap keeps it off the service's own surface. */
const runtimes = new WeakMap<WsAppServiceBase, WsServiceRuntime>();

/** @internal Gives a service its session manager (WebSocketModule, at host construction). */
export function attachWsRuntime(service: WsAppServiceBase, runtime: WsServiceRuntime): void {
  runtimes.set(service, runtime);
}

/** @internal */
export function isWsService(instance: object): instance is WsAppServiceBase {
  return (instance.constructor as { [WS_SERVICE]?: boolean })[WS_SERVICE] === true;
}
