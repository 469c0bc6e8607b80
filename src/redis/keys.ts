/**
 * Every Redis key and channel weft uses, in one place.
 *
 * Keys that one command or one MULTI touches together share a hash tag (the
 * part in braces), so on a Redis Cluster they live in one slot:
 *
 * | key / channel | type | tag (slot) | who |
 * |---|---|---|---|
 * | `{<prefix>}:alive` | sorted set nodeId -> expiry (Redis ms) | `{<prefix>}` | registry |
 * | `{<prefix>}:versions` | hash nodeId -> record version | `{<prefix>}` | registry |
 * | `{<prefix>}:changes` | integer, bumped by each join, change and leave | `{<prefix>}` | registry |
 * | `{<prefix>}:node:<nodeId>` | hash `v` version, `r` JSON record (TTL) | `{<prefix>}` | registry |
 * | `{<prefix>}:registry` | channel | `{<prefix>}` | registry |
 * | `{<prefix>}:gateway-services:<gatewayId>` | set of units | `{<prefix>}` | directory |
 * | `{<prefix>:<unit>}:sessions` | hash sessionId -> `gateway\nbusinessId` | `{<prefix>:<unit>}` | directory |
 * | `{<prefix>:<unit>}:by-business` | sorted set of `businessId\nsessionId\ngateway`, read by range | `{<prefix>:<unit>}` | directory |
 * | `{<prefix>:<unit>}:gateway:<gatewayId>` | set of sessionIds | `{<prefix>:<unit>}` | directory |
 * | `{<prefix>:<unit>}:sessions` | channel | `{<prefix>:<unit>}` | directory |
 * | `{<prefix>:<unit>}:version` | integer, bumped by each published batch | `{<prefix>:<unit>}` | directory |
 * | `{<prefix>:<unit>}:epoch` | string, random (TTL) | `{<prefix>:<unit>}` | directory |
 * | `{<prefix>:<unit>}:sessions:caught-up:<id>` | channel (markers to itself) | `{<prefix>:<unit>}` | redis-connection, Cluster only |
 * | `{<prefix>:<unit>}:records` | hash sessionId -> `openedAt\nmetadata JSON` | `{<prefix>:<unit>}` | directory (presence) |
 * | `{<prefix>:presence:<service>}:events` | channel: join, leave, online, offline of a service | `{<prefix>:presence:<service>}` | directory (presence) |
 * | `{<prefix>:history:<service>:<businessId>}:m` | hash: epoch, last offset | `{<prefix>:history:<service>:<businessId>}` | history |
 * | `{<prefix>:history:<service>:<businessId>}:s` | stream of the last pushes | `{<prefix>:history:<service>:<businessId>}` | history |
 *
 * A directory unit (`directoryUnit`) is a shard of a service,
 * `<service>#<shard>`, or the whole service when every host keeps a full
 * replica (`fullDirectoryReplica`).
 *
 * The directory's epoch is per unit, in the unit's slot, not one key
 * for the whole directory: the flush's script reads it, bumps the version
 * and publishes in one slot, and on a Redis Cluster a master that restarts
 * empty loses exactly the epochs of the units it served, which is what
 * the epoch must tell (docs/architecture.md, "Directory healing").
 *
 * History has a tag per (service, businessId): its two keys are in one slot,
 * and the businessIds of a service spread over the Cluster.
 */

/** The registry's keys and channel, all in the `{<prefix>}` slot. */
export interface RegistryKeys {
  readonly tag: string;
  /** Sorted set: each registered node's id, scored by when its TTL runs out (Redis clock, ms). */
  readonly alive: string;
  /** Hash: each registered node's id -> the version of its record. */
  readonly versions: string;
  /** Integer bumped by every join, record change and leave (a node that saw the same number missed nothing). */
  readonly changes: string;
  /** A node's record: hash `v` its version, `r` its JSON, with the record TTL. */
  readonly node: (nodeId: string) => string;
  /** Where joins and leaves are announced. */
  readonly channel: string;
  /** Set of the directory units a gateway has written sessions of (so they can be removed when it dies). */
  readonly gatewayServices: (gatewayNodeId: string) => string;
  /** Set of the directory units a gateway has written room entries in. */
  readonly gatewayRoomUnits: (gatewayNodeId: string) => string;
}

export function registryKeys(prefix: string): RegistryKeys {
  const tag = `{${prefix}}`;
  return Object.freeze({
    tag,
    alive: `${tag}:alive`,
    versions: `${tag}:versions`,
    changes: `${tag}:changes`,
    node: (nodeId: string) => `${tag}:node:${nodeId}`,
    channel: `${tag}:registry`,
    gatewayServices: (gatewayNodeId: string) => `${tag}:gateway-services:${gatewayNodeId}`,
    gatewayRoomUnits: (gatewayNodeId: string) => `${tag}:gateway-room-units:${gatewayNodeId}`,
  });
}

/**
 * The part of the directory one set of keys holds: the shard `shard` of a
 * service, or the whole service (no shard: a full replica on every host).
 */
export function directoryUnit(service: string, shard: number | undefined): string {
  return shard === undefined ? service : `${service}#${shard}`;
}

/** The service a directory unit belongs to (contract names are identifiers: no `#` in them). */
export function serviceOfUnit(unit: string): string {
  const cut = unit.lastIndexOf('#');
  return cut < 0 ? unit : unit.slice(0, cut);
}

/** One directory unit's keys and channel (a service's, or a shard's of it), all in the `{<prefix>:<unit>}` slot. */
export interface ServiceKeys {
  readonly tag: string;
  /** Hash sessionId -> `gatewayNodeId\nbusinessId`. */
  readonly sessions: string;
  /** Sorted set (all scores 0) of `businessId\nsessionId\ngatewayNodeId`: one range read gives a businessId's sessions. */
  readonly byBusiness: string;
  /** Set of the sessionIds of this service one gateway holds. */
  readonly gateway: (gatewayNodeId: string) => string;
  /** Where changes to the sessions are published. */
  readonly channel: string;
  /** The version of the service's directory: bumped by each batch published, carried by the message. */
  readonly version: string;
  /** A random value, written by whoever finds none: a new one says Redis lost the service's directory. */
  readonly epoch: string;
  /** Sorted set (all scores 0) of `room\ngatewayNodeId`: the gateways that hold members of a room (rooms of this unit's shard). */
  readonly rooms: string;
  /** Set of the rooms of this unit a gateway holds members of (what goes when it dies). */
  readonly gatewayRooms: (gatewayNodeId: string) => string;
}

export function serviceKeys(prefix: string, service: string): ServiceKeys {
  const tag = `{${prefix}:${service}}`;
  return Object.freeze({
    tag,
    sessions: `${tag}:sessions`,
    byBusiness: `${tag}:by-business`,
    gateway: (gatewayNodeId: string) => `${tag}:gateway:${gatewayNodeId}`,
    channel: `${tag}:sessions`,
    version: `${tag}:version`,
    epoch: `${tag}:epoch`,
    rooms: `${tag}:rooms`,
    gatewayRooms: (gatewayNodeId: string) => `${tag}:rooms:${gatewayNodeId}`,
  });
}

/** A unit's session records (when each opened, what its host attached): in the unit's slot, beside its sessions. */
export function recordsKey(prefix: string, unit: string): string {
  return `${serviceKeys(prefix, unit).tag}:records`;
}

/**
 * Where a service's presence events are published: one channel per service
 * (a subscriber hears the whole service), with a tag of its own so that on
 * a Redis Cluster the services' event channels spread over the masters.
 */
export function presenceChannel(prefix: string, service: string): string {
  return `{${prefix}:presence:${service}}:events`;
}

/** One businessId's push history, both keys in the `{<prefix>:history:<service>:<businessId>}` slot. */
export interface HistoryKeys {
  readonly tag: string;
  /** Hash: `e` the stream's epoch, `o` its last offset, `k:<key>` the offsets of recent pushes made by calls (dedupe). */
  readonly meta: string;
  /** Stream of the last pushes, entry id `<offset>-0`. */
  readonly stream: string;
}

export function historyKeys(prefix: string, service: string, businessId: string): HistoryKeys {
  const tag = `{${prefix}:history:${service}:${businessId}}`;
  return Object.freeze({ tag, meta: `${tag}:m`, stream: `${tag}:s` });
}

/** SCAN patterns that match every key of a prefix (`{<prefix>}` and every `{<prefix>:...}` tag). */
export function prefixPatterns(prefix: string): string[] {
  const glob = prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
  return [`{${glob}}:*`, `{${glob}:*`];
}
