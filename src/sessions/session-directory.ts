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

export interface SessionDirectory {
  start(): Promise<void>;
  /** Records a session held by this node (a gateway). */
  add(service: string, businessId: string, sessionId: string): void;
  /** Forgets a session held by this node. */
  remove(service: string, sessionId: string): void;
  /** Keeps a current view of `service` on this node; needed before `index`. */
  watch(service: string): Promise<void>;
  /** The view of a watched service. */
  index(service: string): SessionIndex;
  close(): Promise<void>;
}
