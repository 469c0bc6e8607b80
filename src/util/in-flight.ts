/**
 * What is in flight (RPC calls, acknowledged pushes), by a rising id, in a
 * ring of slots rather than a Map.
 *
 * Under steady set/delete churn a Map rehashes into a new table every few
 * dozen calls, and V8 keeps each old table's entries with a link to its
 * successor (for iterators). Once one of those tables has been promoted,
 * the scavenger takes it as a root until the next full GC: every later
 * table survives, and with it every entry each one held and what the entry
 * holds (for the gateway, a call held its whole request). A slot is
 * overwritten, never copied. Ids rise by one, so an entry's slot is its id
 * modulo the ring's size; a slot still held by a slow entry sends the
 * newcomer to a small Map, and the ring doubles when that Map grows past an
 * eighth of it.
 */

/** What the ring holds: anything with the id it was added under. */
export interface WithId {
  readonly id: number;
}

const INITIAL_SLOTS = 1024;

export class InFlight<T extends WithId> {
  #slots: (T | undefined)[] = new Array<T | undefined>(INITIAL_SLOTS).fill(undefined);
  #mask = INITIAL_SLOTS - 1;
  /** Calls whose slot was taken when they started. */
  readonly #overflow = new Map<number, T>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(call: T): void {
    const slot = call.id & this.#mask;
    this.#size += 1;
    if (this.#slots[slot] === undefined) this.#slots[slot] = call;
    else {
      this.#overflow.set(call.id, call);
      if (this.#overflow.size > this.#slots.length / 8) this.#grow();
    }
  }

  get(id: number): T | undefined {
    const inSlot = this.#slots[id & this.#mask];
    if (inSlot !== undefined && inSlot.id === id) return inSlot;
    return this.#overflow.size === 0 ? undefined : this.#overflow.get(id);
  }

  /** Takes the call of `id` out; returns it, or undefined when none is in flight (a late answer). */
  take(id: number): T | undefined {
    const slot = id & this.#mask;
    const inSlot = this.#slots[slot];
    if (inSlot !== undefined && inSlot.id === id) {
      this.#slots[slot] = undefined;
      this.#size -= 1;
      return inSlot;
    }
    if (this.#overflow.size === 0) return undefined;
    const call = this.#overflow.get(id);
    if (call !== undefined) {
      this.#overflow.delete(id);
      this.#size -= 1;
    }
    return call;
  }

  /** Every call in flight, in no particular order; a snapshot, so the caller may take calls out as it goes. */
  all(): T[] {
    const out: T[] = [];
    for (const call of this.#slots) if (call !== undefined) out.push(call);
    for (const call of this.#overflow.values()) out.push(call);
    return out;
  }

  clear(): void {
    this.#slots.fill(undefined);
    this.#overflow.clear();
    this.#size = 0;
  }

  #grow(): void {
    const calls = this.all();
    const length = this.#slots.length * 2;
    this.#slots = new Array<T | undefined>(length).fill(undefined);
    this.#mask = length - 1;
    this.#overflow.clear();
    this.#size = 0;
    for (const call of calls) this.add(call);
  }
}
