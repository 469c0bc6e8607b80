/**
 * Modules extend a host, as Silky's modules do: `WebSocketModule` turns a
 * host into a WebSocket host. A module is set up once per host and may take
 * part in start and stop.
 */
import { invalidOption } from '../errors.js';
import type { AnyContract, Proxy } from '../contract/contract.js';
import type { SessionDirectory } from '../directory/session-directory.js';
import type { HistoryStore } from '../history/history-store.js';
import type { Logger } from '../logger.js';
import type { LiveNodes, ServiceRecord } from '../registry/registry.js';
import type { CallOptions } from '../rpc/rpc-client.js';
import type { FrameRoutes, NodeLinks } from '../transport/peer-link.js';

/**
 * A service class whose constructor carries this key (a module name) can
 * only run on a host with that module; the host checks at construction.
 */
export const NEEDS_MODULE = Symbol.for('weft.needs-module');

export interface HostedService {
  readonly contract: AnyContract;
  readonly instance: object;
  /** What the registry will carry for it; modules may add to it during setup. */
  readonly record: ServiceRecord;
}

/** What a module gets from the host it extends. */
export interface HostContext {
  readonly nodeId: string;
  readonly logger: Logger;
  readonly services: readonly HostedService[];
  /** True once the host began to stop. */
  isDraining(): boolean;
  /** Which sessions each businessId has, cluster-wide. */
  readonly directory: SessionDirectory;
  /** @internal push history of the cluster, if its backend keeps one */
  readonly history: HistoryStore | undefined;
  /** A typed proxy for calling any service of the cluster. */
  proxy<C extends AnyContract>(contract: C, options?: CallOptions): Proxy<C>;
  /** @internal claims frame types (WebSocketModule: session frames) */
  readonly frames: FrameRoutes;
  /** @internal links to the other nodes */
  readonly links: NodeLinks;
  /** @internal */
  readonly liveNodes: LiveNodes;
  /** @internal the largest frame between nodes */
  readonly maxFrameBytes: number;
  /** @internal `websocket.maxSessionMetadataBytes`: the largest metadata onOpen may attach to a session */
  readonly maxSessionMetadataBytes?: number;
}

export interface ModuleInstance {
  /** Before the host registers: get ready to serve. */
  start?(): Promise<void> | void;
  /** After the host left the registry, before calls in flight are awaited. */
  stop?(): Promise<void> | void;
}

export interface WeftModule {
  readonly name: string;
  readonly dependsOn?: readonly WeftModule[];
  setup(host: HostContext): ModuleInstance | void;
}

/** Modules with their dependencies first, each once. */
export function orderModules(modules: readonly WeftModule[]): WeftModule[] {
  const out: WeftModule[] = [];
  const seen = new Set<WeftModule>();
  const visit = (m: WeftModule, path: WeftModule[]): void => {
    if (seen.has(m)) return;
    if (path.includes(m)) throw invalidOption('modules', `have a dependency cycle: ${[...path, m].map((x) => x.name).join(' -> ')}`);
    for (const d of m.dependsOn ?? []) visit(d, [...path, m]);
    seen.add(m);
    out.push(m);
  };
  for (const m of modules) visit(m, []);
  return out;
}
