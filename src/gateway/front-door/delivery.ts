/**
 * Delivery of prepared frames to client sockets: queued while a session
 * opens, corked per tick (many pushes to one socket in a tick leave in one
 * write), and a client that does not read is evicted before it can hold the
 * gateway's memory.
 */
import type { Duplex } from 'node:stream';
import { FrameType, type PushFrame } from '../../protocol/frames.js';
import { SessionState, type GatewaySession, type GatewaySessions } from './gateway-sessions.js';
import { dataFrame, unsentBytes, writeFrame } from './raw-frames.js';

export interface DeliveryOptions {
  /** Unread bytes a client may have before it is evicted; also the cap of the opening queue. */
  maxBufferedBytes: number;
  /** Called once for a client found too slow; the session is already marked Evicting. */
  evict: (session: GatewaySession) => void;
}

const EMPTY = new Uint8Array(0);

export class Delivery {
  readonly #o: DeliveryOptions;
  #corked: Duplex[] = [];
  #tick = 1;
  readonly #uncork = (): void => this.#uncorkAll();

  constructor(options: DeliveryOptions) {
    this.#o = options;
  }

  /** Writes one prepared frame to a client. Returns whether it was taken. */
  deliver(session: GatewaySession, frame: Buffer): boolean {
    if (session.state === SessionState.Opening) {
      if (session.queuedBytes + frame.length > this.#o.maxBufferedBytes) return false;
      (session.queue ??= []).push(frame);
      session.queuedBytes += frame.length;
      return true;
    }
    // readyState guards the moment between a close frame and the 'close' event.
    if (session.state !== SessionState.Open || session.ws!.readyState !== 1) return false;
    const socket = session.socket;
    if (session.corkTick !== this.#tick) {
      session.corkTick = this.#tick;
      session.tickBytes = 0;
      socket.cork();
      if (this.#corked.push(socket) === 1) setImmediate(this.#uncork);
    }
    // What earlier ticks wrote and the client has not read yet: the measure of a slow client.
    if (unsentBytes(socket) - session.tickBytes > this.#o.maxBufferedBytes) {
      session.state = SessionState.Evicting;
      this.#o.evict(session);
      return false;
    }
    session.tickBytes += frame.length;
    writeFrame(socket, frame);
    return true;
  }

  /**
   * Delivers a push frame to the sessions it names here; returns how many it
   * reached. The client frame is built once for all of them.
   */
  push(frame: PushFrame, sessions: GatewaySessions): number {
    switch (frame[0]) {
      case FrameType.PushSession: {
        const session = sessions.get(frame[2]);
        return session !== undefined && this.deliver(session, dataFrame(frame[3], frame[4])) ? 1 : 0;
      }
      case FrameType.PushBusiness:
        this.#startVisit(frame[4], frame[5]);
        sessions.forBusiness(frame[2], frame[3], this.#visit);
        return this.#delivered;
      case FrameType.PushService:
        this.#startVisit(frame[3], frame[4]);
        sessions.forService(frame[2], this.#visit);
        return this.#delivered;
    }
  }

  // The push being delivered is held in fields, so visiting its sessions allocates no closure.
  #visiting: Buffer | undefined;
  #visitPayload: Uint8Array = EMPTY;
  #visitText = false;
  #delivered = 0;
  readonly #visit = (session: GatewaySession): void => {
    // Built on the first session it goes to: once per push, and not at all when there is none.
    this.#visiting ??= dataFrame(this.#visitPayload, this.#visitText);
    if (this.deliver(session, this.#visiting)) this.#delivered += 1;
  };

  #startVisit(payload: Uint8Array, text: boolean): void {
    this.#visiting = undefined;
    this.#visitPayload = payload;
    this.#visitText = text;
    this.#delivered = 0;
  }

  /** The session just opened: what was queued while it opened goes out now, in order. */
  flushQueue(session: GatewaySession): void {
    const queue = session.queue;
    if (queue === undefined) return;
    session.queue = undefined;
    session.queuedBytes = 0;
    for (const frame of queue) this.deliver(session, frame);
  }

  #uncorkAll(): void {
    const corked = this.#corked;
    this.#corked = [];
    this.#tick += 1;
    for (const socket of corked) socket.uncork();
  }
}
