/**
 * A process that calls services and pushes to sessions without serving
 * anything: a script, a worker, a cron job. It joins the cluster as a
 * `client` node (listed in the registry, never in a hash ring or a route),
 * calls through typed proxies, and reaches the sessions of any WebSocket
 * service with the same SessionManager a WebSocket service has.
 *
 * Cost: this process owns no shard of the session directory (it is in no
 * hash ring), so it keeps none of it and hears none of its updates; each
 * lookup of a businessId is one Redis read (with `fullDirectoryReplica`, a
 * replica of the service's whole directory instead, as every host keeps).
 * A push then goes straight to the gateways, no hop through a host: one
 * frame per gateway holding a target session, with one Redis script first
 * when the service keeps history.
 */
import { WeftError } from '../errors.js';
import type { AnyContract, Proxy } from '../contract/contract.js';
import type { Logger } from '../logger.js';
import { WeftNode, type NodeOptions } from '../node/node.js';
import { NODE_OPTIONS } from '../node/node-options.js';
import { resolveOptions } from '../options/schema.js';
import { PushClient } from '../push/push-client.js';
import type { CallOptions } from '../rpc/rpc-client.js';
import { createProxy } from '../rpc/proxy.js';
import type { NodeRecord, RegistryView } from '../registry/registry.js';
import { SessionManager, type BoundSessions, type SessionManagerDeps } from '../websocket/session-manager.js';

export interface ClusterClient {
  readonly nodeId: string;
  readonly logger: Logger;
  /**
   * Joins the cluster; resolves with this client.
   *
   * @example
   * const client = await createClient({ cluster }).start();
   */
  start(): Promise<ClusterClient>;
  /**
   * Leaves the cluster and closes its links.
   *
   * @example
   * const client = await createClient({ cluster }).start();
   * try {
   *   await (await client.sessions(IWsTestAppService)).pushToBusiness(businessId, 'report ready');
   * } finally {
   *   await client.stop();
   * }
   */
  stop(): Promise<void>;
  /**
   * A typed proxy for calling any service of the cluster.
   *
   * @example
   * const client = await createClient({ cluster }).start();
   * console.log(await client.proxy(IGreeterAppService).greet('ann'));
   */
  proxy<C extends AnyContract>(contract: C, options?: CallOptions): Proxy<C>;
  /**
   * The sessions of a WebSocket service, cluster-wide, from this process:
   * push to a businessId, a session or all, close them (revocation), count
   * and list them. Resolves once this process has the service's directory.
   *
   * @example
   * const client = await createClient({ cluster }).start();
   * const sessions = await client.sessions(IWsTestAppService);
   * console.log(await sessions.count(businessId), 'sessions;', await sessions.pushToBusiness(businessId, 'hello'), 'reached');
   */
  sessions(contract: AnyContract): Promise<SessionManager>;
}

/** Pushes are capped below the link frame limit, leaving room for the frame's own fields (as on hosts). */
const FRAME_OVERHEAD_BYTES = 4096;

/** A client holds no session: nothing is bound to it. */
const NOTHING_BOUND: BoundSessions = Object.freeze({ get: () => undefined, values: () => [] });

class ClusterClientImpl implements ClusterClient {
  readonly #node: WeftNode;
  readonly #push: PushClient;
  readonly #managers = new Map<string, Promise<SessionManager>>();
  #state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  #starting: Promise<ClusterClient> | undefined;

  constructor(input: NodeOptions) {
    const options = resolveOptions(NODE_OPTIONS, input, 'createClient');
    this.#node = new WeftNode('client', options);
    this.#push = new PushClient({ links: this.#node.links, liveNodes: this.#node.liveNodes, frames: this.#node.frames });
  }

  get nodeId(): string {
    return this.#node.nodeId;
  }

  get logger(): Logger {
    return this.#node.logger;
  }

  start(): Promise<ClusterClient> {
    this.#starting ??= (async () => {
      this.#state = 'starting';
      await this.#node.start([]);
      this.#state = 'running';
      return this;
    })();
    return this.#starting;
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    if (this.#state === 'starting') await this.#starting?.catch(() => undefined);
    this.#state = 'stopped';
    await this.#node.deregister();
    await this.#node.close();
  }

  proxy<C extends AnyContract>(contract: C, options?: CallOptions): Proxy<C> {
    return createProxy(contract, this.#node.rpc, options);
  }

  sessions(contract: AnyContract): Promise<SessionManager> {
    if (this.#state !== 'running')
      return Promise.reject(new WeftError('ServiceUnavailable', 'the client is not started: await client.start() first'));
    const name = contract.name;
    let manager = this.#managers.get(name);
    if (manager === undefined) {
      manager = this.#node.directory.watch(name).then(
        () =>
          new SessionManager(name, {
            push: this.#push,
            history: () => this.#historyOf(name),
            directory: this.#node.directory,
            liveNodes: this.#node.liveNodes,
            bound: NOTHING_BOUND,
            maxPayloadBytes: Math.max(1024, this.#node.maxFrameBytes - FRAME_OVERHEAD_BYTES),
          }),
      );
      manager.catch(() => this.#managers.delete(name));
      this.#managers.set(name, manager);
    }
    return manager;
  }

  /** What the service's hosts say it keeps (its oldest live host's record): the client must push as they do. */
  #historyOf(service: string): ReturnType<SessionManagerDeps['history']> {
    const record = oldestHostOf(this.#node.view, service);
    if (record === undefined) {
      return new WeftError('ServiceUnavailable', `no host of WebSocket service ${service} is live: cannot tell whether it keeps history`);
    }
    const limits = record.services.find((s) => s.contract.name === service)?.websocket?.history;
    const store = this.#node.history;
    return limits === undefined || store === undefined ? undefined : { store, limits };
  }
}

function oldestHostOf(view: RegistryView, service: string): NodeRecord | undefined {
  let oldest: NodeRecord | undefined;
  for (const record of view.values()) {
    if (record.role !== 'host' || !record.services.some((s) => s.contract.name === service && s.websocket !== undefined)) continue;
    if (oldest === undefined || record.startedAt < oldest.startedAt) oldest = record;
  }
  return oldest;
}

/**
 * Creates a client of the cluster: calls services and pushes to sessions,
 * serves nothing.
 *
 * @example
 * const client = await createClient({ cluster }).start();
 * const sessions = await client.sessions(IWsTestAppService);
 * await sessions.pushToBusiness('100', 'hello from a worker');
 * await sessions.closeBusiness('100', 4003, 'access revoked');
 * console.log(await client.proxy(IGreeterAppService).greet('ann'));
 * await client.stop();
 */
export function createClient(options: NodeOptions = {}): ClusterClient {
  return new ClusterClientImpl(options);
}
