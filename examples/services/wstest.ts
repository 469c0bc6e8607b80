/**
 * The seed's WebSocket service. Clients connect to
 * `ws://<gateway>/api/wstest?businessId=100`; `echo(businessId, msg)` sends
 * `message:<msg>,sessionId:<id>` to every session of that businessId,
 * wherever it is connected, or refuses with a BusinessException.
 * `notify(businessId, msg)` pushes `msg` to the whole businessId with
 * history: each push gets a position, and a weft/client that was away gets
 * what it missed when it reconnects (to any gateway).
 */
import { BusinessException, Type, WsAppServiceBase, defineContract, param, type Implementation, type WsSession } from 'weft';

export const IWsTestAppService = defineContract({
  name: 'IWsTestAppService',
  methods: {
    echo: {
      params: [param('businessId', Type.String({ minLength: 1 })), param('msg', Type.String())],
      // How many sessions it reached.
      returns: Type.Integer(),
      // Calls for one businessId go to the host its sessions are bound to.
      select: { hashBy: 'businessId' },
    },
    notify: {
      params: [param('businessId', Type.String({ minLength: 1 })), param('msg', Type.String())],
      // How many sessions it was written to now; clients away get it when they resume.
      returns: Type.Integer(),
    },
  },
});

export class WsTestAppService extends WsAppServiceBase implements Implementation<typeof IWsTestAppService> {
  async echo(businessId: string, msg: string): Promise<number> {
    const sessionIds = await this.businessSessionIds.get(businessId);
    if (sessionIds.length === 0) {
      throw new BusinessException(`no session exists for businessId ${businessId}`);
    }
    const sent = await Promise.all(sessionIds.map((id) => this.sessionManager.sendTo(`message:${msg},sessionId:${id}`, id)));
    return sent.filter(Boolean).length;
  }

  notify(businessId: string, msg: string): Promise<number> {
    return this.sessionManager.pushToBusiness(businessId, msg);
  }

  // As in Silky's WsHostDemo: what a client sends comes back to it.
  override async onMessage(session: WsSession, message: string | Buffer): Promise<void> {
    if (typeof message === 'string') await session.send(`message:${message},sessionId:${session.id}`);
  }
}
