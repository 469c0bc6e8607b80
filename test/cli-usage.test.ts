/**
 * The commands of `weft` added for every job, without a cluster: their help,
 * the command lines they refuse (exit 2, before reaching anything), and
 * `weft demo`, which needs no Redis.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { callArgs } from '../src/cli/client-commands.js';
import { UsageError } from '../src/cli/flags.js';
import { IChatAppService, ITestAppService } from './fixtures/services.js';
import { cliEnv, runCli, startCli, tempDir } from './helpers/cli.js';
import { httpJson, testSecret } from './helpers/index.js';

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

test('weft call matches [json-args] to the parameters of the contract: an array as it is, an object by name', () => {
  const method = (name: string) => ITestAppService.descriptor.methods.find((m) => m.name === name)!;
  const chatCount = IChatAppService.descriptor.methods.find((m) => m.name === 'count')!;
  assert.deepEqual(callArgs(method('add'), 'ITestAppService', '[1, 2]'), [1, 2]);
  assert.deepEqual(callArgs(method('add'), 'ITestAppService', '{"b": 2, "a": 1}'), [1, 2]);
  assert.deepEqual(callArgs(method('whoami'), 'ITestAppService', undefined), []);
  assert.deepEqual(callArgs(method('createItem'), 'ITestAppService', '{"item": {"name": "pen", "qty": 3}}'), [{ name: 'pen', qty: 3 }]);
  // A trailing optional parameter left out is not sent.
  assert.deepEqual(callArgs(chatCount, 'IChatAppService', '{}'), []);
  assert.deepEqual(callArgs(chatCount, 'IChatAppService', '{"businessId": "100"}'), ['100']);
  for (const [name, text, says] of [
    ['add', '{"a": 1, "c": 2}', /^ITestAppService\.add has no parameter c: it takes a, b$/],
    ['add', '{"a": 1}', /^ITestAppService\.add needs b: it takes a, b$/],
    ['add', '[1, 2, 3]', /^ITestAppService\.add got 3 arguments: it takes a, b$/],
    [
      'add',
      'a=1',
      /^\[json-args\] must be JSON: an array of the arguments, or an object keyed by parameter name \(ITestAppService\.add: it takes a, b\); /,
    ],
    [
      'echo',
      '"hi"',
      /^\[json-args\] must be a JSON array \(\["ann"\]\) or object \(\{"name": "ann"\}\), got "hi" \(ITestAppService\.echo: it takes value\)$/,
    ],
    ['whoami', '[1]', /^ITestAppService\.whoami got 1 arguments: it takes no arguments$/],
  ] as const) {
    assert.throws(
      () => callArgs(method(name), 'ITestAppService', text),
      (e: Error) => e instanceof UsageError && e.command === 'call' && says.test(e.message),
      `${name} ${text}`,
    );
  }
  assert.throws(() => callArgs(chatCount, 'IChatAppService', '{"nope": 1}'), /has no parameter nope: it takes \[businessId\]/);
});
