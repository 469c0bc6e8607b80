/**
 * A service host: serves its services over RPC, registers them, and drains
 * on stop (leave the registry, refuse new calls so callers fail over, finish
 * the calls in flight within a deadline, then close).
 */
import { WeftError, invalidOption } from '../errors.js';
import type { AnyContract, Proxy } from '../contract/contract.js';
import type { Logger } from '../logger.js';
import { HOST_OPTIONS, type HostOptions } from './host-options.js';
import { resolveOptions } from '../options/schema.js';
import { WeftNode, type NodeStats } from '../node/node.js';
import { startMetricsServer, type MetricsServer } from '../metrics/metrics-server.js';
import type { CallOptions } from '../rpc/rpc-client.js';
import { createProxy } from '../rpc/proxy.js';
import { RpcServer } from '../rpc/rpc-server.js';
import { NEEDS_MODULE, orderModules, type HostContext, type HostedService, type ModuleInstance } from './module.js';
import { refuseRouteClashes } from './route-clashes.js';
import type { ServiceContext } from './service-binding.js';

export { implement } from './service-binding.js';
export type { ServiceBinding, ServiceContext } from './service-binding.js';
export type { HostOptions } from './host-options.js';

export interface Host {
  readonly nodeId: string;
  readonly logger: Logger;
  /** Address of the link server, once started. */
  readonly linkAddress: { host: string; port: number } | undefined;
  /** `http://host:port/metrics` when started with the `metrics` option. */
  readonly metricsUrl: string | undefined;
  /**
   * Joins the cluster and serves its services; resolves with this host.
   *
   * @example
   * const host = await createHost({ cluster, services: [implement(IGreeterAppService, { greet: (name) => `hello ${name}` })] }).start();
   */
  start(): Promise<Host>;
  /**
   * Drains and stops; resolves when closed.
   *
   * @example
   * process.once('SIGTERM', () => void host.stop());
   */
  stop(): Promise<void>;
  /**
   * A typed proxy for calling any service of the cluster.
   *
   * @example
   * const greeting = await host.proxy(IGreeterAppService, { timeoutMs: 2000 }).greet('ann');
   */
  proxy<C extends AnyContract>(contract: C, options?: CallOptions): Proxy<C>;
  /**
   * Counters for monitoring and tests.
   *
   * @example
   * const { callsInFlight, links } = host.stats();
   * console.log(`${callsInFlight} calls in flight, ${links.tcp} TCP links`);
   */
  stats(): NodeStats;
}

type HostState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

class HostImpl implements Host {
  readonly #node: WeftNode;
  readonly #server: RpcServer;
  readonly #services: HostedService[] = [];
  readonly #modules: ModuleInstance[] = [];
  readonly #stopTimeoutMs: number;
  readonly #metricsOptions: { host: string; port: number } | undefined;
  #metricsServer: MetricsServer | undefined;
  #state: HostState = 'new';
  #starting: Promise<Host> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(input: HostOptions) {
    const options = resolveOptions(HOST_OPTIONS, input, 'createHost');
    this.#node = new WeftNode('host', options);
    this.#stopTimeoutMs = options.stopTimeoutMs;
    this.#metricsOptions = options.metrics;
    this.#server = new RpcServer({ maxConcurrentCalls: options.maxConcurrentCalls, logger: this.#node.logger, frames: this.#node.frames });
    const serviceContext: ServiceContext = {
      nodeId: this.#node.nodeId,
      logger: this.#node.logger,
      proxy: (contract, callOptions) => this.proxy(contract, callOptions),
    };
    for (const binding of options.services) {
      const instance = binding.create(serviceContext);
      this.#server.addService(binding.contract, instance);
      this.#services.push({ contract: binding.contract, instance, record: { contract: binding.contract.descriptor } });
    }

    const modules = orderModules(options.modules);
    const node = this.#node;
    const context: HostContext = {
      nodeId: node.nodeId,
      logger: node.logger,
      services: this.#services,
      isDraining: () => this.#state === 'stopping' || this.#state === 'stopped',
      directory: node.directory,
      history: node.history,
      proxy: (contract, callOptions) => this.proxy(contract, callOptions),
      frames: node.frames,
      links: node.links,
      liveNodes: node.liveNodes,
      maxFrameBytes: node.maxFrameBytes,
      maxSessionMetadataBytes: options.websocket.maxSessionMetadataBytes,
    };
    for (const m of modules) {
      const instance = m.setup(context);
      if (instance !== undefined) this.#modules.push(instance);
    }
    // A service a module claims (WebSocketModule: every WsAppServiceBase) must have that module.
    for (const s of this.#services) {
      const needs = (s.instance.constructor as { [NEEDS_MODULE]?: string })[NEEDS_MODULE];
      if (needs !== undefined && !modules.some((m) => m.name === needs)) {
        throw invalidOption('modules', `must include ${needs}Module: ${s.contract.name} needs it`);
      }
    }
  }

  get nodeId(): string {
    return this.#node.nodeId;
  }

  get logger(): Logger {
    return this.#node.logger;
  }

  get linkAddress(): { host: string; port: number } | undefined {
    return this.#node.linkAddress;
  }

  get metricsUrl(): string | undefined {
    return this.#metricsServer?.url;
  }

  start(): Promise<Host> {
    if (this.#state !== 'new') return Promise.reject(new WeftError('InvalidOption', `host cannot start: it is ${this.#state}`));
    this.#state = 'starting';
    this.#starting = (async () => {
      try {
        // Modules get ready before the node is visible to anyone.
        await this.#node.start(
          this.#services.map((s) => s.record),
          async () => {
            refuseRouteClashes(
              this.#services.map((s) => s.contract.descriptor),
              this.#node.view,
            );
            for (const m of this.#modules) await m.start?.();
          },
        );
        if (this.#metricsOptions !== undefined) this.#metricsServer = await startMetricsServer(this.#metricsOptions.host, this.#metricsOptions.port);
      } catch (err) {
        this.#state = 'stopped';
        await this.#node.close();
        throw err;
      }
      this.#state = 'running';
      return this;
    })();
    return this.#starting;
  }

  /** Drains and stops; every caller gets the same promise, and a stop during start waits for it. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'stopped';
      return;
    }
    if (this.#state === 'starting') await this.#starting?.catch(() => undefined);
    if (this.#state === 'stopped') return;
    this.#state = 'stopping';
    // 1. Nobody routes new work here: leave the registry, tell every peer on its link.
    this.#node.announceDraining();
    await this.#node.deregister();
    // 2. Calls that still arrive get Draining, which callers fail over.
    this.#server.startDraining();
    for (const m of [...this.#modules].reverse()) {
      try {
        await m.stop?.();
      } catch (err) {
        this.#node.logger.warn({ err }, 'a module failed to stop');
      }
    }
    // 3. Finish what is in flight.
    const idle = await this.#server.waitIdle(this.#stopTimeoutMs);
    if (!idle) {
      this.#node.logger.warn({ inFlight: this.#server.inFlight }, `calls still in flight after ${this.#stopTimeoutMs} ms; closing anyway`);
    }
    await this.#node.close();
    await this.#metricsServer?.close();
    this.#state = 'stopped';
    this.#node.logger.info('host stopped');
  }

  proxy<C extends AnyContract>(contract: C, options?: CallOptions): Proxy<C> {
    return createProxy(contract, this.#node.rpc, options);
  }

  stats(): NodeStats {
    return { nodeId: this.nodeId, ...this.#node.linkStats(), callsInFlight: this.#server.inFlight, sessions: 0 };
  }
}

/**
 * Creates a service host.
 *
 * @example
 * const host = await createHost({ services: [implement(IGreeterAppService, { greet: (n) => `hello ${n}` })] }).start();
 * console.log(await host.proxy(IGreeterAppService).greet('ann')); // hello ann
 * await host.stop();
 */
export function createHost(options: HostOptions = {}): Host {
  return new HostImpl(options);
}
