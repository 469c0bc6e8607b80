/**
 * Rooms on a gateway: the members of each room among the sessions it holds,
 * and delivery of room pushes to them.
 *
 * Membership lives here because the sockets do. A service asks the gateway
 * of a session to join it to a room (RoomJoin, from any node); the first
 * member of a room on this gateway makes the directory record "room R has
 * members on this gateway", and the join is answered (RoomAck) only once
 * that record is written, so a push made after the join resolved, from any
 * node, finds this gateway. The last member to leave removes the record.
 * A session leaves all its rooms when it closes.
 *
 * A room push (PushRoom) is written to every member here through the one
 * write path of delivery.ts and acknowledged with how many it reached, as a
 * businessId push is. For a weft.v1 member it carries the room's name and
 * its position in the room's stream; a member whose client sent a position
 * for the room (`?roomSince=` at the handshake) gets what it missed replayed
 * when the service joins it to the room again. Pushes that come while a
 * member waits (its session still opening, or its room's history being
 * read) are queued for it and counted once written.
 */
import type { SessionDirectory } from '../../directory/session-directory.js';
import type { HistoryRead, Position } from '../../history/history-store.js';
import type { Logger } from '../../logger.js';
import { FrameType, type PushRoomFrame, type RoomJoinFrame, type RoomLeaveFrame, type RoomSizeFrame } from '../../protocol/frames.js';
import { ROOM_REFUSED, ROOM_UNAVAILABLE, roomProblem, roomStream } from '../../protocol/room-names.js';
import { roomBytes, type ServerControl } from '../../protocol/weft-v1.js';
import type { FrameRoutes, PeerLink } from '../../transport/peer-link.js';
import { AckTally, type SendAck } from './ack-tally.js';
import { DEFERRED, MISSED, REACHED, type Delivery, type Outcome } from './delivery.js';
import { SessionState, type GatewaySession, type GatewaySessions } from './gateway-sessions.js';
import { dataFrame, v1RoomPushFrame } from './raw-frames.js';

export interface GatewayRoomsOptions {
  /** Rooms one session may be in at once (`websocket.maxRoomsPerSession`). */
  maxRoomsPerSession: number;
  /** Longest room name, in characters (`websocket.maxRoomNameLength`). */
  maxRoomNameLength: number;
  /** Bytes of pushes one member may have waiting (the session's `websocket.maxBufferedBytes`). */
  maxBufferedBytes: number;
}

export interface GatewayRoomsDeps {
  frames: FrameRoutes;
  sessions: GatewaySessions;
  directory: SessionDirectory;
  delivery: Delivery;
  /** Sends a push's acknowledgement (PushAck) to the node that pushed it. */
  ack: SendAck;
  /** Reads a room's history after `since` for a weft.v1 session (undefined: the service keeps none, or there is no store). */
  readHistory: (session: GatewaySession, stream: string, room: string, since: Position | undefined) => Promise<HistoryRead | undefined>;
  logger: Logger;
}

interface QueuedRoomPush {
  readonly payload: Uint8Array;
  readonly text: boolean;
  readonly epoch: string;
  readonly offset: number;
  readonly tally: AckTally | undefined;
}

interface Member {
  readonly session: GatewaySession;
  readonly room: string;
  /** The room's name as it goes in envelopes (weft.v1). */
  readonly name: Uint8Array;
  /** Pushes are written at once; until then they wait in `queue`. */
  ready: boolean;
  /**
   * The directory entry for its room is written: only then may its history
   * be read (a push kept after that read finds this gateway in the directory).
   */
  applied: boolean;
  /** Its start ran (the session was ready and the join applied): once per member, whichever came last. */
  started: boolean;
  /**
   * weft.v1: the room stream's epoch, and the last offset written from its
   * history when the member started (its replay). Live pushes are written in
   * arrival order (two hosts' pushes may cross: no gap wait here); only one
   * at or below this offset is a copy of what was replayed.
   */
  epoch: string;
  offset: number;
  /** Offsets up to this one were never written to this client (it joined after them): not counted as reached. */
  base: number;
  queue: QueuedRoomPush[] | undefined;
  queuedBytes: number;
  left: boolean;
}

interface Room {
  readonly members: Map<string, Member>;
  /** The directory entry of this gateway for the room: settles once lookups see it. */
  written: Promise<void>;
}

export class GatewayRooms {
  readonly #d: GatewayRoomsDeps;
  readonly #o: GatewayRoomsOptions;
  /** service -> room -> members */
  readonly #rooms = new Map<string, Map<string, Room>>();
  /** sessionId -> room -> its membership */
  readonly #ofSession = new Map<string, Map<string, Member>>();

  constructor(deps: GatewayRoomsDeps, options: GatewayRoomsOptions) {
    this.#d = deps;
    this.#o = options;
    deps.frames.on(FrameType.RoomJoin, (frame, link) => this.#join(frame, link));
    deps.frames.on(FrameType.RoomLeave, (frame, link) => this.#leaveRequest(frame, link));
    deps.frames.on(FrameType.RoomSize, (frame, link) => this.#size(frame, link));
    deps.frames.on(FrameType.PushRoom, (frame, link) => this.#push(frame, link));
    const rooms = this.#rooms;
    deps.directory.setHeldRooms?.(function* () {
      for (const [service, byName] of rooms) for (const room of byName.keys()) yield [service, room] as const;
    });
  }

  /** The session is open and took its first message: its members start (replay, then what waited). */
  sessionReady(session: GatewaySession): void {
    if (session.state !== SessionState.Open) return;
    session.roomsReady = true;
    for (const member of this.#ofSession.get(session.id)?.values() ?? []) this.#start(member);
  }

  /** The session ended (or never opened): it leaves every room. */
  sessionClosed(session: GatewaySession): void {
    const mine = this.#ofSession.get(session.id);
    if (mine === undefined) return;
    this.#ofSession.delete(session.id);
    for (const member of [...mine.values()]) this.#remove(member, false);
  }

  #answer(link: PeerLink, ackId: number, result: number, error = ''): void {
    if (ackId === 0 || !link.isOpen) return;
    try {
      link.send([FrameType.RoomAck, ackId, result, error]);
    } catch {
      // The asking node's own timeout settles it.
    }
  }

  #join(frame: RoomJoinFrame, link: PeerLink): void {
    const [, ackId, sessionId, room] = frame;
    const session = this.#d.sessions.get(sessionId);
    if (session === undefined || (session.state !== SessionState.Opening && session.state !== SessionState.Open)) {
      return this.#answer(link, ackId, 0);
    }
    const problem = roomProblem(room, this.#o.maxRoomNameLength);
    if (problem !== undefined) return this.#answer(link, ackId, ROOM_REFUSED, problem);
    let mine = this.#ofSession.get(sessionId);
    const already = mine?.get(room);
    if (already !== undefined) {
      const written = this.#roomOf(session.service, room)?.written ?? Promise.resolve();
      void written.then(
        () => this.#answer(link, ackId, 1),
        () => this.#answer(link, ackId, ROOM_UNAVAILABLE, 'the room could not be written in the session directory'),
      );
      return;
    }
    if ((mine?.size ?? 0) >= this.#o.maxRoomsPerSession) {
      return this.#answer(
        link,
        ackId,
        ROOM_REFUSED,
        `session ${sessionId} is in ${this.#o.maxRoomsPerSession} rooms, the most it may (websocket.maxRoomsPerSession)`,
      );
    }
    const member: Member = {
      session,
      room,
      name: roomBytes(room),
      ready: false,
      applied: false,
      started: false,
      epoch: '',
      offset: 0,
      base: 0,
      queue: undefined,
      queuedBytes: 0,
      left: false,
    };
    if (mine === undefined) this.#ofSession.set(sessionId, (mine = new Map<string, Member>()));
    mine.set(room, member);
    let byName = this.#rooms.get(session.service);
    if (byName === undefined) this.#rooms.set(session.service, (byName = new Map<string, Room>()));
    let entry = byName.get(room);
    if (entry === undefined) {
      const directory = this.#d.directory;
      const written = directory.addRoom?.(session.service, room) ?? Promise.reject(new Error('this cluster’s session directory keeps no rooms'));
      entry = { members: new Map(), written };
      byName.set(room, entry);
    }
    entry.members.set(sessionId, member);
    entry.written.then(
      () => {
        if (member.left) return this.#answer(link, ackId, 0);
        member.applied = true;
        this.#answer(link, ackId, 1);
        if (session.roomsReady) this.#start(member);
      },
      (err: unknown) => {
        this.#d.logger.debug({ err: (err as Error).message, room }, 'could not write a room in the session directory; join refused');
        if (!member.left) this.#remove(member, false);
        this.#answer(link, ackId, ROOM_UNAVAILABLE, `the room could not be written in the session directory (${(err as Error).message})`);
      },
    );
  }

  #roomOf(service: string, room: string): Room | undefined {
    return this.#rooms.get(service)?.get(room);
  }

  #leaveRequest(frame: RoomLeaveFrame, link: PeerLink): void {
    const [, ackId, sessionId, room] = frame;
    const member = this.#ofSession.get(sessionId)?.get(room);
    if (member === undefined) return this.#answer(link, ackId, 0);
    this.#remove(member, true);
    this.#answer(link, ackId, 1);
  }

  /** Takes a member out of its room; the room's directory entry goes with its last member here. */
  #remove(member: Member, tellClient: boolean): void {
    member.left = true;
    const { session, room } = member;
    const mine = this.#ofSession.get(session.id);
    if (mine?.get(room) === member) {
      mine.delete(room);
      if (mine.size === 0) this.#ofSession.delete(session.id);
    }
    const queue = member.queue;
    member.queue = undefined;
    member.queuedBytes = 0;
    for (const item of queue ?? []) item.tally?.settle(false);
    const byName = this.#rooms.get(session.service);
    const entry = byName?.get(room);
    if (entry !== undefined && entry.members.get(session.id) === member) {
      entry.members.delete(session.id);
      if (entry.members.size === 0) {
        byName!.delete(room);
        if (byName!.size === 0) this.#rooms.delete(session.service);
        this.#d.directory.removeRoom?.(session.service, room);
      }
    }
    if (tellClient && session.v1 !== undefined && session.roomsReady) {
      this.#d.delivery.control(session, { type: 'room', room, joined: false } satisfies ServerControl);
    }
  }

  #size(frame: RoomSizeFrame, link: PeerLink): void {
    const [, ackId, service, room] = frame;
    let n = 0;
    for (const member of this.#roomOf(service, room)?.members.values() ?? []) {
      const state = member.session.state;
      if (state === SessionState.Open || state === SessionState.Opening) n += 1;
    }
    this.#answer(link, ackId, n);
  }

  /**
   * A member whose session is ready: a bare one takes what waited; a weft.v1
   * one first learns where the room's stream stands (and gets what it
   * missed, when its client sent a position for the room), then what waited.
   */
  #start(member: Member): void {
    if (member.started || member.left || !member.applied) return;
    member.started = true;
    const session = member.session;
    const v1 = session.v1;
    if (v1 === undefined) {
      member.ready = true;
      return this.#flush(member);
    }
    const since = v1.roomSince?.get(member.room);
    // Used once: a later join to the room in this session starts where it stands.
    if (since !== undefined) v1.roomSince!.delete(member.room);
    this.#d.readHistory(session, roomStream(session.service), member.room, since).then(
      (read) => this.#caughtUp(member, since, read),
      () => this.#caughtUp(member, since, undefined),
    );
  }

  #caughtUp(member: Member, since: Position | undefined, read: HistoryRead | undefined): void {
    if (member.left || member.session.state !== SessionState.Open) return;
    const session = member.session;
    const recovered = since !== undefined && read?.recovered === true;
    let replayed = 0;
    if (read !== undefined) {
      member.epoch = read.top.epoch;
      member.offset = recovered ? since.offset : read.top.offset;
      // A push kept just before the top was read but queued here is this client's: start before it.
      for (const q of member.queue ?? []) if (q.epoch === member.epoch && q.offset <= member.offset) member.offset = q.offset - 1;
      member.base = member.offset;
    }
    const control: ServerControl = {
      type: 'room',
      room: member.room,
      joined: true,
      position: read === undefined ? null : { epoch: member.epoch, offset: member.offset },
      recovered,
      replayed: 0,
    };
    if (since !== undefined && !recovered) {
      if (read === undefined) control.reason = session.v1!.historyTtlMs === 0 ? 'no-history' : 'history-unavailable';
      else if (!read.recovered) control.reason = read.reason;
    }
    if (recovered && read?.recovered === true) replayed = read.entries.filter((e) => e.offset > member.offset).length;
    control.replayed = replayed;
    this.#d.delivery.control(session, control);
    if (recovered && read?.recovered === true) {
      for (const entry of read.entries) {
        if (entry.offset <= member.offset) continue;
        if (!this.#d.delivery.writePush(session, v1RoomPushFrame(entry.payload, entry.text, member.name, member.epoch, entry.offset), true)) break;
        member.offset = entry.offset;
      }
    }
    member.ready = true;
    this.#flush(member);
  }

  /** Writes what waited for a member that is ready now, in order, and settles each push's tally. */
  #flush(member: Member): void {
    const queue = member.queue;
    member.queue = undefined;
    member.queuedBytes = 0;
    if (queue === undefined) return;
    queue.sort((a, b) => (a.epoch === b.epoch ? a.offset - b.offset : 0));
    for (const item of queue) item.tally?.settle(this.#offerTo(member, item.payload, item.text, item.epoch, item.offset, undefined) === REACHED);
  }

  // The push being delivered, so the frames are built once per push for every member here.
  #rawFrame: Buffer | undefined;
  #v1Frame: Buffer | undefined;

  #push(frame: PushRoomFrame, link: PeerLink): void {
    const [, ackId, service, room, payload, text, epoch, offset] = frame;
    const entry = this.#roomOf(service, room);
    let reached = 0;
    let tally: AckTally | undefined;
    this.#rawFrame = undefined;
    this.#v1Frame = undefined;
    if (entry !== undefined) {
      for (const member of entry.members.values()) {
        let outcome: Outcome;
        if (!member.ready) {
          if (member.queuedBytes + payload.length > this.#o.maxBufferedBytes) outcome = MISSED;
          else {
            if (ackId !== 0) tally ??= new AckTally(link, ackId, this.#d.ack);
            (member.queue ??= []).push({ payload, text, epoch, offset, tally });
            member.queuedBytes += payload.length;
            outcome = DEFERRED;
          }
        } else outcome = this.#offerTo(member, payload, text, epoch, offset, this);
        if (outcome === REACHED) reached += 1;
        else if (outcome === DEFERRED) tally?.defer();
      }
    }
    this.#rawFrame = undefined;
    this.#v1Frame = undefined;
    if (tally !== undefined) tally.arm(reached);
    else if (ackId !== 0) this.#d.ack(link, ackId, reached);
  }

  /** Writes one room push to a ready member; `shared`: reuse the frames of the push being delivered. */
  #offerTo(member: Member, payload: Uint8Array, text: boolean, epoch: string, offset: number, shared: this | undefined): Outcome {
    const session = member.session;
    if (session.state !== SessionState.Open) return MISSED;
    if (session.v1 === undefined) {
      const raw = shared === undefined ? dataFrame(payload, text) : (this.#rawFrame ??= dataFrame(payload, text));
      return this.#d.delivery.writePush(session, raw) ? REACHED : MISSED;
    }
    if (epoch !== '' && epoch === member.epoch && offset <= member.offset) {
      // Written already (replayed), or from before this member joined: not written again.
      return offset > member.base ? REACHED : MISSED;
    }
    const position = epoch === '' ? undefined : epoch;
    const frame =
      shared === undefined
        ? v1RoomPushFrame(payload, text, member.name, position, offset)
        : (this.#v1Frame ??= v1RoomPushFrame(payload, text, member.name, position, offset));
    if (!this.#d.delivery.writePush(session, frame)) return MISSED;
    if (epoch !== '' && epoch !== member.epoch) {
      // The room's history was lost (Redis restarted empty): the stream starts again in a new epoch.
      member.epoch = epoch;
      member.offset = 0;
      member.base = 0;
    }
    return REACHED;
  }
}
