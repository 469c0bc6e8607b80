/**
 * The session directory: per WebSocket service, which sessions each
 * businessId has, cluster-wide, and which gateway holds each one.
 *
 * Gateways write (they hold the sockets); hosts of a WebSocket service
 * `watch` it and then read without crossing the network. Entries of a
 * gateway vanish with it: when it closes them, or when the registry
 * reports it gone.
 */
import type { SessionIndex } from './session-index.js';

/** The sessions a gateway holds, as (service, businessId, sessionId). */
export type HeldSessions = () => Iterable<readonly [string, string, string]>;

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
  /** Keeps a current view of `service` on this node; needed before `index`. */
  watch(service: string): Promise<void>;
  /** The view of a watched service. */
  index(service: string): SessionIndex;
  close(): Promise<void>;
}
