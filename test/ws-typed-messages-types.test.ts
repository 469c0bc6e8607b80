/**
 * Typed messages are checked by the compiler, both ways: a service's
 * `this.pushes` takes only the contract's pushes with their payloads, its
 * handlers must match the contract's messages, and `weft/client` typed by the
 * contract (`connectSession<typeof IShop>`) types `on` and `call`. Snippets
 * are type-checked in memory under the project's compiler options, as
 * test/types.test.ts does.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type ts from 'typescript';
import { ROOT, describeDiagnostic, typecheck } from './helpers/typecheck.js';

const SRC_INDEX = path.join(ROOT, 'src', 'index.js');
const CLIENT_INDEX = path.join(ROOT, 'src', 'client', 'index.js');
const SNIPPET_DIR = path.join(ROOT, 'test', 'fixtures', 'types');
const MARK = '// <- error';

const PRELUDE = `
import { Type, WsAppServiceBase, defineContract, implement, param, type Implementation, type WsSession } from ${JSON.stringify(SRC_INDEX)};
import { connectSession, type ClientSession } from ${JSON.stringify(CLIENT_INDEX)};
export const IShop = defineContract({
  name: 'IShopAppService',
  methods: { ship: { params: [param('businessId', Type.String())], returns: Type.Integer() } },
  pushes: { orderShipped: Type.Object({ orderId: Type.String(), at: Type.Integer() }) },
  messages: {
    typing: { params: Type.Object({ room: Type.String() }), returns: Type.Object({ seen: Type.String() }) },
    ping: {},
  },
});
export declare const client: ClientSession<typeof IShop>;
export { connectSession, implement, WsAppServiceBase };
export type { Implementation, WsSession };
`;

interface Snippet {
  name: string;
  compiles: boolean;
  code?: number;
  body: string;
}

const SNIPPETS: Snippet[] = [
  {
    name: 'a service with typed pushes and handlers',
    compiles: true,
    body: `export class Shop extends WsAppServiceBase<typeof IShop> implements Implementation<typeof IShop> {
  ship(businessId: string): Promise<number> {
    return this.pushes.toBusiness(businessId, 'orderShipped', { orderId: 'A-1', at: 1 });
  }
  typing(params: { room: string }, session: WsSession) {
    return { seen: params.room + session.businessId };
  }
  async ping() {}
}
export const binding = implement(IShop, new Shop());`,
  },
  {
    name: 'a typed client',
    compiles: true,
    body: `export async function use(): Promise<string> {
  const session = connectSession<typeof IShop>('ws://127.0.0.1:5000/api/shop', { businessId: '1' });
  const off = session.on('orderShipped', (order, info) => console.log(order.orderId.toUpperCase(), order.at + 1, info.position));
  off();
  const { seen } = await session.call('typing', { room: 'a' });
  const nothing: null = await session.call('ping');
  await session.call('ping', undefined, { timeoutMs: 100 });
  return seen + String(nothing);
}`,
  },
  {
    name: 'an untyped client takes any name',
    compiles: true,
    body: `export async function use(): Promise<unknown> {
  const session = connectSession('ws://127.0.0.1:5000/api/shop', { businessId: '1' });
  session.on('anything', (data) => console.log(data));
  return session.call('whatever', { x: 1 });
}`,
  },
  {
    name: 'on() with a push the contract does not declare',
    compiles: false,
    code: 2345,
    body: `export function use(): void {
  client.on('orderShiped', () => undefined); ${MARK}
}`,
  },
  {
    name: 'a push payload field used as the wrong type',
    compiles: false,
    code: 2322,
    body: `export function use(): void {
  client.on('orderShipped', (order) => {
    const n: number = order.orderId; ${MARK}
    void n;
  });
}`,
  },
  {
    name: 'call() with params of the wrong type',
    compiles: false,
    code: 2322,
    body: `export async function use(): Promise<unknown> {
  return client.call('typing', { room: 1 }); ${MARK}
}`,
  },
  {
    name: 'call() without the params a message needs',
    compiles: false,
    code: 2554,
    body: `export async function use(): Promise<unknown> {
  return client.call('typing'); ${MARK}
}`,
  },
  {
    name: 'call() of a message the contract does not declare',
    compiles: false,
    code: 2345,
    body: `export async function use(): Promise<unknown> {
  return client.call('typed', { room: 'a' }); ${MARK}
}`,
  },
  {
    name: 'the reply used as another type',
    compiles: false,
    code: 2322,
    body: `export async function use(): Promise<number> {
  const n: number = await client.call('typing', { room: 'a' }); ${MARK}
  return n;
}`,
  },
  {
    name: 'a push sent with a bad payload',
    compiles: false,
    code: 2322,
    body: `export class Shop extends WsAppServiceBase<typeof IShop> {
  ship(businessId: string): Promise<number> {
    return this.pushes.toBusiness(businessId, 'orderShipped', { orderId: 1, at: 1 }); ${MARK}
  }
}`,
  },
  {
    name: 'a push the contract does not declare',
    compiles: false,
    code: 2345,
    body: `export class Shop extends WsAppServiceBase<typeof IShop> {
  ship(businessId: string): Promise<number> {
    return this.pushes.toBusiness(businessId, 'orderLost', {}); ${MARK}
  }
}`,
  },
  {
    name: 'a service without the handler of a message',
    compiles: false,
    code: 2420,
    body: `export class Shop extends WsAppServiceBase<typeof IShop> implements Implementation<typeof IShop> { ${MARK}
  ship(): number { return 0; }
  ping() {}
}`,
  },
  {
    name: 'a handler that returns the wrong reply',
    compiles: false,
    code: 2416,
    body: `export class Shop extends WsAppServiceBase<typeof IShop> implements Implementation<typeof IShop> {
  ship(): number { return 0; }
  typing(params: { room: string }) { return { seen: params.room.length }; } ${MARK}
  ping() {}
}`,
  },
];

function fileOf(index: number): string {
  return path.join(SNIPPET_DIR, `typed-messages-${index}.mts`);
}

function sourceOf(snippet: Snippet): string {
  return `${PRELUDE}\n${snippet.body}\n`;
}

let checked: Map<string, readonly ts.Diagnostic[]> | undefined;

function diagnostics(): Map<string, readonly ts.Diagnostic[]> {
  checked ??= typecheck(new Map(SNIPPETS.map((s, i) => [fileOf(i), sourceOf(s)])));
  return checked;
}

SNIPPETS.forEach((snippet, i) => {
  const title = snippet.compiles ? `${snippet.name} compiles without a diagnostic` : `${snippet.name} does not compile`;
  test(title, () => {
    const found = diagnostics().get(fileOf(i))!;
    if (snippet.compiles) {
      assert.deepEqual(found.map(describeDiagnostic), []);
      return;
    }
    assert.ok(
      found.some((d) => d.code === snippet.code),
      `TS${snippet.code} among ${found.map(describeDiagnostic).join('; ')}`,
    );
    const lines = sourceOf(snippet).split('\n');
    const markLine = lines.findIndex((l) => l.includes(MARK)) + 1;
    for (const d of found) {
      assert.ok(d.file !== undefined && d.start !== undefined, describeDiagnostic(d));
      assert.equal(d.file.getLineAndCharacterOfPosition(d.start).line + 1, markLine, describeDiagnostic(d));
    }
  });
});
