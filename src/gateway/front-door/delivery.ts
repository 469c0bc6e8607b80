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
    let delivered = 0;
    switch (frame[0]) {
      case FrameType.PushSession: {
        const session = sessions.get(frame[2]);
        return session !== undefined && this.deliver(session, dataFrame(frame[3], frame[4])) ? 1 : 0;
      }
      case FrameType.PushBusiness: {
        let wsFrame: Buffer | undefined;
        sessions.forBusiness(frame[2], frame[3], (session) => {
          if (this.deliver(session, (wsFrame ??= dataFrame(frame[4], frame[5])))) delivered += 1;
        });
        return delivered;
      }
      case FrameType.PushService: {
        let wsFrame: Buffer | undefined;
        sessions.forService(frame[2], (session) => {
          if (this.deliver(session, (wsFrame ??= dataFrame(frame[3], frame[4])))) delivered += 1;
        });
        return delivered;
      }
    }
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
