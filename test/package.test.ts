/**
 * `npm pack` gives a package that installs and works: the build is part of
 * packing (prepack), the entry points and their types are in it, and every
 * source map points at a source file that is shipped too; `weft demo` runs
 * from the shipped files alone.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

test('weft demo runs from the files the package ships, laid out as an install (node_modules/weft)', async (t) => {
  const files = packedFiles();
  assert.ok(files.has(path.normalize('dist/examples/demo.js')), 'the demo program is packed');
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-install-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const installed = path.join(dir, 'node_modules', 'weft');
  for (const file of files) {
    mkdirSync(path.dirname(path.join(installed, file)), { recursive: true });
    copyFileSync(path.join(ROOT, file), path.join(installed, file));
  }
  // Its dependencies, as npm would have installed them beside it.
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(installed, 'node_modules'));
  const child = spawn(process.execPath, [path.join(installed, pkg.bin['weft']!), 'demo', '--port', '0'], {
    cwd: dir,
    env: { ...process.env, WEFT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /demo page\s+(http:\/\/[^/\s]+)\/demo/.exec(out);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    void exited.then((code) => reject(new Error(`weft demo exited with ${code}: ${out}${stderr}`)));
  });
  const answer = (await (await fetch(`${base}/api/greeter/greet?name=ann`)).json()) as { result: unknown };
  assert.equal(answer.result, 'hello ann');
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
