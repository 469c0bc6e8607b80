/**
 * Every Redis key and channel weft uses, in one place.
 *
 * Keys that one command or one MULTI touches together share a hash tag (the
 * part in braces), so on a Redis Cluster they live in one slot:
 *
 * | key / channel | type | tag (slot) | who |
 * |---|---|---|---|
 * | `{<prefix>}:nodes` | set of node ids | `{<prefix>}` | registry |
 * | `{<prefix>}:node:<nodeId>` | string (JSON record, TTL) | `{<prefix>}` | registry |
 * | `{<prefix>}:registry` | channel | `{<prefix>}` | registry |
 * | `{<prefix>}:gateway-services:<gatewayId>` | set of services | `{<prefix>}` | directory |
 * | `{<prefix>:<service>}:sessions` | hash sessionId -> `gateway\nbusinessId` | `{<prefix>:<service>}` | directory |
 * | `{<prefix>:<service>}:gateway:<gatewayId>` | set of sessionIds | `{<prefix>:<service>}` | directory |
 * | `{<prefix>:<service>}:sessions` | channel | `{<prefix>:<service>}` | directory |
 *
 * A feature that stores per service (history per businessId, say) takes its
 * key from `serviceKeys`, so it shares the service's slot with its sessions.
 */

/** The registry's keys and channel, all in the `{<prefix>}` slot. */
export interface RegistryKeys {
  readonly tag: string;
  /** Set of the ids of registered nodes. */
  readonly nodes: string;
  /** A node's record (JSON), with the record TTL. */
  readonly node: (nodeId: string) => string;
  /** Where joins and leaves are announced. */
  readonly channel: string;
  /** Set of the services a gateway has written sessions of (so they can be removed when it dies). */
  readonly gatewayServices: (gatewayNodeId: string) => string;
}

export function registryKeys(prefix: string): RegistryKeys {
  const tag = `{${prefix}}`;
  return Object.freeze({
    tag,
    nodes: `${tag}:nodes`,
    node: (nodeId: string) => `${tag}:node:${nodeId}`,
    channel: `${tag}:registry`,
    gatewayServices: (gatewayNodeId: string) => `${tag}:gateway-services:${gatewayNodeId}`,
  });
}

/** One service's keys and channel, all in the `{<prefix>:<service>}` slot. */
export interface ServiceKeys {
  readonly tag: string;
  /** Hash sessionId -> `gatewayNodeId\nbusinessId`. */
  readonly sessions: string;
  /** Set of the sessionIds of this service one gateway holds. */
  readonly gateway: (gatewayNodeId: string) => string;
  /** Where changes to the sessions are published. */
  readonly channel: string;
}

export function serviceKeys(prefix: string, service: string): ServiceKeys {
  const tag = `{${prefix}:${service}}`;
  return Object.freeze({
    tag,
    sessions: `${tag}:sessions`,
    gateway: (gatewayNodeId: string) => `${tag}:gateway:${gatewayNodeId}`,
    channel: `${tag}:sessions`,
  });
}

/** SCAN patterns that match every key of a prefix (both tags). */
export function prefixPatterns(prefix: string): string[] {
  const glob = prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
  return [`{${glob}}:*`, `{${glob}:*`];
}
