/**
 * Runs the tables of docs/routes.md against defineContract, so the docs and
 * the route rules cannot drift apart.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { defineContract, param, Type, type HttpVerb, type ParamDef, type ParamSource, type TSchema } from '../src/index.js';

const DOC = readFileSync(new URL('../../docs/routes.md', import.meta.url), 'utf8');

/** The rows of the markdown table whose header row is exactly `columns`. */
function table(columns: readonly string[]): Record<string, string>[] {
  const lines = DOC.split('\n');
  const cells = (line: string): string[] =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim().replaceAll('`', ''));
  const start = lines.findIndex((l) => l.trim().startsWith('|') && cells(l).join('|') === columns.join('|'));
  assert.ok(start >= 0, `docs/routes.md has a table with columns ${columns.join(', ')}`);
  assert.match(lines[start + 1] ?? '', /^\|\s*-{3,}/, 'the header is followed by a separator row');
  const rows: Record<string, string>[] = [];
  for (let i = start + 2; i < lines.length && lines[i]!.trim().startsWith('|'); i++) {
    const row = cells(lines[i]!);
    assert.equal(row.length, columns.length, `line ${i + 1} has ${columns.length} cells`);
    rows.push(Object.fromEntries(columns.map((c, j) => [c, row[j]!])));
  }
  return rows;
}

function schemaOf(type: string): TSchema {
  switch (type) {
    case 'string':
      return Type.String();
    case 'number':
      return Type.Number();
    case 'integer':
      return Type.Integer();
    case 'boolean':
      return Type.Boolean();
    case 'enum':
      return Type.Union([Type.Literal('open'), Type.Literal('closed')]);
    case 'object':
      return Type.Object({ name: Type.String() });
    case 'array':
      return Type.Array(Type.String());
    default:
      throw new Error(`docs/routes.md: unknown parameter type "${type}"`);
  }
}

/** `id:string@path, page:integer?` -> param(...) list. */
function paramsOf(cell: string): ParamDef[] {
  if (cell === '-') return [];
  return cell.split(',').map((spec) => {
    const m = /^([^:\s]+):(\w+)(\?)?(?:@(\w+))?$/.exec(spec.trim());
    if (m === null) throw new Error(`docs/routes.md: cannot read parameter "${spec}"`);
    const [, name, type, optional, from] = m;
    const base = schemaOf(type!);
    const schema = optional === undefined ? base : Type.Optional(base);
    return from === undefined ? param(name!, schema) : param(name!, schema, { from: from as ParamSource });
  });
}

/** `POST path=by-email/{email}` -> { method, path }; `-` -> undefined. */
function httpOf(cell: string): { method?: HttpVerb; path?: string } | undefined {
  if (cell === '-') return undefined;
  const http: { method?: HttpVerb; path?: string } = {};
  for (const token of cell.split(/\s+/)) {
    if (token.startsWith('path=')) http.path = token.slice('path='.length);
    else http.method = token as HttpVerb;
  }
  return http;
}

function build(row: Record<string, string>) {
  const http = httpOf(row['explicit']!);
  const method = http === undefined ? { params: paramsOf(row['params']!) } : { params: paramsOf(row['params']!), http };
  return defineContract({ name: row['contract']!, route: row['template']!, methods: { [row['method']!]: method } });
}

const examples = table(['contract', 'template', 'method', 'params', 'explicit', 'verb', 'path', 'bindings']);
const refused = table(['contract', 'template', 'method', 'params', 'explicit', 'message', 'why']);

test('the routes table has enough examples to cover every verb and every binding source', () => {
  assert.ok(examples.length >= 25, `${examples.length} example rows`);
  const verbs = new Set(examples.map((r) => r['verb']));
  for (const v of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) assert.ok(verbs.has(v), `an example with verb ${v}`);
  const sources = new Set(examples.flatMap((r) => r['bindings']!.split(',').map((b) => b.split('=')[1]?.trim())));
  for (const s of ['path', 'query', 'header', 'body']) assert.ok(sources.has(s), `an example binding to ${s}`);
  assert.ok(refused.length >= 10, `${refused.length} refused rows`);
});

for (const row of examples) {
  test(`${row['contract']}.${row['method']} with template ${row['template']} routes to ${row['verb']} ${row['path']}`, () => {
    const contract = build(row);
    const [method] = contract.descriptor.methods;
    assert.ok(method !== undefined);
    assert.equal(method.verb, row['verb']);
    assert.equal(method.path, row['path']);
    const bindings = method.params.map((p) => `${p.name}=${p.from}`).join(', ');
    assert.equal(bindings === '' ? '-' : bindings, row['bindings']);
  });
}

for (const row of refused) {
  test(`refuses ${row['contract']}.${row['method']} with template ${row['template']}: ${row['message']}`, () => {
    assert.throws(
      () => build(row),
      (e: unknown) => {
        const error = e as { code?: unknown; message?: unknown };
        assert.equal(error.code, 'InvalidContract');
        assert.equal(typeof error.message, 'string');
        assert.ok((error.message as string).includes(row['message']!), `"${String(error.message)}" contains "${row['message']}"`);
        assert.ok((error.message as string).includes(row['contract']!), `"${String(error.message)}" names the contract`);
        return true;
      },
    );
  });
}
