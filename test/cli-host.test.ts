/**
 * `weft host <module>` from dist against real Redis: a package by name, a
 * default export, and every module it refuses, with why.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { dropPrefix } from './fixtures/node-control.js';
import { HOST_BANNER, HOST_MODULE, cliEnv, ok, privateClusterEnv, runCli, startCli, tempDir } from './helpers/cli.js';
import { REDIS_URL, redisTest, testSecret } from './helpers/index.js';

const WITH_REDIS = await redisTest();

test('weft host loads a package by name from the current directory, and a default export { services, modules }', WITH_REDIS, async (t) => {
  const { prefix, env } = privateClusterEnv();
  t.after(() => dropPrefix(prefix));
  const dir = tempDir(t);
  const pkg = path.join(dir, 'node_modules', 'acme-services');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'acme-services', type: 'module', exports: './index.js' }));
  writeFileSync(
    path.join(pkg, 'index.js'),
    `import { services, modules } from ${JSON.stringify(pathToFileURL(HOST_MODULE).href)};\nexport default { services, modules };\n`,
  );
  const host = await startCli(t, ['host', 'acme-services'], env, HOST_BANNER, { cwd: dir });
  assert.equal(host.match[2], 'ITestAppService, IChatAppService');
  assert.equal(ok(await runCli(['call', 'test.echo', '["from a package"]'], env), 'call'), '"from a package"\n');
  host.stop();
  assert.equal(await host.exited, 0);
});

test('weft host says why a module cannot be served, and exits 1 (2 for a command line that cannot be used)', WITH_REDIS, async (t) => {
  const { prefix, env } = privateClusterEnv();
  t.after(() => dropPrefix(prefix));
  const dir = tempDir(t);
  const index = pathToFileURL(fileURLToPath(new URL('../src/index.js', import.meta.url))).href;
  const services = pathToFileURL(fileURLToPath(new URL('./fixtures/services.js', import.meta.url))).href;
  const files: Record<string, string> = {
    'nothing.mjs': 'export const greeting = "hi";\nexport function helper() {}\n',
    'empty.mjs': 'export const services = [];\n',
    'contract.mjs': `import { ITestAppService } from ${JSON.stringify(services)};\nexport const services = [ITestAppService];\n`,
    'throws.mjs': 'throw new Error("no database configured");\n',
    'syntax.mjs': 'export const services = [;\n',
    'no-module.mjs':
      `import { implement } from ${JSON.stringify(index)};\nimport { ChatAppService, IChatAppService } from ${JSON.stringify(services)};\n` +
      'export default { services: [implement(IChatAppService, new ChatAppService())] };\n',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const cases: [string[], number, RegExp][] = [
    [['host', './missing.js'], 1, /^weft: cannot load \.\/missing\.js: there is no file .*missing\.js\n$/],
    [['host', 'no-such-package-weft'], 1, /cannot find the package no-such-package-weft from .* or from weft's install: is it installed\?/],
    [
      ['host', './nothing.mjs'],
      1,
      /\.\/nothing\.mjs exports no services \(it exports greeting, helper\): a module for weft host has export const services = \[implement/,
    ],
    [['host', './empty.mjs'], 1, /export services of \.\/empty\.mjs must be a non-empty array of implement\(contract, implementation\) values/],
    [['host', './contract.mjs'], 1, /export services\[0\] of \.\/contract\.mjs is not an implement\(contract, implementation\) value/],
    [['host', './throws.mjs'], 1, /cannot load \.\/throws\.mjs \(.*throws\.mjs\): Error: no database configured\n\s+at .*throws\.mjs/],
    [['host', './syntax.mjs'], 1, /cannot load \.\/syntax\.mjs \(.*\): SyntaxError: /],
    [
      ['host', './no-module.mjs'],
      1,
      /^weft: \.\/no-module\.mjs: option "modules" must include WebSocketModule: IChatAppService needs it \(export const modules = \[WebSocketModule\] from the module\)\n$/,
    ],
    [['host'], 2, /^weft: weft host needs <module>: weft host <module>\n\(weft host --help lists the options\)\n$/],
    [['host', './a.js', './b.js'], 2, /weft host takes one argument \(<module>\), got 2: "\.\/a\.js" "\.\/b\.js"/],
  ];
  for (const [args, status, says] of cases) {
    const run = await runCli(args, env, { cwd: dir });
    assert.equal(run.status, status, `weft ${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, says, `weft ${args.join(' ')}`);
    assert.equal(run.stdout, '', 'nothing started');
  }
  const noRedis = await runCli(['host', HOST_MODULE], cliEnv({ WEFT_SECRET: testSecret() }));
  assert.equal(noRedis.status, 2);
  assert.match(noRedis.stderr, /a Redis URL is needed: --redis <url> or WEFT_REDIS_URL/);
  const noSecret = await runCli(['host', HOST_MODULE, '--redis', REDIS_URL], cliEnv());
  assert.equal(noSecret.status, 1);
  assert.match(noSecret.stderr, /InvalidOption: WEFT_SECRET is missing/);
});
