/**
 * The gateway's query parser: what URLSearchParams gives, names
 * lower-cased, the first value kept, and no name lost to Object.prototype.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQuery } from '../src/gateway/http-api.js';

/** The reference: URLSearchParams, lower-cased names, the first value wins. */
function reference(raw: string): Record<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(raw)) if (!out.has(key.toLowerCase())) out.set(key.toLowerCase(), value);
  return Object.fromEntries(out);
}

test('a query string parses as URLSearchParams would, names lower-cased, the first value kept', () => {
  const cases = [
    '',
    'a=1',
    'A=1&a=2',
    'a',
    'a=',
    '=x',
    'a=1&&b=2',
    '&',
    'a=b=c',
    'x=%20y',
    'x=a+b',
    'x=%zz',
    'businessId=42&payload=hi',
    'id=1&ID=2&Id=3',
  ];
  for (const raw of cases) assert.deepEqual({ ...parseQuery(raw) }, reference(raw), raw);
});

test('constructor and __proto__ are query names like any other', () => {
  const q = parseQuery('constructor=c&__proto__=p&toString=t');
  assert.equal(q['constructor'], 'c');
  assert.equal(Object.getOwnPropertyDescriptor(q, '__proto__')?.value, 'p');
  assert.equal(q['tostring'], 't');
  assert.equal(Object.getPrototypeOf(q), Object.prototype, 'the object keeps its prototype');
});
