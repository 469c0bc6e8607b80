/**
 * The acknowledgement of one push at one gateway, when some of its sessions
 * cannot be settled at once: one is still opening or catching up, a push
 * before it is missing, or its client must confirm receipt. The gateway
 * answers once every session is settled, counting those it reached.
 */
import type { PeerLink } from '../../transport/peer-link.js';

export type SendAck = (link: PeerLink, ackId: number, delivered: number) => void;

export class AckTally {
  readonly #link: PeerLink;
  readonly #ackId: number;
  readonly #send: SendAck;
  #reached = 0;
  #outstanding = 0;
  #armed = false;

  constructor(link: PeerLink, ackId: number, send: SendAck) {
    this.#link = link;
    this.#ackId = ackId;
    this.#send = send;
  }

  /** One more session will be settled later. */
  defer(): void {
    this.#outstanding += 1;
  }

  /** A deferred session is settled: reached, or not. */
  settle(reached: boolean): void {
    if (reached) this.#reached += 1;
    this.#outstanding -= 1;
    this.#sendIfDone();
  }

  /** Every session of the push was visited; `reached` of them at once. */
  arm(reached: number): void {
    this.#reached += reached;
    this.#armed = true;
    this.#sendIfDone();
  }

  #sendIfDone(): void {
    if (!this.#armed || this.#outstanding > 0) return;
    this.#armed = false;
    this.#send(this.#link, this.#ackId, this.#reached);
  }
}
