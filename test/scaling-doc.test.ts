/**
 * docs/scaling.md gives figures with the command that measures each: every
 * command it names runs a bench scenario that exists, and every constant
 * row says how it was measured.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/typecheck.js';

const SCALING = readFileSync(path.join(ROOT, 'docs', 'scaling.md'), 'utf8');
const RUNNER = readFileSync(path.join(ROOT, 'bench', 'runner.ts'), 'utf8');

/** The scenario names the bench registers (`SCENARIOS` in bench/runner.ts). */
function scenarios(): Set<string> {
  const block = RUNNER.slice(RUNNER.indexOf('export const SCENARIOS'), RUNNER.indexOf('};', RUNNER.indexOf('export const SCENARIOS')));
  return new Set([...block.matchAll(/^\s+'?([\w-]+)'?(?::|,)/gm)].map((m) => m[1]!));
}

test('every bench command docs/scaling.md cites runs a scenario the bench has', () => {
  const known = scenarios();
  const cited = [...SCALING.matchAll(/(?:npm run bench:one --|node dist\/bench\/run\.js) ([\w-]+)/g)].map((m) => m[1]!);
  assert.ok(cited.length >= 4, `docs/scaling.md cites its bench commands (found ${cited.length})`);
  for (const name of cited) assert.ok(known.has(name), `bench scenario "${name}" exists (bench/runner.ts has ${[...known].join(', ')})`);
});

test('every measured constant in docs/scaling.md names the command that gives it', () => {
  const table = SCALING.slice(SCALING.indexOf('## Measured constants'), SCALING.indexOf('## A million sessions'));
  const rows = table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| constant') && !l.startsWith('| ---'));
  assert.ok(rows.length >= 5);
  for (const row of rows) {
    const command = row.split('|').at(-2)!.trim();
    assert.ok(/bench|the same/.test(command), `"${row.slice(0, 60)}..." names its command`);
  }
});
