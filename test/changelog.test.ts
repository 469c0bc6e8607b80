/**
 * CHANGELOG.md keeps the Keep a Changelog form: versions as `## [x.y.z] - date`
 * (or `## [Unreleased]`), changes grouped under the six kinds it names.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const KINDS = new Set(['Added', 'Changed', 'Deprecated', 'Removed', 'Fixed', 'Security']);

test('CHANGELOG.md is in Keep a Changelog form: versions, then changes grouped by kind', () => {
  const text = readFileSync(new URL('../../CHANGELOG.md', import.meta.url), 'utf8');
  const lines = text.split('\n');
  assert.equal(lines[0], '# Changelog');
  assert.match(text, /keepachangelog\.com/);
  const versions = lines.filter((l) => l.startsWith('## '));
  assert.equal(versions[0], '## [Unreleased]');
  for (const v of versions) assert.match(v, /^## \[(Unreleased|\d+\.\d+\.\d+)\]( - \d{4}-\d{2}-\d{2})?$/, v);
  for (const kind of lines.filter((l) => l.startsWith('### '))) assert.ok(KINDS.has(kind.slice(4)), `${kind} is not a Keep a Changelog kind`);
  // Every change sits under a kind, none straight under a version.
  let underKind = false;
  for (const line of lines) {
    if (line.startsWith('## ')) underKind = false;
    if (line.startsWith('### ')) underKind = true;
    if (line.startsWith('- ')) assert.ok(underKind, `an entry outside a kind: ${line}`);
  }
});
