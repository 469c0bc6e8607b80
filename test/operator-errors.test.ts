/**
 * Errors a person understands: a port in use names the option that changes
 * it, a plain GET on a WebSocket path answers 426 with the ws:// URL, and
 * logs are human lines on a terminal (or WEFT_LOG_FORMAT=pretty), JSON
 * otherwise.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { createGateway, memoryCluster } from '../src/index.js';
import { logFormat, prettyLine } from '../src/logger.js';
import { startStack } from './fixtures/stack.js';
import { connectWs, quietLogger, rejection } from './helpers/index.js';

const CLI = fileURLToPath(new URL('../src/cli/weft.js', import.meta.url));

async function occupiedPort(t: TestContext): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

test('a gateway whose HTTP port or link port is taken names the option that changes it', async (t) => {
  const port = await occupiedPort(t);
  const http = await rejection(createGateway({ cluster: memoryCluster(), logger: quietLogger(), http: { host: '127.0.0.1', port } }).start());
  assert.equal(http.code, 'InvalidOption');
  assert.match(
    http.message,
    new RegExp(`^option "http\\.port": the gateway \\(HTTP\\) cannot listen: 127\\.0\\.0\\.1:${port} is already in use by another process`),
  );
  assert.match(http.message, /0 for any free one \(EADDRINUSE\)$/);
  assert.deepEqual(http.data, { option: 'http.port' });

  const link = await rejection(
    createGateway({
      cluster: memoryCluster(),
      logger: quietLogger(),
      http: { host: '127.0.0.1', port: 0 },
      listen: { host: '127.0.0.1', port },
    }).start(),
  );
  assert.match(link.message, new RegExp(`^option "listen\\.port": the link server cannot listen: 127\\.0\\.0\\.1:${port} is already in use`));
});

/** Runs the CLI to its end; its exit code and what it printed. */
function runCli(args: string[], env: NodeJS.ProcessEnv, killAfterMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (killAfterMs !== undefined && stdout.includes('weft gateway on')) setTimeout(() => child.kill('SIGTERM'), killAfterMs);
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of ['WEFT_SECRET', 'WEFT_REDIS_URL', 'WEFT_JWT_SECRET', 'WEFT_LOG_FORMAT', 'WEFT_HTTP_PORT', 'WEFT_CONFIG'])
    if (!(k in extra)) delete env[k];
  return env;
}

test('weft gateway on a port in use says which flag and variable change it, with no stack trace', async (t) => {
  const port = await occupiedPort(t);
  const run = await runCli(['gateway', '--port', String(port)], cliEnv({ WEFT_LOG_LEVEL: 'warn' }));
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    new RegExp(`weft: InvalidOption: option "http.port": the gateway \\(HTTP\\) cannot listen: 127\\.0\\.0\\.1:${port} is already in use`),
  );
  assert.match(run.stderr, /weft: set it with --port <n> or WEFT_HTTP_PORT/);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  const link = await runCli(['gateway', '--port', '0', '--listen', `127.0.0.1:${port}`], cliEnv({ WEFT_LOG_LEVEL: 'warn' }));
  assert.equal(link.code, 1);
  assert.match(link.stderr, /weft: set it with --listen <host:port> or WEFT_LISTEN/);
  assert.doesNotMatch(link.stderr, /\n\s+at /, 'no stack trace');
});

test('a plain GET on a WebSocket path answers 426 Upgrade Required with the ws:// URL to open', async (t) => {
  const stack = await startStack(t);
  const res = await fetch(`${stack.url}/api/chat?businessId=100`);
  assert.equal(res.status, 426);
  assert.equal(res.headers.get('upgrade'), 'websocket');
  const body = (await res.json()) as { code: string; status: number; errorMessage: string };
  assert.equal(body.code, 'UpgradeRequired');
  assert.equal(body.status, 426);
  const wsUrl = `ws://127.0.0.1:${stack.gateway.port}/api/chat?businessId=100`;
  assert.ok(body.errorMessage.includes(wsUrl), body.errorMessage);
  // The URL it names is the one that works.
  const client = await connectWs(wsUrl);
  client.ws.close();
  await client.closed;
  // A path that is neither still answers 404.
  assert.equal((await fetch(`${stack.url}/api/nothing-here`)).status, 404);
});

test('logs are human lines on a terminal or with WEFT_LOG_FORMAT=pretty, JSON lines otherwise', () => {
  assert.equal(logFormat({}, true), 'pretty');
  assert.equal(logFormat({}, false), 'json');
  assert.equal(logFormat({ WEFT_LOG_FORMAT: 'json' }, true), 'json');
  assert.equal(logFormat({ WEFT_LOG_FORMAT: 'pretty' }, false), 'pretty');
  assert.equal(logFormat({ WEFT_LOG_FORMAT: 'PRETTY' }, false), 'pretty');
  const time = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
  assert.equal(
    prettyLine(JSON.stringify({ level: 30, time, node: 'gateway-0123456789', url: 'http://127.0.0.1:5000', msg: 'gateway listening' })),
    '03:04:05.678 INFO  gateway-0123456789  gateway listening  url=http://127.0.0.1:5000\n',
  );
  assert.equal(
    prettyLine(JSON.stringify({ level: 40, time, node: 'host-1', err: 'connect ECONNREFUSED 127.0.0.1:6379', msg: 'redis error' })),
    '03:04:05.678 WARN  host-1  redis error  err="connect ECONNREFUSED 127.0.0.1:6379"\n',
  );
  assert.equal(prettyLine('not json'), 'not json\n');
  assert.ok(prettyLine(JSON.stringify({ level: 50, time, msg: 'x' }), true).includes('\u001b[31mERROR\u001b[0m'), 'red on a colour terminal');
});

test('weft gateway logs human lines with WEFT_LOG_FORMAT=pretty and JSON lines when its stderr is not a terminal', async () => {
  const pretty = await runCli(['gateway', '--port', '0'], cliEnv({ WEFT_LOG_LEVEL: 'info', WEFT_LOG_FORMAT: 'pretty' }), 50);
  assert.equal(pretty.code, 0);
  const prettyLines = pretty.stderr.split('\n').filter((l) => l !== '');
  assert.ok(prettyLines.length >= 2, pretty.stderr);
  for (const line of prettyLines) assert.match(line, /^\d\d:\d\d:\d\d\.\d{3} (INFO |WARN |DEBUG|ERROR) gateway-[0-9a-f]{10} {2}\S/);
  assert.ok(
    prettyLines.some((l) => / INFO {2}gateway-[0-9a-f]{10} {2}gateway listening {2}url=http:\/\/127\.0\.0\.1:\d+$/.test(l)),
    pretty.stderr,
  );

  // The test's pipes are not terminals: JSON, one object a line.
  const json = await runCli(['gateway', '--port', '0'], cliEnv({ WEFT_LOG_LEVEL: 'info' }), 50);
  assert.equal(json.code, 0);
  const entries = json.stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { msg: string; node: string });
  assert.ok(entries.some((e) => e.msg === 'gateway listening'));
  assert.match(json.stdout, /^weft gateway on http:\/\/127\.0\.0\.1:\d+ /, 'the banner stays on stdout, apart from the logs');
});

/** util-linux `script`, which runs a command on a pseudo-terminal: how a test gets a real terminal. */
const SCRIPT =
  spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0 ? {} : { skip: 'no `script` (util-linux) to give the CLI a terminal' };

test('weft gateway on a real terminal logs coloured human lines with no setting at all, plain ones with NO_COLOR', SCRIPT, async () => {
  const onTerminal = (extra: Record<string, string>): Promise<string> =>
    new Promise((resolve) => {
      const env = cliEnv({ WEFT_LOG_LEVEL: 'info', ...extra });
      const child = spawn('script', ['-qefc', `'${process.execPath}' '${CLI}' gateway --port 0`, '/dev/null'], {
        env,
        stdio: ['pipe', 'pipe', 'ignore'], // stdin left open: script may end the session at its end of file
      });
      // Stopped once its banner is out (script passes the signal on); a start that never comes ends with the test's timeout.
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('weft gateway on') && child.exitCode === null) child.kill('SIGTERM');
      });
      child.once('exit', () => resolve(out));
    });
  // eslint-disable-next-line no-control-regex
  const ANSI = /\u001b\[[0-9;]*m/g;
  const coloured = await onTerminal({});
  assert.ok(coloured.includes('\u001b[32mINFO \u001b[0m'), JSON.stringify(coloured.slice(0, 300)));
  const lines = coloured
    .replace(ANSI, '')
    .split(/\r?\n/)
    .filter((l) => l !== '');
  assert.ok(
    lines.some((l) => /^\d\d:\d\d:\d\d\.\d{3} INFO {2}gateway-[0-9a-f]{10} {2}gateway listening {2}url=http:\/\/127\.0\.0\.1:\d+$/.test(l)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => l.startsWith('weft gateway on http://127.0.0.1:')),
    'the banner',
  );
  assert.ok(!lines.some((l) => l.startsWith('{')), 'no JSON line on a terminal');
  const plain = await onTerminal({ NO_COLOR: '1' });
  assert.doesNotMatch(plain, ANSI);
  assert.match(plain, / INFO {2}gateway-[0-9a-f]{10} {2}gateway listening/);
});

test('weft gateway of a memory cluster keeps its link server on 127.0.0.1, whatever --host says', async () => {
  const run = await runCli(['gateway', '--host', '0.0.0.0', '--port', '0'], cliEnv({ WEFT_LOG_LEVEL: 'info', WEFT_LOG_FORMAT: 'json' }), 50);
  assert.equal(run.code, 0);
  const started = run.stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { msg: string; link?: string })
    .find((e) => e.msg === 'node started');
  assert.match(started?.link ?? '', /^127\.0\.0\.1:\d+$/);
  assert.match(run.stdout, /^weft gateway on http:\/\/0\.0\.0\.0:\d+ \(memory cluster/);
});
