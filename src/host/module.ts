/**
 * Modules extend a host, as Silky's modules do: `WebSocketModule` turns a
 * host into a WebSocket host. A module is set up once per host and may take
 * part in start and stop.
 */
import type { AnyContract } from '../contract/contract.js';
import type { Logger } from '../logger.js';
import type { WeftNode } from '../node/node.js';
import type { ServiceRecord } from '../registry/registry.js';

export interface HostedService {
  readonly contract: AnyContract;
  readonly instance: object;
  /** What the registry will carry for it; modules may add to it during setup. */
  readonly record: ServiceRecord;
}

export interface HostContext {
  /** @internal the node under the host */
  readonly node: WeftNode;
  readonly logger: Logger;
  readonly services: readonly HostedService[];
  readonly isDraining: () => boolean;
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
    if (path.includes(m)) throw new Error(`module dependency cycle: ${[...path, m].map((x) => x.name).join(' -> ')}`);
    for (const d of m.dependsOn ?? []) visit(d, [...path, m]);
    seen.add(m);
    out.push(m);
  };
  for (const m of modules) visit(m, []);
  return out;
}
