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
    '=',
    '==',
    'a&b',
    'a=1&',
    '&a=1',
    'a=1&a',
    '\u00e9=\u00fc',
    '?a=1',
    '??a=1',
  ];
  for (const raw of cases) assert.deepEqual({ ...parseQuery(raw) }, reference(raw), raw);
});

test('every short query over an alphabet of its separators and escapes parses as URLSearchParams would', () => {
  // The parser has a path for queries with nothing to decode and one for the rest: both are swept.
  const alphabet = ['a', 'B', '=', '&', '%', '2', '0', '+', '?', '\u00e9'];
  let seed = 7;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 5000; i++) {
    let raw = '';
    const length = next(9);
    for (let j = 0; j < length; j++) raw += alphabet[next(alphabet.length)];
    assert.deepEqual({ ...parseQuery(raw) }, reference(raw), raw);
  }
});

test('a query of thousands of pairs without values parses as URLSearchParams would', () => {
  // The parser looks for the next '=' only once it has passed the last one (no scan per pair).
  for (const raw of ['a&'.repeat(8000), 'a&'.repeat(8000) + 'b=2', 'x=1&' + 'a&'.repeat(8000)]) {
    assert.deepEqual({ ...parseQuery(raw) }, reference(raw));
  }
});

test('constructor and __proto__ are query names like any other', () => {
  const q = parseQuery('constructor=c&__proto__=p&toString=t');
  assert.equal(q['constructor'], 'c');
  assert.equal(Object.getOwnPropertyDescriptor(q, '__proto__')?.value, 'p');
  assert.equal(q['tostring'], 't');
  assert.equal(Object.getPrototypeOf(q), Object.prototype, 'the object keeps its prototype');
});
