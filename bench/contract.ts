/**
 * The contracts the benchmarks serve. IBenchWsAppService is a WebSocket
 * service (path /api/benchws); IBenchRpcAppService a plain one (/api/benchrpc).
 */
import { Type, WsAppServiceBase, defineContract, param, type Implementation, type WsHistoryOptions } from '../src/index.js';

export const IBenchWsAppService = defineContract({
  name: 'IBenchWsAppService',
  methods: {
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
  },
});

export class BenchWsService extends WsAppServiceBase implements Implementation<typeof IBenchWsAppService> {
  push(businessId: string, payload: string): Promise<number> {
    return this.sessionManager.pushToBusiness(businessId, payload);
  }

  pushOnce(businessId: string, payload: string): Promise<number> {
    return this.sessionManager.pushToBusiness(businessId, payload);
  }

  count(): Promise<number> {
    return this.sessionManager.count();
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
