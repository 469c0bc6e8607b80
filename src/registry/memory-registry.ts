/**
 * In-memory registry: every node of one process shares a hub. The embedded
 * default; nothing expires because nothing can die without its process.
 */
import type { NodeRecord, Registry, RegistryListener, RegistryView } from './registry.js';

export class MemoryRegistryHub {
  readonly records = new Map<string, NodeRecord>();
  readonly #members = new Set<MemoryRegistry>();

  join(member: MemoryRegistry): void {
    this.#members.add(member);
  }

  leave(member: MemoryRegistry): void {
    this.#members.delete(member);
  }

  set(record: NodeRecord): void {
    this.records.set(record.nodeId, structuredClone(record));
    this.#announce();
  }

  delete(nodeId: string): void {
    if (this.records.delete(nodeId)) this.#announce();
  }

  #announce(): void {
    const view: RegistryView = new Map(this.records);
    for (const member of this.#members) member.notify(view);
  }
}

export class MemoryRegistry implements Registry {
  readonly #hub: MemoryRegistryHub;
  readonly #listeners = new Set<RegistryListener>();
  #nodeId: string | undefined;
  #view: RegistryView = new Map();

  constructor(hub: MemoryRegistryHub) {
    this.#hub = hub;
  }

  start(): Promise<void> {
    this.#hub.join(this);
    this.#view = new Map(this.#hub.records);
    return Promise.resolve();
  }

  register(record: NodeRecord): Promise<void> {
    this.#nodeId = record.nodeId;
    this.#hub.set(record);
    return Promise.resolve();
  }

  deregister(): Promise<void> {
    if (this.#nodeId !== undefined) this.#hub.delete(this.#nodeId);
    return Promise.resolve();
  }

  view(): RegistryView {
    return this.#view;
  }

  onChange(listener: RegistryListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // Nothing expires and nothing is lost in one process.
  onExpired(): () => void {
    return () => {};
  }

  onRecovered(): () => void {
    return () => {};
  }

  notify(view: RegistryView): void {
    this.#view = view;
    for (const listener of this.#listeners) listener(view);
  }

  async close(): Promise<void> {
    await this.deregister();
    this.#hub.leave(this);
    this.#listeners.clear();
  }
}
