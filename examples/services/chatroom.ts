/**
 * A chat room: clients connect to `ws://<gateway>/api/<room>/chat?businessId=<name>`
 * and the service puts each session in its room in `onOpen`. `say` is a
 * typed message: weft/client's `await session.call('say', { text })` runs
 * the method of that name on the host the session is bound to, which
 * pushes a typed `said` to every member of the room, on every gateway, and
 * answers how many it reached. `members(room)` over HTTP
 * (`GET /api/<room>/chat/members`) counts them.
 */
import { Type, WsAppServiceBase, defineContract, param, type Implementation, type WsSession } from 'weft';

export const IChatAppService = defineContract({
  name: 'IChatAppService',
  route: 'api/{room}/{appservice}',
  methods: {
    members: { params: [param('room', Type.String({ minLength: 1, maxLength: 64 }))], returns: Type.Integer() },
  },
  pushes: {
    said: Type.Object({ from: Type.String(), text: Type.String(), at: Type.Integer() }, { description: 'Someone said something in the room.' }),
    joined: Type.Object({ who: Type.String(), members: Type.Integer() }, { description: 'Someone came in.' }),
  },
  messages: {
    say: {
      params: Type.Object({ text: Type.String({ minLength: 1, maxLength: 500 }) }),
      returns: Type.Object({ reached: Type.Integer() }),
      description: 'Says `text` to the room; the reply says how many sessions it reached.',
    },
  },
});

export class ChatAppService extends WsAppServiceBase<typeof IChatAppService> implements Implementation<typeof IChatAppService> {
  members(room: string): Promise<number> {
    return this.sessionManager.roomSize(room);
  }

  override async onOpen(session: WsSession): Promise<void> {
    const room = session.params['room']!;
    await session.join(room);
    const members = await this.sessionManager.roomSize(room);
    // Not awaited: the push counts this session only once it is open, which is after onOpen returns.
    void this.pushes.toRoom(room, 'joined', { who: session.businessId, members }).catch(() => undefined);
  }

  async say(params: { text: string }, session: WsSession): Promise<{ reached: number }> {
    const reached = await this.pushes.toRoom(session.params['room']!, 'said', { from: session.businessId, text: params.text, at: Date.now() });
    return { reached };
  }
}
