/**
 * A session's client messages on their way to its host, with back-pressure
 * instead of drops. The gateway lets at most `maxQueuedMessages` of a
 * session's messages wait for its onMessage (the host says how many it ran,
 * `SessionHandled`), and sends nothing over a link that is over its
 * high-water mark. At either bound it stops reading the client's socket, so
 * TCP makes the client wait; it reads again once the handler caught up or
 * the link drained. What ws had already read when the socket paused (at
 * most one socket read) is held here, in order, and sent first.
 *
 * A message is dropped only where no handler could run it, and each drop is
 * counted (`weft_client_messages_dropped_total`) and logged.
 */
import { WeftError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { countClientMessageDrop, counts, type ClientMessageDrop } from '../../metrics/metrics.js';
import { FrameType } from '../../protocol/frames.js';
import type { PeerLink } from '../../transport/peer-link.js';
import { WarnLimiter } from '../../transport/warn-limiter.js';
import { HEARD, SessionState, type GatewaySession, type HeldMessage } from './gateway-sessions.js';

export interface ClientMessagesOptions {
  /** Messages of one session that may wait for its onMessage (`websocket.maxQueuedMessages`). */
  maxQueuedMessages: number;
  logger: Logger;
  /** A session with hooks whose host link is gone: it must end (1012). */
  hostGone: (session: GatewaySession) => void;
  /** Answers a weft.v1 request that no host will run. */
  refuse: (session: GatewaySession, requestId: number, error: WeftError) => void;
}

/** A weft.v1 request held like a message: `data` is the client's request message (JSON). */
interface HeldRequest extends HeldMessage {
  readonly requestId: number;
  readonly name: string;
}

function isRequest(item: HeldMessage): item is HeldRequest {
  return (item as Partial<HeldRequest>).requestId !== undefined;
}

/** Drop warnings: at most one line per reason each interval, the rest counted in it. */
const DROP_WARN_INTERVAL_MS = 10_000;

export class ClientMessages {
  readonly #o: ClientMessagesOptions;
  readonly #warnings: WarnLimiter;
  /** Sessions waiting for a congested link to drain, by link: one drain listener per link, not per session. */
  readonly #waiting = new Map<PeerLink, Set<GatewaySession>>();

  constructor(options: ClientMessagesOptions) {
    this.#o = options;
    this.#warnings = new WarnLimiter(options.logger, DROP_WARN_INTERVAL_MS);
  }

  /** A client message for the session's host: sent, held (the client paused), or dropped where nothing could run it. */
  toHost(session: GatewaySession, data: Buffer, text: boolean): void {
    if (session.state !== SessionState.Open) return this.#drop(session, 'closed', 1);
    // Nothing on a host keeps a session of a service without hooks: no onMessage would run.
    if (!session.hooks) return this.#drop(session, 'no_handler', 1);
    const link = session.hostLink;
    if (link === undefined || !link.isOpen) {
      this.#drop(session, 'host_gone', 1);
      return this.#o.hostGone(session);
    }
    // Read after the pause: behind what is already held, in order.
    if (session.held !== undefined) {
      session.held.push({ data, text });
      return;
    }
    if (!this.#send(session, link, data, text, undefined)) {
      session.held = [{ data, text }];
      return this.#pause(session, link);
    }
    if (session.inFlight >= this.#o.maxQueuedMessages || link.congested) this.#pause(session, link);
  }

  /**
   * A weft.v1 request for the session's host: in the same window and order
   * as its messages. One that no host would run is answered at once.
   */
  request(session: GatewaySession, requestId: number, name: string, body: Buffer): void {
    if (session.state !== SessionState.Open) return this.#drop(session, 'closed', 1);
    if (!session.hooks) {
      return this.#o.refuse(session, requestId, new WeftError('NotFound', `${session.service} takes no messages`));
    }
    const link = session.hostLink;
    if (link === undefined || !link.isOpen) {
      this.#drop(session, 'host_gone', 1);
      return this.#o.hostGone(session);
    }
    const item: HeldRequest = { data: body, text: true, requestId, name };
    if (session.held !== undefined) {
      session.held.push(item);
      return;
    }
    if (!this.#send(session, link, body, true, item)) {
      session.held = [item];
      return this.#pause(session, link);
    }
    if (session.inFlight >= this.#o.maxQueuedMessages || link.congested) this.#pause(session, link);
  }

  /** The host ran `count` more of the session's messages: send what is held, and read the client again if there is room. */
  handled(session: GatewaySession, count: number): void {
    session.inFlight = Math.max(0, session.inFlight - count);
    this.#pump(session);
  }

  /** The session ended: what it held reached no host; its socket is read again so its close handshake can finish. */
  ended(session: GatewaySession): void {
    const held = session.held;
    session.held = undefined;
    if (held !== undefined) this.#drop(session, 'closed', held.length);
    if (session.readPaused) {
      session.readPaused = false;
      session.ws?.resume();
    }
  }

  /** Sends one message (or request) if the window and the link have room; false if it must wait. */
  #send(session: GatewaySession, link: PeerLink, data: Buffer, text: boolean, request: HeldRequest | undefined): boolean {
    if (session.inFlight >= this.#o.maxQueuedMessages || link.congested) return false;
    try {
      if (request === undefined) link.send([FrameType.SessionMessage, session.id, data, text]);
      else link.send([FrameType.SessionRequest, session.id, request.requestId, request.name, data]);
    } catch {
      // Overloaded: held until the link drains. Closed: the link's close ends the session (and
      // counts what it held). A frame over the limit cannot happen: maxMessageBytes is checked
      // against maxFrameBytes when the gateway starts.
      return false;
    }
    session.inFlight += 1;
    return true;
  }

  #pause(session: GatewaySession, link: PeerLink): void {
    const onLink = link.congested || !link.isOpen;
    if (!session.readPaused) {
      session.readPaused = true;
      session.ws?.pause();
      if (onLink) counts.clientPausesLink += 1;
      else counts.clientPausesWindow += 1;
    }
    if (onLink) this.#waitFor(link, session);
  }

  #waitFor(link: PeerLink, session: GatewaySession): void {
    let sessions = this.#waiting.get(link);
    if (sessions === undefined) {
      const waiting = new Set<GatewaySession>();
      sessions = waiting;
      this.#waiting.set(link, waiting);
      link.onceDrained(() => {
        this.#waiting.delete(link);
        for (const s of waiting) this.#pump(s);
      });
    }
    sessions.add(session);
  }

  /** Sends what is held while there is room, then reads the client again. */
  #pump(session: GatewaySession): void {
    if (session.state !== SessionState.Open) return;
    const link = session.hostLink;
    if (link === undefined || !link.isOpen) {
      const held = session.held;
      if (held === undefined) return;
      session.held = undefined;
      this.#drop(session, 'host_gone', held.length);
      return this.#o.hostGone(session);
    }
    const held = session.held;
    if (held !== undefined) {
      let sent = 0;
      while (sent < held.length) {
        const item = held[sent]!;
        if (!this.#send(session, link, item.data, item.text, isRequest(item) ? item : undefined)) break;
        sent += 1;
      }
      if (sent < held.length) {
        held.splice(0, sent);
        if (link.congested) this.#waitFor(link, session);
        return;
      }
      session.held = undefined;
    }
    if (session.inFlight >= this.#o.maxQueuedMessages) return;
    if (link.congested) return this.#waitFor(link, session);
    if (session.readPaused) {
      session.readPaused = false;
      // Its pongs waited unread with its messages (keepalive skips a paused session).
      session.bytesReadAtPing = HEARD;
      session.ws?.resume();
    }
  }

  #drop(session: GatewaySession, reason: ClientMessageDrop, n: number): void {
    countClientMessageDrop(reason, n);
    const fields = { sessionId: session.id, service: session.service, reason, messages: n };
    // A message racing its session's close is ordinary; the others say something is wrong.
    if (reason === 'closed') this.#o.logger.debug(fields, 'dropped client messages: the session had ended');
    else
      this.#warnings.warn(
        fields,
        `dropped client messages: ${reason === 'no_handler' ? 'the service has no hooks' : 'the link to the host is gone'}`,
      );
  }
}
