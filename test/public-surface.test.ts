/**
 * The public surface is the product: what `import 'weft'` gives at run time,
 * and what its published types (dist/src/index.d.ts, internals stripped)
 * let a user write: a module, a cluster backend of their own, and nothing
 * that reaches inside.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import * as weft from '../src/index.js';
import { ROOT, describeDiagnostic, typecheck } from './helpers/typecheck.js';

const PUBLISHED = path.join(ROOT, 'dist', 'src', 'index.js');

test('the package exports exactly these values', () => {
  assert.deepEqual(Object.keys(weft).sort(), [
    'BusinessException',
    'DEFAULTS',
    'ERRORS',
    'SessionIndex',
    'Type',
    'UserFriendlyException',
    'ValidationException',
    'WebSocketModule',
    'WeftError',
    'WsAppServiceBase',
    'WsHostModule',
    'createClient',
    'createGateway',
    'createHost',
    'currentContext',
    'currentIdentity',
    'defineContract',
    'implement',
    'isSimpleSchema',
    'isWeftError',
    'memoryCluster',
    'param',
    'redisCluster',
    'typedPush',
  ]);
});

const PRELUDE = `import * as w from ${JSON.stringify(PUBLISHED)};
export declare const ctx: w.HostContext;
`;

const SNIPPETS: { name: string; compiles: boolean; body: string }[] = [
  {
    name: 'a module written outside weft, from the published types',
    compiles: true,
    body: `export const AuditModule: w.WeftModule = {
  name: 'Audit',
  setup(host) {
    const names = host.services.map((s) => s.contract.name);
    return {
      start() { host.logger.info({ names, node: host.nodeId }, 'audit ready'); },
      stop() { if (host.isDraining()) void host.directory.size('IChatAppService'); },
    };
  },
};
export const host = w.createHost({ modules: [AuditModule] });`,
  },
  {
    name: 'a cluster backend written outside weft (registry and session directory)',
    compiles: true,
    body: `class MyRegistry implements w.Registry {
  #view = new Map<string, w.NodeRecord>();
  async start() {}
  async register(record: w.NodeRecord) { this.#view.set(record.nodeId, record); }
  async deregister() {}
  view(): w.RegistryView { return this.#view; }
  onChange() { return () => {}; }
  onExpired() { return () => {}; }
  onRecovered() { return () => {}; }
  async close() {}
}
class MyDirectory implements w.SessionDirectory {
  readonly #indexes = new Map<string, w.SessionIndex>();
  #held: w.HeldSessions = () => [];
  async start() {}
  add(service: string, businessId: string, sessionId: string) { this.index(service).add(sessionId, businessId, 'me'); }
  remove(service: string, businessId: string, sessionId: string) { this.index(service).remove(sessionId, businessId); }
  setHeldSessions(held: w.HeldSessions) { this.#held = held; void this.#held; }
  async watch() {}
  bind(service: string, businessId: string, sessionId: string, gatewayNodeId: string) { this.index(service).add(sessionId, businessId, gatewayNodeId); }
  unbind(service: string, businessId: string, sessionId: string) { this.index(service).remove(sessionId, businessId); }
  sessionsOf(service: string, businessId: string): w.BusinessSessions { return this.index(service).sessionsOf(businessId); }
  async size(service: string) { return this.index(service).size; }
  async entries(service: string) { return this.index(service).entries(); }
  async gateways(service: string) { return this.index(service).gateways(); }
  index(service: string) { let i = this.#indexes.get(service); if (!i) this.#indexes.set(service, (i = new w.SessionIndex())); return i; }
  async close() {}
}
export const cluster: w.Cluster = {
  kind: 'memory',
  secret: 'a real secret from the environment',
  nodeExpiryMs: 0,
  join: () => ({ registry: new MyRegistry(), directory: new MyDirectory() }),
};
export const gateway = w.createGateway({ cluster });`,
  },
  {
    name: 'presence from the published types: sessions with metadata, events, and a directory that keeps records',
    compiles: true,
    body: `export async function watch(sessions: w.SessionManager): Promise<() => void> {
  const details: w.SessionDetails[] = await sessions.sessions('100');
  for (const { sessionId, gatewayNodeId, openedAt, metadata } of details) void [sessionId, gatewayNodeId, openedAt, metadata];
  const online: boolean = await sessions.isOnline('100');
  const told: number = await sessions.disconnect('100', 4003, 'revoked');
  void [online, told];
  return sessions.onPresence((event: w.PresenceEvent) => {
    if (event.type === 'join' || event.type === 'leave') void [event.sessionId, event.gatewayNodeId, event.metadata];
    else void [event.type, event.businessId, event.at];
  });
}
export const offline: w.BusinessPresenceEvent = { type: 'offline', service: 'IChatAppService', businessId: '100', at: 0 };
export const records: Pick<w.SessionDirectory, 'describe' | 'onPresence'> = {
  describe: async (): Promise<readonly w.DescribedSession[]> => [['gw.1', 'gw', Date.now(), JSON.stringify({ user: 'ann' })]],
  onPresence: async (_service: string, listener: w.PresenceListener) => {
    const record: w.SessionRecord = { openedAt: Date.now() };
    listener({ type: 'join', service: 'IChatAppService', businessId: '100', sessionId: 'gw.1', gatewayNodeId: 'gw', at: record.openedAt });
    const ev: w.SessionPresenceEvent = { type: 'leave', service: 'IChatAppService', businessId: '100', sessionId: 'gw.1', gatewayNodeId: 'gw', at: 0 };
    listener(ev);
    return () => {};
  },
};`,
  },
  { name: "a module reaching the host's frame router", compiles: false, body: 'export const x = ctx.frames;' },
  { name: "a module reaching the host's links", compiles: false, body: 'export const x = ctx.links;' },
  { name: 'a module reaching the node under the host', compiles: false, body: 'export const x = ctx.node;' },
];

test('the published types let a user write a module and a cluster backend, and keep internals out', () => {
  const fileOf = (i: number): string => path.join(ROOT, 'test', 'fixtures', 'types', `surface-${i}.mts`);
  const found = typecheck(new Map(SNIPPETS.map((s, i) => [fileOf(i), `${PRELUDE}\n${s.body}\n`])));
  SNIPPETS.forEach((snippet, i) => {
    const diagnostics = found.get(fileOf(i))!.map(describeDiagnostic);
    if (snippet.compiles) assert.deepEqual(diagnostics, [], snippet.name);
    else
      assert.ok(
        diagnostics.some((d) => d.includes('TS2339')),
        `${snippet.name} must not compile: ${diagnostics.join('; ')}`,
      );
  });
});
