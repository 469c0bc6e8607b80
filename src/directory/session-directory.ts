/**
 * The session directory: per WebSocket service, which sessions each
 * businessId has, cluster-wide, and which gateway holds each one.
 *
 * Gateways write (they hold the sockets). Hosts of a WebSocket service
 * `watch` it and ask it where a businessId's sessions are: a directory
 * answers at once what it keeps on this node, and reads the rest from its
 * backend. Entries of a gateway vanish with it: when it closes them, or when
 * the registry reports it gone.
 */

/** The sessions a gateway holds, as (service, businessId, sessionId). */
export type HeldSessions = () => Iterable<readonly [string, string, string]>;

/** The sessions of one businessId, as [sessionId, gatewayNodeId]. */
export type BusinessSessions = readonly (readonly [string, string])[];

export interface SessionDirectory {
  start(): Promise<void>;
  /** Records a session held by this node (a gateway). */
  add(service: string, businessId: string, sessionId: string): void;
  /** Forgets a session held by this node. */
  remove(service: string, businessId: string, sessionId: string): void;
  /**
   * Where this node's sessions can be listed, to write them again after the
   * backend lost them (a Redis restart). The gateway owns that list; the
   * directory keeps no copy.
   */
  setHeldSessions(held: HeldSessions): void;
  /**
   * Calls `listener` each time this node's sessions were written again after
   * the backend had lost them (or had dropped this node for dead): pushes
   * made meanwhile may have skipped them, so the gateway reads what its
   * sessions missed. Optional: a backend that never loses entries has none.
   */
  onRestored?(listener: () => void): () => void;
  /** Makes `service` answerable on this node (a host of it, or a client that pushes to it); needed before the lookups. */
  watch(service: string): Promise<void>;
  /**
   * A session whose hooks this node (a host) accepted: known here at once,
   * before the gateway's own write reaches the backend.
   */
  bind(service: string, businessId: string, sessionId: string, gatewayNodeId: string): void;
  /** Forgets a session bound here. */
  unbind(service: string, businessId: string, sessionId: string): void;
  /** The sessions of a businessId, cluster-wide: at once when this node keeps them, else after one read of the backend. */
  sessionsOf(service: string, businessId: string): BusinessSessions | Promise<BusinessSessions>;
  /** How many sessions the service has, cluster-wide. */
  size(service: string): Promise<number>;
  /** Every session of the service as [sessionId, businessId, gatewayNodeId]. */
  entries(service: string): Promise<Iterable<readonly [string, string, string]>>;
  /** The gateways that may hold sessions of the service (a broadcast goes to each). */
  gateways(service: string): Promise<Iterable<string>>;
  close(): Promise<void>;
}
