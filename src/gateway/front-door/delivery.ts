/**
 * Delivery of pushes to client sockets, and what a push's acknowledgement
 * counts: a session counts only once the push was written to its socket.
 *
 * - Writes are corked per tick (many pushes to one socket in a tick leave
 *   in one write), and a client that does not read is evicted before it can
 *   hold the gateway's memory.
 * - A push for a session still opening waits in its queue and counts when
 *   it is written; if the session never opens, it counts as not reached.
 * - A `weft.v1` session gets pushes in position order: a push whose
 *   predecessor has not come yet is held for `gapWaitMs` (pushes from two
 *   hosts can cross on the way), then the gap is read from history. A push
 *   it already has (replayed from history) is not written twice.
 * - With client receipts (`ack: 'client'`), a session counts when its
 *   weft/client confirmed the push within the push's receipt timeout.
 *
 * When every session of a push is settled the gateway acknowledges it
 * (ack-tally.ts); when all were settled at once, without any allocation.
 */
import { SpanKind, contextFrom, endSpan, startSpan } from '../../tracing/tracing.js';
import type { Duplex } from 'node:stream';
import type { HistoryRead, Position } from '../../history/history-store.js';
import { FrameType, type PushFrame } from '../../protocol/frames.js';
import type { PeerLink } from '../../transport/peer-link.js';
import { counts } from '../../metrics/metrics.js';
import { AckTally, type SendAck } from './ack-tally.js';
import { SessionState, type GatewaySession, type GatewaySessions, type QueuedPush, type V1State } from './gateway-sessions.js';
import { dataFrame, unsentBytes, v1PushFrame, writeFrame } from './raw-frames.js';

export interface DeliveryOptions {
  /** Unread bytes a client may have before it is evicted; also the cap of a session's queue. */
  maxBufferedBytes: number;
  /** Called once for a client found too slow; the session is already marked Evicting. */
  evict: (session: GatewaySession) => void;
  /** Sends a push's acknowledgement to the node that pushed it. */
  ack: SendAck;
  /** How long a weft.v1 session's push waits for a missing earlier one before the gap is read from history. */
  gapWaitMs: number;
  /** Reads the history of a session's businessId after `since` (undefined when there is none to read). */
  readHistory: (session: GatewaySession, since: Position | undefined) => Promise<HistoryRead | undefined>;
}

const EMPTY = new Uint8Array(0);

/** How a session took a push (rooms.ts offers room pushes the same way). */
export const MISSED = 0;
export const REACHED = 1;
export const DEFERRED = 2;
export type Outcome = typeof MISSED | typeof REACHED | typeof DEFERRED;

interface Receipt {
  session: GatewaySession;
  tally: AckTally | undefined;
  timer: NodeJS.Timeout;
}

export class Delivery {
  readonly #o: DeliveryOptions;
  #corked: Duplex[] = [];
  #tick = 1;
  readonly #uncork = (): void => this.#uncorkAll();
  readonly #receipts = new Map<number, Receipt>();
  #nextReceiptId = 1;

  // The push being delivered is held in fields, so visiting its sessions allocates no closure.
  #payload: Uint8Array = EMPTY;
  #text = false;
  #epoch = '';
  #offset = 0;
  #receiptTimeoutMs = 0;
  #ackId = 0;
  #link: PeerLink | undefined;
  #rawFrame: Buffer | undefined;
  #v1Frame: Buffer | undefined;
  #tally: AckTally | undefined;
  #reached = 0;
  readonly #visit = (session: GatewaySession): void => {
    const outcome = this.#offer(session);
    if (outcome === REACHED) this.#reached += 1;
    else if (outcome === DEFERRED) this.#tally?.defer();
  };

  constructor(options: DeliveryOptions) {
    this.#o = options;
  }

  /** Delivers a push frame to the sessions it names here and acknowledges it once they are settled. */
  push(frame: PushFrame, sessions: GatewaySessions, link: PeerLink): void {
    this.#ackId = frame[1];
    this.#link = link;
    this.#tally = undefined;
    this.#reached = 0;
    this.#rawFrame = undefined;
    this.#v1Frame = undefined;
    this.#epoch = '';
    this.#offset = 0;
    this.#receiptTimeoutMs = 0;
    switch (frame[0]) {
      case FrameType.PushSession: {
        this.#payload = frame[3];
        this.#text = frame[4];
        const session = sessions.get(frame[2]);
        if (session !== undefined) this.#visit(session);
        break;
      }
      case FrameType.PushBusiness:
        this.#payload = frame[4];
        this.#text = frame[5];
        this.#epoch = frame[6];
        this.#offset = frame[7];
        this.#receiptTimeoutMs = frame[8];
        sessions.forBusiness(frame[2], frame[3], this.#visit);
        break;
      case FrameType.PushService:
        this.#payload = frame[3];
        this.#text = frame[4];
        sessions.forService(frame[2], this.#visit);
        break;
    }
    // Set by the visits above (TypeScript cannot see that through the callback).
    const tally = this.#tally as AckTally | undefined;
    this.#payload = EMPTY;
    this.#link = undefined;
    const traceparent = frame[frame.length - 1] as string;
    if (traceparent !== '') {
      // A child of the push's span; only traced pushes pay for a span here.
      const traced = startSpan('weft.push.deliver', SpanKind.CONSUMER, contextFrom(traceparent), { 'weft.push.written': this.#reached });
      endSpan(traced.span);
    }
    if (tally !== undefined) tally.arm(this.#reached);
    else if (this.#ackId !== 0) this.#o.ack(link, this.#ackId, this.#reached);
  }

  /**
   * Writes a prepared push frame to an open session through the one write
   * path (corked per tick, slow clients evicted), counted as a live
   * delivery or, with `replay`, a replayed one. Room pushes (rooms.ts) use it.
   */
  writePush(session: GatewaySession, frame: Buffer, replay = false): boolean {
    if (!this.#writeFrame(session, frame)) return false;
    if (replay) counts.deliveredReplay += 1;
    else counts.deliveredLive += 1;
    return true;
  }

  /** Writes a control message (weft.v1, JSON) to a session; false if it could not be. */
  control(session: GatewaySession, message: object): boolean {
    return this.#writeFrame(session, dataFrame(Buffer.from(JSON.stringify(message)), true));
  }

  /** The client confirmed receipt of these pushes. */
  receipts(session: GatewaySession, ids: readonly unknown[]): void {
    for (const id of ids) {
      if (typeof id !== 'number') continue;
      const receipt = this.#receipts.get(id);
      if (receipt === undefined || receipt.session !== session) continue;
      this.#receipts.delete(id);
      clearTimeout(receipt.timer);
      receipt.tally?.settle(true);
    }
  }

  /**
   * A session that opened: a bare one gets what was queued; a weft.v1 one
   * first reads history (from its `since`, or only where the stream stands),
   * `welcome` tells its client the outcome, then replay and queue follow in
   * order. Pushes that come meanwhile wait in the queue.
   */
  opened(session: GatewaySession, welcome: (read: HistoryRead | undefined) => void): void {
    const v1 = session.v1;
    if (v1 === undefined) return this.#flush(session);
    if (!v1.catchingUp) {
      welcome(undefined);
      return this.#flush(session);
    }
    this.#o.readHistory(session, v1.since).then(
      (found) => {
        if (session.state !== SessionState.Open) return this.dropQueue(session);
        const read = startBeforeQueued(session, v1, found);
        welcome(read);
        this.#caughtUp(session, v1, read);
      },
      () => {
        if (session.state !== SessionState.Open) return this.dropQueue(session);
        welcome(undefined);
        this.#caughtUp(session, v1, undefined);
      },
    );
  }

  /** The session will not take what waits for it: those pushes count as not reached. */
  dropQueue(session: GatewaySession): void {
    const queue = session.queue;
    session.queue = undefined;
    session.queuedBytes = 0;
    if (session.v1?.gapTimer !== undefined) {
      clearTimeout(session.v1.gapTimer);
      session.v1.gapTimer = undefined;
    }
    if (queue !== undefined) for (const item of queue) item.tally?.settle(false);
  }

  /** How the session takes the push being delivered. */
  #offer(session: GatewaySession): Outcome {
    const v1 = session.v1;
    if (session.state === SessionState.Opening || v1?.catchingUp === true) return this.#enqueue(session, false);
    if (session.state !== SessionState.Open) return MISSED;
    if (v1 === undefined) {
      this.#rawFrame ??= dataFrame(this.#payload, this.#text);
      const written = this.#write(session, this.#rawFrame);
      // A bare client gets it too, but cannot confirm receipt: not counted when receipts are asked.
      return written && this.#receiptTimeoutMs === 0 ? REACHED : MISSED;
    }
    const epoch = this.#epoch;
    // A late push of the epoch the stream had before its history was lost: written, but the session stays in the new one.
    const late = epoch !== '' && epoch === v1.leftEpoch;
    if (epoch !== '' && v1.epoch !== '' && v1.epoch !== epoch && !late) {
      // The history was lost while the session was open (Redis restarted empty) and the stream
      // started again with a new epoch, from offset 0. Pushes of the new epoch before this one
      // that did not reach this gateway live (the directory was being rebuilt) are a gap like
      // any other: held, then read from history. Before, the session jumped to this offset.
      v1.leftEpoch = v1.epoch;
      v1.epoch = epoch;
      v1.offset = 0;
      v1.base = 0;
    }
    if (epoch !== '' && v1.epoch === epoch) {
      // Written already (replayed, or a late copy): reached. At or below where the session
      // started (a push kept just before a fresh session read the top): not written here, not counted.
      if (this.#offset <= v1.offset) return this.#offset > v1.base ? REACHED : MISSED;
      if (this.#offset > v1.offset + 1) return this.#enqueue(session, true);
    }
    if (this.#receiptTimeoutMs > 0) {
      const outcome = this.#writeForReceipt(session, this.#payload, this.#text, epoch, this.#offset, this.#receiptTimeoutMs, this.#tallyOfCurrent());
      if (outcome !== MISSED && !late) this.#advance(session, v1, epoch, this.#offset);
      return outcome;
    }
    this.#v1Frame ??= v1PushFrame(this.#payload, this.#text, epoch === '' ? undefined : epoch, this.#offset, 0);
    if (!this.#write(session, this.#v1Frame)) return MISSED;
    if (!late) this.#advance(session, v1, epoch, this.#offset);
    return REACHED;
  }

  /** The session's position moved to (epoch, offset); held pushes that now follow go out. */
  #advance(session: GatewaySession, v1: V1State, epoch: string, offset: number): void {
    if (epoch === '') return;
    v1.epoch = epoch;
    v1.offset = offset;
    if (session.queue !== undefined && !v1.catchingUp) this.#releaseHeld(session, v1);
  }

  /** Puts the push being delivered in the session's queue (in position order when `ordered`). */
  #enqueue(session: GatewaySession, ordered: boolean): Outcome {
    const bytes = this.#payload.length;
    if (session.queuedBytes + bytes > this.#o.maxBufferedBytes) return MISSED;
    const item: QueuedPush = {
      payload: this.#payload,
      text: this.#text,
      epoch: this.#epoch,
      offset: this.#offset,
      receiptTimeoutMs: this.#receiptTimeoutMs,
      tally: this.#tallyOfCurrent(),
    };
    const queue = (session.queue ??= []);
    if (ordered) {
      let i = queue.length;
      while (i > 0 && queue[i - 1]!.offset > item.offset) i--;
      queue.splice(i, 0, item);
      const v1 = session.v1!;
      if (v1.gapTimer === undefined) {
        v1.gapTimer = setTimeout(() => this.#fillGap(session, v1), this.#o.gapWaitMs);
        v1.gapTimer.unref();
      }
    } else queue.push(item);
    session.queuedBytes += bytes;
    return DEFERRED;
  }

  /** The tally of the push being delivered, made when a first session defers it. */
  #tallyOfCurrent(): AckTally | undefined {
    if (this.#ackId === 0 || this.#link === undefined) return undefined;
    this.#tally ??= new AckTally(this.#link, this.#ackId, this.#o.ack);
    return this.#tally;
  }

  /** Held pushes that follow the session's position now, in order. */
  #releaseHeld(session: GatewaySession, v1: V1State): void {
    const queue = session.queue!;
    while (queue.length > 0) {
      const next = queue[0]!;
      if (next.epoch === v1.epoch && next.offset > v1.offset + 1) break;
      queue.shift();
      session.queuedBytes -= next.payload.length;
      this.#settleQueued(session, v1, next);
    }
    if (queue.length === 0) {
      session.queue = undefined;
      session.queuedBytes = 0;
      if (v1.gapTimer !== undefined) clearTimeout(v1.gapTimer);
      v1.gapTimer = undefined;
    }
  }

  /** Writes a queued push to a session that is ready for it, and settles its tally. */
  #settleQueued(session: GatewaySession, v1: V1State | undefined, item: QueuedPush): void {
    if (v1 !== undefined && item.epoch !== '' && item.epoch === v1.epoch && item.offset <= v1.offset) {
      item.tally?.settle(item.offset > v1.base);
      return;
    }
    if (item.receiptTimeoutMs > 0) {
      // A deferred session stays deferred: the receipt settles its tally. A bare one cannot confirm.
      if (v1 === undefined) this.#write(session, dataFrame(item.payload, item.text));
      const outcome =
        v1 === undefined
          ? MISSED
          : this.#writeForReceipt(session, item.payload, item.text, item.epoch, item.offset, item.receiptTimeoutMs, item.tally);
      if (outcome === MISSED) item.tally?.settle(false);
      else if (v1 !== undefined && item.epoch !== '') {
        v1.epoch = item.epoch;
        v1.offset = item.offset;
      }
      return;
    }
    const frame =
      v1 === undefined ? dataFrame(item.payload, item.text) : v1PushFrame(item.payload, item.text, item.epoch || undefined, item.offset, 0);
    const ok = this.#write(session, frame);
    if (ok && v1 !== undefined && item.epoch !== '') {
      v1.epoch = item.epoch;
      v1.offset = item.offset;
    }
    item.tally?.settle(ok);
  }

  /** Writes a push that asks for a receipt; the tally waits for it, or the timeout. */
  #writeForReceipt(
    session: GatewaySession,
    payload: Uint8Array,
    text: boolean,
    epoch: string,
    offset: number,
    timeoutMs: number,
    tally: AckTally | undefined,
  ): Outcome {
    const id = this.#nextReceiptId++;
    if (this.#nextReceiptId > 0xffffffff) this.#nextReceiptId = 1;
    if (!this.#write(session, v1PushFrame(payload, text, epoch === '' ? undefined : epoch, offset, id))) return MISSED;
    if (tally === undefined) return REACHED;
    const timer = setTimeout(() => {
      if (this.#receipts.delete(id)) tally.settle(false);
    }, timeoutMs);
    timer.unref();
    this.#receipts.set(id, { session, tally, timer });
    return DEFERRED;
  }

  /**
   * Reads what the session's stream got after the session's position and
   * writes it (then what queued meanwhile), as a gap is filled: for pushes
   * that skipped this gateway while the directory did not list it. Resolves
   * once done; at once for a session with nothing to read.
   */
  recheck(session: GatewaySession): Promise<void> {
    const v1 = session.v1;
    if (session.state !== SessionState.Open || v1 === undefined || v1.epoch === '' || v1.catchingUp) return Promise.resolve();
    if (v1.gapTimer !== undefined) clearTimeout(v1.gapTimer);
    v1.gapTimer = undefined;
    return this.#readAfterPosition(session, v1);
  }

  /** A push waited long enough for the one before it: the gap is read from history. */
  #fillGap(session: GatewaySession, v1: V1State): void {
    v1.gapTimer = undefined;
    if (session.state !== SessionState.Open || session.queue === undefined) return;
    void this.#readAfterPosition(session, v1);
  }

  /** Reads the session's stream after its position; pushes wait in its queue until it is written (#caughtUp). */
  #readAfterPosition(session: GatewaySession, v1: V1State): Promise<void> {
    v1.catchingUp = true;
    return this.#o.readHistory(session, { epoch: v1.epoch, offset: v1.offset }).then(
      (read) => this.#caughtUp(session, v1, read),
      () => this.#caughtUp(session, v1, undefined),
    );
  }

  /**
   * History was read for a session catching up: what it holds after the
   * session's position is written, then the queue, in order. When history
   * could not fill the gap, the session's position jumps to what is queued
   * (the client sees the gap in the offsets).
   */
  #caughtUp(session: GatewaySession, v1: V1State, read: HistoryRead | undefined): void {
    if (session.state !== SessionState.Open) return this.dropQueue(session);
    if (read !== undefined) {
      const resuming = v1.epoch === '' && v1.since !== undefined && read.recovered;
      if (v1.epoch === '') {
        // First read, at open: start from the client's position when it was recovered, else at the top.
        v1.epoch = read.top.epoch;
        v1.offset = resuming ? v1.since.offset : read.top.offset;
        v1.base = v1.offset;
      }
      if (read.recovered && read.top.epoch === v1.epoch) {
        for (const entry of read.entries) {
          if (entry.offset <= v1.offset) continue;
          if (!this.#writeFrame(session, v1PushFrame(entry.payload, entry.text, v1.epoch, entry.offset, 0))) break;
          counts.deliveredReplay += 1;
          v1.offset = entry.offset;
        }
      }
    }
    v1.catchingUp = false;
    const queue = session.queue;
    session.queue = undefined;
    session.queuedBytes = 0;
    if (queue === undefined) return;
    // What is still missing before the first queued push will not come now.
    queue.sort((a, b) => (a.epoch === b.epoch ? a.offset - b.offset : 0));
    const first = queue.find((q) => q.epoch !== '' && q.epoch === v1.epoch);
    if (first !== undefined && first.offset > v1.offset + 1) v1.offset = first.offset - 1;
    for (const item of queue) this.#settleQueued(session, v1, item);
  }

  /** A bare session that opened: what was queued while it opened goes out now, in order. */
  #flush(session: GatewaySession): void {
    const queue = session.queue;
    if (queue === undefined) return;
    session.queue = undefined;
    session.queuedBytes = 0;
    for (const item of queue) this.#settleQueued(session, session.v1, item);
  }

  /** Writes one push to an open session's socket (counted as a live delivery). Returns whether it was written. */
  #write(session: GatewaySession, frame: Buffer): boolean {
    if (!this.#writeFrame(session, frame)) return false;
    counts.deliveredLive += 1;
    return true;
  }

  /** Writes one prepared frame to an open session's socket. Returns whether it was written. */
  #writeFrame(session: GatewaySession, frame: Buffer): boolean {
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

  #uncorkAll(): void {
    const corked = this.#corked;
    this.#corked = [];
    this.#tick += 1;
    for (const socket of corked) socket.uncork();
  }
}

/**
 * Where a session that starts at the top (no `since`, or one the history
 * could not recover) starts: before the first push queued for it when the
 * top read at open already counts that push. The push was sent to this
 * session, which was listed when it was pushed, but appended before the top
 * was read: starting at the top would count it as reached and the client,
 * told it stands at the top, would never see it.
 */
function startBeforeQueued(session: GatewaySession, v1: V1State, read: HistoryRead | undefined): HistoryRead | undefined {
  if (read === undefined || (v1.since !== undefined && read.recovered)) return read;
  let first = Number.POSITIVE_INFINITY;
  for (const q of session.queue ?? []) if (q.epoch === read.top.epoch && q.offset < first) first = q.offset;
  if (first > read.top.offset) return read;
  return { ...read, top: { epoch: read.top.epoch, offset: first - 1 } };
}
