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

/**
 * The sessions a gateway holds, as (service, businessId, sessionId), each
 * with its record when it has one (written again with it after a loss).
 */
export type HeldSessions = () => Iterable<readonly [service: string, businessId: string, sessionId: string, record?: SessionRecord]>;

/** The rooms a gateway holds members of, as (service, room). */
export type HeldRooms = () => Iterable<readonly [string, string]>;

/** The sessions of one businessId, as [sessionId, gatewayNodeId]. */
export type BusinessSessions = readonly (readonly [string, string])[];

export interface SessionDirectory {
  start(): Promise<void>;
  /** Records a session held by this node (a gateway), with when it opened and the metadata its host attached. */
  add(service: string, businessId: string, sessionId: string, record?: SessionRecord): void;
  /** Forgets a session held by this node (its record, when given, goes with its leave event). */
  remove(service: string, businessId: string, sessionId: string, record?: SessionRecord): void;
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
  /**
   * The sessions of a businessId with their records, cluster-wide, in one
   * lookup (presence: `sessionManager.sessions`). Optional: without it,
   * sessions come from `sessionsOf` with no record.
   */
  describe?(service: string, businessId: string): Promise<readonly DescribedSession[]>;
  /**
   * Calls `listener` with the presence events of `service`, cluster-wide
   * (presence: `sessionManager.onPresence`); resolves once subscribed, with
   * the function that unsubscribes. Optional: without it there are none.
   */
  onPresence?(service: string, listener: PresenceListener): Promise<() => void>;

  // Rooms (room-index.ts): which gateways hold members of a room. The gateway keeps the members.
  // Optional, so a directory written outside weft before rooms still builds: without them, joins are refused (ServiceUnavailable).
  /** This node (a gateway) holds a first member of the room: resolves once lookups from any node see it. */
  addRoom?(service: string, room: string): Promise<void>;
  /** This node holds no member of the room any more. */
  removeRoom?(service: string, room: string): void;
  /** The gateways that hold members of a room (live or not: callers filter), cluster-wide: one read of the backend. */
  roomGateways?(service: string, room: string): string[] | Promise<string[]>;
  /** Where this node's rooms can be listed, to write them again after the backend lost them. */
  setHeldRooms?(held: HeldRooms): void;
}

/** What a gateway writes of a session beside where it is. */
export interface SessionRecord {
  /** When the gateway completed its WebSocket handshake (epoch ms, the gateway's clock). */
  readonly openedAt: number;
  /** The JSON text of what its host attached in onOpen (`session.setMetadata`); undefined: nothing. */
  readonly metadata?: string | undefined;
}

/** One session of a businessId with its record: [sessionId, gatewayNodeId, openedAt, metadata JSON or undefined]. */
export type DescribedSession = readonly [string, string, number, string | undefined];

/** A session of a businessId opened (`join`) or closed (`leave`), on any gateway. */
export interface SessionPresenceEvent {
  readonly type: 'join' | 'leave';
  readonly service: string;
  readonly businessId: string;
  readonly sessionId: string;
  readonly gatewayNodeId: string;
  /** What its host attached in onOpen, parsed; absent when nothing was. */
  readonly metadata?: unknown;
  /** When it happened (epoch ms, the clock of the node that saw it: the gateway, or whoever removed a dead gateway's sessions). */
  readonly at: number;
}

/** A businessId's first session opened (`online`) or its last one closed (`offline`), cluster-wide. */
export interface BusinessPresenceEvent {
  readonly type: 'online' | 'offline';
  readonly service: string;
  readonly businessId: string;
  readonly at: number;
}

/** What `onPresence` listeners receive (docs/presence.md: at most once, in order per gateway). */
export type PresenceEvent = SessionPresenceEvent | BusinessPresenceEvent;

export type PresenceListener = (event: PresenceEvent) => void;
