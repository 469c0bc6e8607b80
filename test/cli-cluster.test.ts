/**
 * The commands of `weft` that run services and reach a cluster's sessions,
 * each in its own process spawned from dist, against real Redis: `weft host`
 * serves a module's services, `weft gateway` fronts them, WebSocket sessions
 * open on it, and `weft call`, `weft push` and `weft sessions` work on them
 * from outside. Also `weft demo` and the help and errors of each.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { connectSession } from '../src/client/index.js';
import { dropPrefix } from './fixtures/node-control.js';
import { cliEnv, runCli, startCli, type CliRun } from './helpers/cli.js';
import { REDIS_URL, connectWs, eventually, getHealth, httpJson, redisTest, testSecret, uniquePrefix } from './helpers/index.js';

const WITH_REDIS = await redisTest();
const TEST_DIR = fileURLToPath(new URL('.', import.meta.url)); // dist/test/
const HOST_MODULE = fileURLToPath(new URL('./fixtures/cli-host-module.js', import.meta.url));
const HOST_BANNER = /weft host (\S+) serving (.*) \((\w+) cluster, link (\S+)\)\n/;
const GATEWAY_BANNER = /weft gateway on (http:\/\/\S+) .*\n/;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-cli-host-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A private cluster: its prefix (dropped afterwards) and the environment every command of it runs with. */
function privateCluster(t: TestContext): { prefix: string; env: NodeJS.ProcessEnv } {
  const prefix = uniquePrefix();
  t.after(() => dropPrefix(prefix));
  return { prefix, env: cliEnv({ WEFT_SECRET: testSecret(), WEFT_REDIS_URL: REDIS_URL, WEFT_PREFIX: prefix }) };
}

function ok(run: CliRun, what: string): string {
  assert.equal(run.status, 0, `${what}: exit ${run.status}, stderr: ${run.stderr}`);
  return run.stdout;
}

test(
  'weft host serves a module’s services; weft call, weft push and weft sessions reach them and their sessions through a CLI gateway',
  WITH_REDIS,
  async (t) => {
    const { env } = privateCluster(t);
    // A relative path, from the directory the command runs in.
    const host = await startCli(t, ['host', './fixtures/cli-host-module.js', '--name', 'svc'], env, HOST_BANNER, { cwd: TEST_DIR });
    const [, hostId, served, kind] = host.match;
    assert.match(hostId!, /^svc-[0-9a-f]{10}$/);
    assert.equal(served, 'ITestAppService, IChatAppService');
    assert.equal(kind, 'redis');
    const gw = await startCli(t, ['gateway', '--port', '0'], env, GATEWAY_BANNER);
    const url = gw.match[1]!;
    await eventually(async () => (await fetch(`${url}/readyz`)).status === 200, 10000, 'the gateway ready with the host');
    assert.equal((await httpJson(`${url}/api/test/echo?value=hi`)).body.result, 'hi', 'the gateway routes to the CLI host');

    // weft call: a JSON array, a JSON object by parameter name, by contract name or route segment.
    assert.equal(ok(await runCli(['call', 'ITestAppService.echo', '["hi"]'], env), 'call echo'), '"hi"\n');
    assert.equal(ok(await runCli(['call', 'test.add', '{"b": 2, "a": 40}'], env), 'call add'), '42\n');
    assert.deepEqual(JSON.parse(ok(await runCli(['call', 'test.createItem', '{"item": {"name": "pen", "qty": 3}}'], env), 'call createItem')), {
      name: 'pen',
      qty: 3,
    });
    assert.equal(ok(await runCli(['call', 'test.whoami'], env), 'call whoami'), '"weft-host"\n');
    const slow = await runCli(['call', 'test.slow', '[3000]', '--timeout', '300ms'], env);
    assert.equal(slow.status, 1, slow.stderr);
    assert.match(slow.stderr, /^weft: Timeout: /);

    // Failures: the error's code and message, exit 1; bad arguments: a usage error, exit 2.
    const business = await runCli(['call', 'test.fail', '["BusinessError"]'], env);
    assert.equal(business.status, 1);
    assert.equal(business.stdout, '');
    assert.equal(business.stderr, 'weft: BusinessError: refused for a business reason\n');
    const invalid = await runCli(['call', 'test.add', '{"a": "x", "b": 2}'], env);
    assert.equal(invalid.status, 1);
    assert.match(invalid.stderr, /^weft: ValidateError: .*\nweft: {3}a: Expected integer\n$/);
    const noMethod = await runCli(['call', 'test.nope'], env);
    assert.equal(noMethod.status, 1);
    assert.match(noMethod.stderr, /NotFound: ITestAppService has no method "nope"; its methods are echo, add, /);
    const noService = await runCli(['call', 'nope.x'], env);
    assert.equal(noService.status, 1);
    assert.match(
      noService.stderr,
      /NotFound: no host of the cluster serves a service named "nope": its services are ITestAppService, IChatAppService/,
    );
    for (const [args, says] of [
      [['call', 'test.add', '{"a": 1, "c": 2}'], /ITestAppService\.add has no parameter c: it takes a, b/],
      [['call', 'test.add', '{"a": 1}'], /ITestAppService\.add needs b: it takes a, b/],
      [['call', 'test.add', '[1, 2, 3]'], /ITestAppService\.add got 3 arguments: it takes a, b/],
      [['call', 'test.add', 'a=1'], /\[json-args\] must be JSON: an array of the arguments, or an object keyed by parameter name/],
      [['call', 'test.echo', '"hi"'], /\[json-args\] must be a JSON array \(\["ann"\]\) or object/],
    ] as const) {
      const run = await runCli([...args], env);
      assert.equal(run.status, 2, `weft ${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, says);
      assert.match(run.stderr, /\(weft call --help lists the options\)/);
    }

    // Two sessions of businessId 100 on the CLI gateway: a weft/client one (it confirms receipts) and a plain one.
    const wsUrl = `${url.replace(/^http/, 'ws')}/api/chat`;
    const got: { data: string; offset: number | undefined }[] = [];
    const v1 = connectSession(wsUrl, {
      businessId: '100',
      WebSocket,
      onMessage: (d, info) => got.push({ data: String(d), offset: info.position?.offset }),
    });
    t.after(() => v1.close());
    const bare = await connectWs(`${wsUrl}?businessId=100`);
    t.after(() => bare.ws.close());
    const other = await connectWs(`${wsUrl}?businessId=200`);
    t.after(() => other.ws.close());
    await eventually(
      async () => (await runCli(['sessions', 'IChatAppService', '100', '--count'], env)).stdout === '2\n',
      15000,
      'two sessions of 100',
    );

    // weft sessions: a table, JSON, counts; by contract name, segment or path.
    const table = ok(await runCli(['sessions', 'chat'], env), 'sessions')
      .trimEnd()
      .split('\n');
    assert.match(table[0]!, /^SESSION\s+BUSINESSID\s+GATEWAY$/);
    assert.equal(table.length, 4, table.join('\n'));
    const gatewayId = (await getHealth(url)).body.nodeId;
    for (const line of table.slice(1)) assert.match(line, new RegExp(`^${gatewayId}\\.\\S+\\s+(100|200)\\s+${gatewayId}$`));
    const listed = JSON.parse(ok(await runCli(['sessions', '/api/chat', '100', '--json'], env), 'sessions --json')) as {
      sessionId: string;
      businessId: string;
      gatewayNodeId: string;
    }[];
    assert.equal(listed.length, 2);
    assert.ok(listed.every((s) => s.businessId === '100' && s.gatewayNodeId === gatewayId && s.sessionId.startsWith(`${gatewayId}.`)));
    assert.equal(ok(await runCli(['sessions', 'chat', '--count'], env), 'count all'), '3\n');
    assert.equal(ok(await runCli(['sessions', 'chat', 'nobody'], env), 'sessions nobody'), 'no sessions of IChatAppService for businessId nobody\n');

    // weft push: written to both sessions of 100, with the service's history (the weft/client session sees a position).
    assert.equal(ok(await runCli(['push', 'chat', '100', 'from the CLI'], env), 'push'), '2\n');
    assert.deepEqual(await bare.waitFor(1), ['from the CLI']);
    await eventually(() => got.length === 1, 5000, 'the weft/client session got the push');
    assert.equal(got[0]!.data, 'from the CLI');
    assert.equal(typeof got[0]!.offset, 'number', 'the push has a position');
    assert.deepEqual(other.messages, [], 'another businessId gets nothing');
    // --ack client: only the weft/client session confirms receipt.
    assert.equal(ok(await runCli(['push', 'IChatAppService', '100', 'confirm it', '--ack', 'client', '--receipt-timeout', '2s'], env), 'ack'), '1\n');
    await eventually(() => got.length === 2);
    // A message that starts with a dash goes after --.
    assert.equal(ok(await runCli(['push', 'chat', '200', '--', '-1 degree'], env), 'push --'), '1\n');
    assert.deepEqual(await other.waitFor(1), ['-1 degree']);
    assert.equal(ok(await runCli(['push', 'chat', 'nobody', 'x'], env), 'push to nobody'), '0\n');
    const notWs = await runCli(['push', 'ITestAppService', '100', 'x'], env);
    assert.equal(notWs.status, 1);
    assert.match(
      notWs.stderr,
      /no host of the cluster serves a WebSocket service named "ITestAppService": its WebSocket services are IChatAppService \(\/api\/chat\)/,
    );

    // weft call reaches a method that pushes to the sessions, hashed by businessId to their host.
    assert.equal(ok(await runCli(['call', 'chat.echo', '{"businessId": "100", "msg": "hello"}'], env), 'call chat.echo'), '2\n');
    assert.match((await bare.waitFor(3))[2]!, /^message:hello,sessionId:/);

    // The client nodes left: only the host and the gateway are in the registry.
    const nodes = JSON.parse(ok(await runCli(['nodes', '--json'], env), 'nodes')) as { role: string }[];
    assert.deepEqual(nodes.map((n) => n.role).sort(), ['gateway', 'host']);

    // SIGTERM drains and stops the host (exit 0); its service is then gone from the cluster.
    host.stop();
    assert.equal(await host.exited, 0);
    const gone = await runCli(['call', 'test.echo', '["hi"]'], env);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /NotFound: no host of the cluster serves a service named "test": the cluster has no service/);
    gw.stop();
    assert.equal(await gw.exited, 0);
  },
);

test('weft host loads a package by name from the current directory, and a default export { services, modules }', WITH_REDIS, async (t) => {
  const { env } = privateCluster(t);
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
  const { env } = privateCluster(t);
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

test('weft call, push and sessions refuse a command line that cannot be used, with exit 2, before reaching the cluster', async () => {
  const env = cliEnv({ WEFT_SECRET: testSecret(), WEFT_REDIS_URL: 'redis://127.0.0.1:1' });
  const cases: [string[], RegExp][] = [
    [['call'], /^weft: weft call needs <service\.method>: weft call <service\.method> \[json-args\]$/m],
    [['call', 'greet'], /<service\.method> must be a service and a method joined by a dot, e.g. IGreeterAppService\.greet, got "greet"/],
    [['call', 'a.b', '[]', 'extra'], /weft call takes at most 2 arguments \(<service\.method> \[json-args\]\), got 3/],
    [['call', 'a.b', '--timeout', 'soon'], /--timeout must be a positive duration/],
    [['push', 'chat', '100'], /weft push needs <message>: weft push <service> <businessId> <message>/],
    [['push', 'chat', '100', 'x', '--ack', 'maybe'], /--ack must be written, client or none, got "maybe"/],
    [['push', 'chat', '100', 'x', '--receipt-timeout', '1s'], /--receipt-timeout goes with --ack client/],
    [['push', 'chat', '100', '-x'], /unknown option -x for weft push/],
    [['sessions'], /weft sessions needs <service>/],
    [['sessions', 'chat', '1', '2'], /weft sessions takes at most 2 arguments/],
    [['sessions', 'chat', 'a\u0001b'], /<businessId>: businessId must be at most \d+ characters without control characters/],
    [['call', 'a.b', '--secret', 'x'], /--secret is not accepted/],
  ];
  for (const [args, says] of cases) {
    const run = await runCli(args, env);
    assert.equal(run.status, 2, `weft ${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, says, `weft ${args.join(' ')}`);
    assert.match(run.stderr, new RegExp(`\\(weft ${args[0]!} --help lists the options\\)`));
  }
  const noRedis = await runCli(['sessions', 'chat'], cliEnv({ WEFT_SECRET: testSecret() }));
  assert.equal(noRedis.status, 2);
  assert.match(noRedis.stderr, /a Redis URL is needed/);
  const unreachable = await runCli(
    ['call', 'a.b'],
    cliEnv({ WEFT_SECRET: testSecret(), WEFT_REDIS_URL: 'redis://127.0.0.1:1', WEFT_LOG_LEVEL: 'silent' }),
  );
  assert.equal(unreachable.status, 1);
  assert.match(unreachable.stderr, /CommunicationError: cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
  assert.match(unreachable.stderr, /set it with --redis <url> or WEFT_REDIS_URL/);
});

test('weft demo runs what npm start runs, prints its URLs, serves them, and stops on SIGTERM', async (t) => {
  const demo = await startCli(t, ['demo', '--port', '0'], cliEnv(), /demo page\s+(http:\/\/[^/\s]+)\/demo\n[\s\S]*Press Ctrl\+C to stop\.\n/);
  const base = demo.match[1]!;
  assert.match(demo.stdout, /weft demo is running \(one process, memory cluster\)/);
  assert.match(demo.stdout, /open: no tokens checked/);
  assert.equal((await httpJson(`${base}/api/greeter/greet?name=ann`)).body.result, 'hello ann');
  assert.equal((await fetch(`${base}/demo`)).status, 200);
  demo.stop();
  assert.equal(await demo.exited, 0);
  // The port from WEFT_HTTP_PORT too, and tokens required with a key from a file.
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'key'), `${'k'.repeat(40)}\n`);
  const secured = await startCli(
    t,
    ['demo', '--jwt-secret-file', path.join(dir, 'key')],
    cliEnv({ WEFT_HTTP_PORT: '0' }),
    /demo page\s+(http:\/\/[^/\s]+)\/demo\n/,
  );
  assert.match(secured.stdout, /tokens required: HS256/);
  assert.equal((await httpJson(`${secured.match[1]!}/api/greeter/greet?name=ann`)).status, 401);
  secured.stop();
  assert.equal(await secured.exited, 0);
});

test('weft help lists every command, and each new command has --help with its arguments and options', async () => {
  const help = await runCli(['help'], cliEnv());
  assert.equal(help.status, 0);
  for (const command of ['gateway', 'host', 'demo', 'call', 'push', 'sessions', 'token', 'nodes']) {
    assert.match(help.stdout, new RegExp(`^  ${command}\\s+\\S`, 'm'), `weft help lists ${command}`);
  }
  for (const [command, says] of [
    [
      'host',
      [
        'usage: weft host <module> [options]',
        'export default { services, modules }',
        '--redis <url>',
        '--secret-file <path>',
        '--listen <host:port>',
        '--advertise <host>',
        '--name <name>',
        'WEFT_LISTEN',
      ],
    ],
    ['demo', ['usage: weft demo [--port 5000]', '--port <n>', 'WEFT_HTTP_PORT', '--jwt-secret-file <path>']],
    ['call', ['usage: weft call <service.method> [json-args] [options]', '--timeout <duration>', '--redis <url>', '{"name":"ann"}']],
    [
      'push',
      [
        'usage: weft push <service> <businessId> <message> [options]',
        '--ack <written|client|none>',
        '--receipt-timeout <duration>',
        'WEFT_REDIS_URL',
      ],
    ],
    ['sessions', ['usage: weft sessions <service> [businessId] [options]', '--count', '--json', '--prefix <p>']],
  ] as const) {
    for (const args of [
      [command, '--help'],
      ['help', command],
    ]) {
      const run = await runCli(args, cliEnv());
      assert.equal(run.status, 0, `weft ${args.join(' ')}: ${run.stderr}`);
      for (const s of says) assert.ok(run.stdout.includes(s), `weft ${args.join(' ')} mentions ${s}:\n${run.stdout}`);
    }
  }
});
