/**
 * The README's layout section and docs/architecture.md describe the tree as
 * it is: every folder of src/ is in both, and every src/ path they name exists.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/typecheck.js';

function srcFolders(dir = 'src'): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const rel = `${dir}/${entry.name}`;
    out.push(rel, ...srcFolders(rel));
  }
  return out;
}

function namedPaths(text: string): string[] {
  return [...new Set([...text.matchAll(/\bsrc\/[\w./-]*[\w/]/g)].map((m) => m[0]))];
}

const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const LAYOUT = README.slice(README.indexOf('## Layout'), README.indexOf('## Licence'));
const ARCHITECTURE = readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');

test('every folder of src/ is in the README layout and in docs/architecture.md', () => {
  for (const folder of srcFolders()) {
    const leaf = `${path.basename(folder)}/`;
    assert.ok(LAYOUT.includes(`${folder}/`) || LAYOUT.includes(` ${leaf}`), `README layout names ${folder}/`);
    assert.ok(ARCHITECTURE.includes(`${folder}/`), `docs/architecture.md names ${folder}/`);
  }
});

test('every src/ path the README layout and docs/architecture.md name exists', () => {
  for (const named of [...namedPaths(LAYOUT), ...namedPaths(ARCHITECTURE)]) {
    assert.ok(existsSync(path.join(ROOT, named)), `${named} exists`);
  }
});

test('every file docs/architecture.md names by its folder-relative path exists', () => {
  // `gateway/front-door/delivery.ts`, `rpc/rpc-client.ts`...: paths relative to src/.
  for (const m of ARCHITECTURE.matchAll(/`((?:[\w-]+\/)+[\w.-]+\.ts)`/g)) {
    const rel = m[1]!;
    const inSrc = path.join(ROOT, 'src', rel);
    const inFrontDoor = path.join(ROOT, 'src', 'gateway', 'front-door', rel);
    assert.ok(existsSync(inSrc) || existsSync(path.join(ROOT, rel)) || existsSync(inFrontDoor), `${rel} exists`);
  }
});
