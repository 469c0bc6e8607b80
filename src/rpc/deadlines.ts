/**
 * Deadlines of the calls in flight, without a timer for each call.
 *
 * A timer per call is an object, a closure and a link into Node's timer
 * list, all made and dropped on every call, and all kept alive by each
 * scavenge for as long as the call is out. Calls of the same timeout fall
 * due in the order they started, so each timeout keeps its calls in one
 * list, linked through the calls themselves, and one timer for its head.
 * A call that settles is unlinked at once: nothing is held past its answer.
 */

/** What a list holds: the call's own fields, so adding one allocates nothing. */
export interface Due {
  /** `performance.now()` at which the call is due; monotonic, unlike `Date.now()`. */
  dueAt: number;
  dueList: DueList | undefined;
  duePrev: Due | undefined;
  dueNext: Due | undefined;
}

interface DueList {
  readonly timeoutMs: number;
  head: Due | undefined;
  tail: Due | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Expiring its due entries: an entry added meanwhile leaves the timer to the end of that. */
  firing: boolean;
}

/** Node's longest timer; a longer one would fire after 1 ms. */
const MAX_TIMER_MS = 0x7fffffff;

function delayMs(ms: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(ms)));
}

export class Deadlines<T extends Due> {
  readonly #lists = new Map<number, DueList>();
  readonly #expire: (entry: T) => void;

  /** `expire` is called once for each entry whose time has come; the entry is already removed. */
  constructor(expire: (entry: T) => void) {
    this.#expire = expire;
  }

  /** Makes `entry` due `timeoutMs` from now. */
  add(entry: T, timeoutMs: number): void {
    let list = this.#lists.get(timeoutMs);
    if (list === undefined) {
      list = { timeoutMs, head: undefined, tail: undefined, timer: undefined, firing: false };
      this.#lists.set(timeoutMs, list);
    }
    entry.dueAt = performance.now() + timeoutMs;
    entry.dueList = list;
    entry.duePrev = list.tail;
    entry.dueNext = undefined;
    if (list.tail === undefined) list.head = entry;
    else list.tail.dueNext = entry;
    list.tail = entry;
    // The timer stays set while calls come and go; it only keeps the process alive while one is out.
    if (list.firing) return;
    if (list.timer === undefined) list.timer = setTimeout(() => this.#fire(list), delayMs(timeoutMs));
    else list.timer.ref();
  }

  /** Takes `entry` out, if it is in; it will not expire. */
  remove(entry: T): void {
    const list = entry.dueList;
    if (list === undefined) return;
    if (entry.duePrev === undefined) list.head = entry.dueNext;
    else entry.duePrev.dueNext = entry.dueNext;
    if (entry.dueNext === undefined) list.tail = entry.duePrev;
    else entry.dueNext.duePrev = entry.duePrev;
    entry.dueList = undefined;
    entry.duePrev = undefined;
    entry.dueNext = undefined;
    if (list.head === undefined) list.timer?.unref();
  }

  #fire(list: DueList): void {
    list.timer = undefined;
    list.firing = true;
    const now = performance.now();
    try {
      // Timers may fire a little before performance.now() says the time has come: allow a millisecond.
      while (list.head !== undefined && list.head.dueAt <= now + 1) {
        const entry = list.head as T;
        this.remove(entry);
        this.#expire(entry);
      }
    } finally {
      // Even when a handler threw, what is left in the list keeps its timer.
      list.firing = false;
      this.#arm(list, now);
    }
  }

  /** Sets the list's timer for its head, or lets the list go when it is empty. */
  #arm(list: DueList, now: number): void {
    const head = list.head;
    if (head === undefined) {
      // Idle since the timer was set: the list goes, and the next call of this timeout makes another.
      if (this.#lists.get(list.timeoutMs) === list) this.#lists.delete(list.timeoutMs);
      return;
    }
    list.timer = setTimeout(() => this.#fire(list), delayMs(head.dueAt - now));
  }
}
