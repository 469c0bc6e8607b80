/**
 * The registry: who is alive and what they serve.
 *
 * Each node holds a live view (a map of node records) that is read
 * synchronously on the hot path; implementations keep it current.
 */
import type { ContractDescriptor } from '../contract/contract.js';

/** `client`: a process that calls and pushes but serves nothing (createClient). */
export type NodeRole = 'host' | 'gateway' | 'client';

export interface ServiceRecord {
  contract: ContractDescriptor;
  /**
   * Set when the service is a WebSocket service: `path` is its WebSocket path;
   * `hooks` whether it overrides a session hook (if not, its hosts need no
   * handshake details); `history` what it keeps for clients that resume (none when absent).
   */
  websocket?: { path: string; hooks: boolean; history?: { maxEntries: number; ttlMs: number } };
}

export interface NodeRecord {
  nodeId: string;
  role: NodeRole;
  /** Where its link server listens. */
  address: { host: string; port: number };
  services: ServiceRecord[];
  startedAt: number;
  /** weft protocol version the node speaks. */
  protocol: number;
}

export type RegistryView = ReadonlyMap<string, NodeRecord>;

/** The one question most parts ask of the registry, answered from memory. */
export interface LiveNodes {
  /** Is `nodeId` in this node's current view of the cluster? */
  isLive(nodeId: string): boolean;
}
export type RegistryListener = (view: RegistryView) => void;

/** One node's handle on the registry. */
export interface Registry {
  /** Connects and loads the current view. */
  start(): Promise<void>;
  /** Publishes (or replaces) this node's record and keeps it alive until deregister. */
  register(record: NodeRecord): Promise<void>;
  /** Removes this node's record at once. */
  deregister(): Promise<void>;
  /** The live view, without this call crossing the network. */
  view(): RegistryView;
  /** Called after every change of the view; returns an unsubscribe function. */
  onChange(listener: RegistryListener): () => void;
  /** Called with the ids of nodes that left without deregistering (their TTL ran out). */
  onExpired(listener: (nodeIds: string[]) => void): () => void;
  /**
   * Called when this node's own record had vanished (its TTL ran out during a
   * stall, or Redis lost it) and was written again: others may have reaped it,
   * so what it published elsewhere (its sessions) must be written again.
   */
  onRecovered(listener: () => void): () => void;
  close(): Promise<void>;
}
