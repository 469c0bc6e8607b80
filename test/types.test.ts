/**
 * The typed proxy and implement() are checked by the compiler: snippets that
 * use them are type-checked with the TypeScript API under the project's own
 * compiler options. Snippets live in memory (they are not files of the build,
 * whose tsc would otherwise fail on the ones that must not compile), and all
 * share one program because creating it is the slow part.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type ts from 'typescript';
import { ROOT, describeDiagnostic, typecheck } from './helpers/typecheck.js';

const SRC_INDEX = path.join(ROOT, 'src', 'index.js');
const SNIPPET_DIR = path.join(ROOT, 'test', 'fixtures', 'types');
/** Marks the one line where a snippet that must not compile has its error. */
const MARK = '// <- error';

const PRELUDE = `
import { defineContract, implement, param, Type, type Host, type Proxy } from ${JSON.stringify(SRC_INDEX)};
export const IGreeter = defineContract({
  name: 'IGreeterAppService',
  methods: {
    greet: { params: [param('name', Type.String())], returns: Type.String() },
    add: { params: [param('a', Type.Integer()), param('b', Type.Integer())], returns: Type.Integer() },
    list: { params: [param('q', Type.String()), param('page', Type.Optional(Type.Integer()))], returns: Type.Array(Type.String()) },
    create: { params: [param('item', Type.Object({ sku: Type.String(), qty: Type.Integer() }))] },
  },
});
export declare const proxy: Proxy<typeof IGreeter>;
export declare const host: Host;
export { implement };
`;

interface Snippet {
  name: string;
  compiles: boolean;
  /** The TypeScript error expected at the mark. */
  code?: number;
  body: string;
}

const SNIPPETS: Snippet[] = [
  {
    name: 'a correct proxy call',
    compiles: true,
    body: `export async function use(): Promise<string> {
  const viaHost: string = await host.proxy(IGreeter).greet('ann');
  const sum: number = await proxy.add(1, 2);
  const some: string[] = await proxy.list('a');
  const more: string[] = await proxy.list('a', 2);
  const nothing: void = await proxy.create({ sku: 'x', qty: 1 });
  return (await proxy.greet('ann')).toUpperCase() + viaHost + sum + some.length + more.length + String(nothing);
}`,
  },
  {
    name: 'a correct implementation',
    compiles: true,
    body: `export const binding = implement(IGreeter, {
  greet: (name) => \`hello \${name.toUpperCase()}\`,
  add: async (a, b) => a + b,
  list: (q, page) => [q, String(page ?? 0)],
  create: (item) => { void item.sku; },
});
export const viaFactory = implement(IGreeter, ({ proxy: p }) => ({
  greet: (name) => p(IGreeter).greet(name),
  add: (a, b) => a + b,
  list: () => [],
  create: () => undefined,
}));`,
  },
  {
    name: 'proxy.greet(42)',
    compiles: false,
    code: 2345,
    body: `export async function use(): Promise<unknown> {
  return proxy.greet(42); ${MARK}
}`,
  },
  {
    name: 'host.proxy(IGreeter).greet(42)',
    compiles: false,
    code: 2345,
    body: `export async function use(): Promise<unknown> {
  return host.proxy(IGreeter).greet(42); ${MARK}
}`,
  },
  {
    name: 'proxy.greet() without its argument',
    compiles: false,
    code: 2554,
    body: `export async function use(): Promise<unknown> {
  return proxy.greet(); ${MARK}
}`,
  },
  {
    name: "proxy.greet('a', 'b') with an extra argument",
    compiles: false,
    code: 2554,
    body: `export async function use(): Promise<unknown> {
  return proxy.greet('a', 'b'); ${MARK}
}`,
  },
  {
    name: 'the result of greet used as a number',
    compiles: false,
    code: 2322,
    body: `export async function use(): Promise<number> {
  const n: number = await proxy.greet('ann'); ${MARK}
  return n;
}`,
  },
  {
    name: 'the result used without awaiting the promise',
    compiles: false,
    code: 2322,
    body: `export function use(): string {
  return proxy.greet('ann'); ${MARK}
}`,
  },
  {
    name: 'an optional argument of the wrong type',
    compiles: false,
    code: 2345,
    body: `export async function use(): Promise<unknown> {
  return proxy.list('a', '2'); ${MARK}
}`,
  },
  {
    name: 'an object argument missing a property',
    compiles: false,
    code: 2345,
    body: `export async function use(): Promise<unknown> {
  return proxy.create({ sku: 'x' }); ${MARK}
}`,
  },
  {
    name: 'a method the contract does not have',
    compiles: false,
    code: 2551,
    body: `export async function use(): Promise<unknown> {
  return proxy.greeet('ann'); ${MARK}
}`,
  },
  {
    name: 'implement() with a method of the wrong parameter type',
    compiles: false,
    code: 2322,
    body: `export const binding = implement(IGreeter, {
  greet: (name: number) => String(name), ${MARK}
  add: (a, b) => a + b,
  list: () => [],
  create: () => undefined,
});`,
  },
  {
    name: 'implement() with a method of the wrong return type',
    compiles: false,
    code: 2322,
    body: `export const binding = implement(IGreeter, {
  greet: (name) => name.length, ${MARK}
  add: (a, b) => a + b,
  list: () => [],
  create: () => undefined,
});`,
  },
];

function fileOf(index: number): string {
  return path.join(SNIPPET_DIR, `snippet-${index}.mts`);
}

function sourceOf(snippet: Snippet): string {
  return `${PRELUDE}\n${snippet.body}\n`;
}

let checked: Map<string, readonly ts.Diagnostic[]> | undefined;

/** One program for all snippets; diagnostics per snippet file. */
function diagnostics(): Map<string, readonly ts.Diagnostic[]> {
  checked ??= typecheck(new Map(SNIPPETS.map((s, i) => [fileOf(i), sourceOf(s)])));
  return checked;
}

const describe = describeDiagnostic;

SNIPPETS.forEach((snippet, i) => {
  const title = snippet.compiles ? `${snippet.name} compiles without a diagnostic` : `${snippet.name} does not compile`;
  test(title, () => {
    const found = diagnostics().get(fileOf(i))!;
    if (snippet.compiles) {
      assert.deepEqual(found.map(describe), []);
      return;
    }
    assert.ok(found.length > 0, 'at least one diagnostic');
    assert.ok(
      found.some((d) => d.code === snippet.code),
      `TS${snippet.code} among ${found.map(describe).join('; ')}`,
    );
    // The error is where the mark is, not somewhere else (an import, the prelude).
    const lines = sourceOf(snippet).split('\n');
    const markLine = lines.findIndex((l) => l.includes(MARK)) + 1;
    assert.ok(markLine > 0);
    for (const d of found) {
      assert.ok(d.file !== undefined && d.start !== undefined, describe(d));
      assert.equal(d.file.getLineAndCharacterOfPosition(d.start).line + 1, markLine, describe(d));
    }
  });
});
