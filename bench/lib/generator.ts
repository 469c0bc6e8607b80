/**
 * The push generator every pusher runs (weft's pusher process, the raw
 * pusher, the raw server's in-process loop, the Socket.IO emitter):
 *
 * - `max`: as fast as it can with at most `window` pushes in flight;
 * - `rate`: open loop at a fixed rate, paced by a 1 ms timer (still capped
 *   at `window` in flight, so a system that falls behind cannot eat memory).
 *
 * A push is "in flight" until it completes: for weft the RPC promise
 * resolves (the gateways have written it to the sockets); for systems with
 * no acknowledgement, until the clients have reported receiving it (counts
 * relayed by the harness every 20 ms, `onDelivered`).
 */
import { nowUs, payloadMaker } from './clock.js';

export interface GenSpec {
  mode: 'max' | 'rate';
  durationMs: number;
  /** Pushes per second in `rate` mode. */
  rate: number;
  /** Most pushes in flight. */
  window: number;
  /** Business ids to pick from at random. */
  bids: string[];
  payloadBytes: number;
  /** Deliveries one push makes (sessions per businessId); turns delivery counts into completed pushes. */
  perPush: number;
  /** Time to wait for pushes still in flight after the end (promise mode). */
  drainMs?: number;
  /** `bids` are rooms: weft's pusher pushes to a room, not a businessId. */
  toRoom?: boolean;
}

export interface GenResult {
  sent: number;
  /** Pushes that completed (promise resolved or deliveries reported). */
  completed: number;
  /** Sum of what weft's push said it reached. */
  acked: number;
  errors: Record<string, number>;
  startUs: number;
  /** When the last push was sent. */
  sendEndUs: number;
  /** Pushes per second over the send window. */
  pushesPerSec: number;
  /** Times the window was full in rate mode (the system fell behind). */
  windowFull: number;
}

/** `send` returns a promise of sessions reached (weft), or nothing (completion by delivery reports). */
export type SendFn = (bid: string, payload: string) => Promise<number> | void;

export class Generator {
  #delivered = 0;
  #wake: (() => void) | undefined;

  /** Deliveries the clients reported for the current run (feedback mode). */
  onDelivered(total: number): void {
    this.#delivered = total;
    this.#wake?.();
  }

  run(spec: GenSpec, send: SendFn): Promise<GenResult> {
    this.#delivered = 0;
    const makePayload = payloadMaker(spec.payloadBytes);
    const bids = spec.bids;
    const nBids = bids.length;
    let sent = 0;
    let promiseCompleted = 0;
    let promiseMode = false;
    let acked = 0;
    let windowFull = 0;
    const errors: Record<string, number> = {};
    const completed = (): number => (promiseMode ? promiseCompleted : Math.floor(this.#delivered / spec.perPush));
    let stopped = false;
    let finish: () => void = () => undefined;

    const onOk = (n: number): void => {
      promiseCompleted += 1;
      acked += n;
      this.#wake?.();
    };
    const onErr = (err: unknown): void => {
      promiseCompleted += 1;
      const code = (err as { code?: string }).code ?? (err as Error).message ?? 'error';
      errors[code] = (errors[code] ?? 0) + 1;
      this.#wake?.();
    };
    const sendOne = (): void => {
      const bid = nBids === 1 ? bids[0]! : bids[Math.floor(Math.random() * nBids)]!;
      const r = send(bid, makePayload(sent));
      sent += 1;
      if (r !== undefined) {
        promiseMode = true;
        r.then(onOk, onErr);
      }
    };

    const startUs = nowUs();
    const endUs = startUs + spec.durationMs * 1000;
    let sendEndUs = startUs;

    return new Promise<GenResult>((resolve) => {
      finish = () => {
        if (stopped) return;
        stopped = true;
        sendEndUs = nowUs();
        const drainUntil = Date.now() + (spec.drainMs ?? 15_000);
        const done = (): void => {
          this.#wake = undefined;
          const secs = (sendEndUs - startUs) / 1e6;
          resolve({
            sent,
            completed: completed(),
            acked,
            errors,
            startUs,
            sendEndUs,
            pushesPerSec: Math.round(sent / secs),
            windowFull,
          });
        };
        // Promise mode: wait for the calls in flight, so their results count.
        const wait = (): void => {
          if (!promiseMode || promiseCompleted >= sent || Date.now() > drainUntil) done();
          else setTimeout(wait, 20);
        };
        wait();
      };

      if (spec.mode === 'max') {
        let scheduled = false;
        const pump = (): void => {
          scheduled = false;
          if (stopped) return;
          if (nowUs() >= endUs) return finish();
          // Yield every so often so replies and socket writes get their turn.
          let budget = 512;
          while (sent - completed() < spec.window && budget-- > 0) sendOne();
          if (sent - completed() < spec.window) schedule();
        };
        const schedule = (): void => {
          if (scheduled || stopped) return;
          scheduled = true;
          setImmediate(pump);
        };
        this.#wake = schedule;
        // The deadline holds even when nothing completes.
        setTimeout(() => finish(), spec.durationMs + 5);
        schedule();
      } else {
        const perUs = spec.rate / 1e6;
        const timer = setInterval(() => {
          const now = nowUs();
          if (now >= endUs) {
            clearInterval(timer);
            return finish();
          }
          const target = Math.floor((now - startUs) * perUs);
          while (sent < target) {
            if (sent - completed() >= spec.window) {
              windowFull += 1;
              break;
            }
            sendOne();
          }
        }, 1);
        this.#wake = undefined;
      }
    });
  }
}
