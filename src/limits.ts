/**
 * Fixed limits: values weft uses that are not options (yet), each with its
 * unit in its name. DEFAULTS (src/defaults.ts) lists them beside the option
 * defaults, with why each is fixed.
 */
export const LIMITS = Object.freeze({
  /** First wait before dialing a failed peer again; doubles per failure, with jitter. */
  backoffInitialMs: 100,
  /** Longest wait between dials. */
  backoffMaxMs: 5_000,
  /** A link handshake must finish within this. */
  handshakeTimeoutMs: 5_000,
  /** Inbound links a node holds in handshake (not yet authenticated) at once; a connection beyond is closed at once. */
  maxHandshakingLinks: 64,
  /** Warnings a peer can cause at will (refused link, bad frame, over the handshake cap) are logged at most once per this, with a count of the rest. */
  linkWarningIntervalMs: 1_000,
  /** Outbound bytes a link may hold unsent; beyond, it refuses frames with Overloaded until it drains. */
  maxLinkQueuedBytes: 64 * 1024 * 1024,
  /** A push waits at most this long for gateways to say how many sessions they reached. */
  pushAckTimeoutMs: 5_000,
  /** Directory updates a replica holds while it loads a service; past it they are dropped and the service is loaded again. */
  directoryLoadBufferMaxBytes: 8 * 1024 * 1024,
});
