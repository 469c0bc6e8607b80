/**
 * `weft host`, `weft gateway`, `weft call`, `weft push` and `weft sessions`,
 * each in its own process spawned from dist, against real Redis: a host
 * serves a module's services, a gateway fronts them, WebSocket sessions open
 * on it, and the one-shot commands work on them from outside.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { dropPrefix } from './fixtures/node-control.js';
import { WebSocket } from 'ws';
import { connectSession } from '../src/client/index.js';
import { GATEWAY_BANNER, HOST_BANNER, ok, privateClusterEnv, runCli, startCli } from './helpers/cli.js';
import { connectWs, eventually, getHealth, httpJson, redisTest } from './helpers/index.js';

const WITH_REDIS = await redisTest();
const TEST_DIR = fileURLToPath(new URL('.', import.meta.url)); // dist/test/

test(
  'weft host serves a module’s services; weft call, weft push and weft sessions reach them and their sessions through a CLI gateway',
  WITH_REDIS,
  async (t) => {
    const { prefix, env } = privateClusterEnv();
    t.after(() => dropPrefix(prefix));
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
    // Arguments that do not fit the contract from the registry: a usage error, exit 2 (more cases in cli-usage.test.ts).
    const unknownParam = await runCli(['call', 'test.add', '{"a": 1, "c": 2}'], env);
    assert.equal(unknownParam.status, 2);
    assert.match(unknownParam.stderr, /^weft: ITestAppService\.add has no parameter c: it takes a, b\n\(weft call --help lists the options\)\n$/);

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
