/**
 * Every TypeScript snippet of the README compiles against the published
 * package (`import ... from 'weft'` resolves to dist/src/index.d.ts through
 * package.json's exports), under the project's compiler options.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, describeDiagnostic, typecheck } from './helpers/typecheck.js';

const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const SNIPPETS = [...README.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

test('the README has TypeScript snippets, and each compiles against the published types', () => {
  assert.ok(SNIPPETS.length >= 2, `found ${SNIPPETS.length} snippets`);
  // Each snippet is a module of its own, in the package folder so that 'weft' resolves to this package.
  const files = new Map(SNIPPETS.map((source, i) => [path.join(ROOT, 'test', 'fixtures', 'types', `readme-${i}.mts`), `${source}\nexport {};\n`]));
  const found = typecheck(files);
  const failures = [...files.keys()].flatMap((file, i) => found.get(file)!.map((d) => `snippet ${i + 1}: ${describeDiagnostic(d)}`));
  assert.deepEqual(failures, []);
});
