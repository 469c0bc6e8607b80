/**
 * An in-process stack: a memory cluster, hosts and a gateway on port 0.
 */
import type { TestContext } from 'node:test';
import {
  WebSocketModule,
  createGateway,
  createHost,
  implement,
  memoryCluster,
  type Cluster,
  type Gateway,
  type GatewayOptions,
  type Host,
  type HostOptions,
} from '../../src/index.js';
import { ChatAppService, IChatAppService, testService } from '../fixtures/services.js';
import { quietLogger } from './index.js';

export interface StackOptions {
  /** Hosts serving ITestAppService and IChatAppService. Default 1. */
  hosts?: number;
  cluster?: Cluster;
  gateway?: Partial<GatewayOptions>;
  host?: Partial<HostOptions>;
}

export interface Stack {
  cluster: Cluster;
  gateway: Gateway;
  hosts: Host[];
  /** The ChatAppService instance of each host, in host order. */
  chats: ChatAppService[];
  /** http://127.0.0.1:<port> */
  url: string;
  /** ws://127.0.0.1:<port> */
  wsUrl: string;
}

export async function startStack(t: TestContext, options: StackOptions = {}): Promise<Stack> {
  const cluster = options.cluster ?? memoryCluster();
  const hosts: Host[] = [];
  const chats: ChatAppService[] = [];
  for (let i = 0; i < (options.hosts ?? 1); i++) {
    const chat = new ChatAppService();
    let host: Host | undefined;
    host = createHost({
      cluster,
      logger: quietLogger(),
      name: `host${i}`,
      modules: [WebSocketModule],
      services: [testService(() => host!.nodeId), implement(IChatAppService, chat)],
      ...options.host,
    });
    await host.start();
    t.after(() => host!.stop());
    hosts.push(host);
    chats.push(chat);
  }
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 }, ...options.gateway }).start();
  t.after(() => gateway.stop());
  return { cluster, gateway, hosts, chats, url: gateway.url, wsUrl: gateway.url.replace(/^http/, 'ws') };
}
