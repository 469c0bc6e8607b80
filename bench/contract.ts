/**
 * The contracts the benchmarks serve. IBenchWsAppService is a WebSocket
 * service (path /api/benchws); IBenchRpcAppService a plain one (/api/benchrpc).
 */
import { Type, WsAppServiceBase, defineContract, param, type Implementation, type WsHistoryOptions } from '../src/index.js';

const benchWsMethods = {
  /** Pushes `payload` to every session of `businessId`; GET /api/benchws/push?businessId=&payload= */
  push: {
    params: [param('businessId', Type.String({ minLength: 1 })), param('payload', Type.String())],
    returns: Type.Integer(),
    select: { hashBy: 'businessId' },
  },
  /**
   * push, declared not idempotent (a POST): when a host dies with the call in flight the caller
   * hears an error instead of the call running again on another host (a second copy of the push).
   * The cluster scenario's kill phase counts copies, so it pushes with this one.
   */
  pushOnce: {
    params: [param('businessId', Type.String({ minLength: 1 })), param('payload', Type.String())],
    returns: Type.Integer(),
    select: { hashBy: 'businessId' },
    idempotent: false,
  },
  /** Sessions of this service across the cluster, as this host's directory replica sees them. */
  count: { params: [], returns: Type.Integer() },
  /** Puts every session of the service in `room`; how many joined. The room push rows. */
  joinRoom: { params: [param('room', Type.String({ minLength: 1 }))], returns: Type.Integer() },
  /** Pushes `payload` to every member of `room`, on every gateway. */
  pushRoom: { params: [param('room', Type.String({ minLength: 1 })), param('payload', Type.String())], returns: Type.Integer() },
};

export const IBenchWsAppService = defineContract({ name: 'IBenchWsAppService', methods: benchWsMethods });

/**
 * The same service taking client messages: the request-reply rows (a weft/client `call('ping', { t })`
 * answered with `t`). Only request-reply's host serves it: a service with messages keeps its sessions
 * on its host (as one with hooks does), which the push and sessions rows must not pay for.
 */
export const IBenchWsCallAppService = defineContract({
  name: 'IBenchWsAppService',
  methods: benchWsMethods,
  messages: {
    ping: { params: Type.Object({ t: Type.String() }), returns: Type.String() },
  },
});

export class BenchWsService extends WsAppServiceBase<typeof IBenchWsAppService> implements Implementation<typeof IBenchWsAppService> {
  push(businessId: string, payload: string): Promise<number> {
    return this.sessionManager.pushToBusiness(businessId, payload);
  }

  pushOnce(businessId: string, payload: string): Promise<number> {
    return this.sessionManager.pushToBusiness(businessId, payload);
  }

  count(): Promise<number> {
    return this.sessionManager.count();
  }

  async joinRoom(room: string): Promise<number> {
    const sessions = await this.sessionManager.list();
    const joined = await Promise.all(sessions.map((s) => this.sessionManager.join(s.sessionId, room)));
    return joined.filter(Boolean).length;
  }

  pushRoom(room: string, payload: string): Promise<number> {
    return this.sessionManager.pushToRoom(room, payload);
  }

  ping(params: { t: string }): string {
    return params.t;
  }
}

/** The same service keeping no history (`static history = false`): pushes skip the history write. */
export class BenchWsNoHistoryService extends BenchWsService {
  static override history: Partial<WsHistoryOptions> | false = false;
}

export const BenchItem = Type.Object({ id: Type.String(), name: Type.String(), qty: Type.Integer(), ok: Type.Boolean() });

export const IBenchRpcAppService = defineContract({
  name: 'IBenchRpcAppService',
  methods: {
    /** A small object; GET /api/benchrpc/item?id= */
    getItem: { params: [param('id', Type.String())], returns: BenchItem },
  },
});

export function benchItem(id: string): { id: string; name: string; qty: number; ok: boolean } {
  return { id, name: 'bench item', qty: 3, ok: true };
}
