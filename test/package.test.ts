/**
 * `npm pack` gives a package that installs and works: the build is part of
 * packing (prepack), the entry points and their types are in it, and every
 * source map points at a source file that is shipped too.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/typecheck.js';

interface PackageJson {
  scripts: Record<string, string>;
  bin: Record<string, string>;
  exports: Record<string, { types: string; default: string }>;
}

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson;

function packedFiles(): Set<string> {
  // The build already ran (npm test builds first); --ignore-scripts keeps this quick.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  const [report] = JSON.parse(out) as [{ files: { path: string }[] }];
  return new Set(report.files.map((f) => f.path));
}

test('packing builds first, so a fresh clone never packs without dist/', () => {
  assert.match(pkg.scripts['prepack'] ?? '', /npm run build/);
});

test('the package holds every entry point, its types, the bin, and the sources its maps point at', () => {
  const files = packedFiles();
  const entries = [...Object.values(pkg.exports).flatMap((e) => [e.types, e.default]), ...Object.values(pkg.bin)];
  for (const entry of entries) assert.ok(files.has(path.normalize(entry)), `${entry} is packed`);
  const maps = [...files].filter((f) => f.endsWith('.js.map'));
  assert.ok(maps.length > 20, `${maps.length} source maps`);
  for (const map of maps) {
    const { sources } = JSON.parse(readFileSync(path.join(ROOT, map), 'utf8')) as { sources: string[] };
    for (const source of sources) {
      const shipped = path.normalize(path.join(path.dirname(map), source));
      assert.ok(files.has(shipped), `${map} points at ${shipped}, which is packed`);
    }
  }
});
