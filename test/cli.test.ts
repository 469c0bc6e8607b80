import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { decodeJwt } from 'jose';
import { createHost, redisCluster, type Host } from '../src/index.js';
import { dropPrefix, freePort } from './fixtures/node-control.js';
import { testService } from './fixtures/services.js';
import { CLI, cliEnv, runCli } from './helpers/cli.js';
import { REDIS_URL, eventually, getHealth, httpJson, quietLogger, redisTest, testSecret, uniquePrefix } from './helpers/index.js';

// Asked before any test runs: the spawnSync of the tests below blocks the loop the check needs.
const WITH_REDIS = await redisTest();

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Starts `weft gateway <args>` and resolves with its URL once it serves. */
function startGateway(
  t: TestContext,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ url: string; banner: string; exited: Promise<number | null>; stop: () => void }> {
  const child = spawn(process.execPath, [CLI, 'gateway', ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /weft gateway on (http:\/\/\S+).*\n/.exec(out);
      if (m?.[1] !== undefined) resolve({ url: m[1], banner: m[0], exited, stop: () => child.kill('SIGTERM') });
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
  });
}

function secretFile(t: TestContext, contents: string, name = 'secret'): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  writeFileSync(file, contents);
  chmodSync(file, 0o600);
  return file;
}

test('weft help lists the commands and reads the secret from WEFT_SECRET or --secret-file, never --secret', () => {
  const help = spawnSync(process.execPath, [CLI, 'help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /gateway\s+run a gateway/);
  assert.match(help.stdout, /--secret-file <path>/);
  assert.match(help.stdout, /WEFT_SECRET/);
  assert.doesNotMatch(help.stdout, /--secret </);
  const unknown = spawnSync(process.execPath, [CLI, 'nope'], { encoding: 'utf8' });
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command "nope"/);
});

test('weft gateway --secret is refused with why and what to use instead, and nothing starts', () => {
  for (const args of [['--secret', 'Zm9vYmFyYmF6cXV4cXV1eA=='], ['--secret=Zm9vYmFyYmF6cXV4cXV1eA==']]) {
    const run = spawnSync(process.execPath, [CLI, 'gateway', '--redis', REDIS_URL, ...args, '--port', '0'], { encoding: 'utf8', env: cliEnv() });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--secret is not accepted/);
    assert.match(run.stderr, /visible to every user/);
    assert.match(run.stderr, /WEFT_SECRET/);
    assert.match(run.stderr, /--secret-file <path>/);
    assert.doesNotMatch(run.stdout, /weft gateway on/);
  }
});

test('weft gateway on Redis without a secret, or with a weak one, exits 1 and says how to set one', (t) => {
  const missing = spawnSync(process.execPath, [CLI, 'gateway', '--redis', REDIS_URL, '--port', '0'], { encoding: 'utf8', env: cliEnv() });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /InvalidOption: WEFT_SECRET is missing/);
  assert.match(missing.stderr, /openssl rand -base64 32/);
  const weak = spawnSync(process.execPath, [CLI, 'gateway', '--redis', REDIS_URL, '--port', '0'], {
    encoding: 'utf8',
    env: cliEnv({ WEFT_SECRET: 'change-me' }),
  });
  assert.equal(weak.status, 1);
  assert.match(weak.stderr, /WEFT_SECRET is an example value/);
  assert.doesNotMatch(weak.stderr, /change-me/, 'the secret itself is not printed');
  const file = secretFile(t, 'short\n');
  const short = spawnSync(process.execPath, [CLI, 'gateway', '--redis', REDIS_URL, '--secret-file', file, '--port', '0'], {
    encoding: 'utf8',
    env: cliEnv(),
  });
  assert.equal(short.status, 1);
  assert.match(short.stderr, /the secret in .* is too short: 5 bytes/);
  const absent = spawnSync(process.execPath, [CLI, 'gateway', '--redis', REDIS_URL, '--secret-file', `${file}.nope`, '--port', '0'], {
    encoding: 'utf8',
    env: cliEnv(),
  });
  assert.equal(absent.status, 2);
  assert.match(absent.stderr, /cannot read --secret-file/);
});

test('weft gateway serves /healthz and stops on SIGTERM', async (t) => {
  const gw = await startGateway(t, ['--port', '0'], cliEnv());
  const health = await getHealth(gw.url);
  assert.equal(health.status, 200);
  assert.equal(health.body.status, 'ok');
  assert.equal(health.body.cluster, 'memory');
  gw.stop();
  assert.equal(await gw.exited, 0);
});

test('weft gateway joins a Redis cluster with the secret from --secret-file (trimmed) or from WEFT_SECRET', WITH_REDIS, async (t) => {
  const prefix = uniquePrefix();
  t.after(() => dropPrefix(prefix));
  const fromFile = await startGateway(
    t,
    ['--redis', REDIS_URL, '--prefix', prefix, '--secret-file', secretFile(t, `${testSecret()}\n`), '--port', '0'],
    cliEnv(),
  );
  const health = await getHealth(fromFile.url);
  assert.equal(health.body.cluster, 'redis');
  fromFile.stop();
  assert.equal(await fromFile.exited, 0);
  const fromEnv = await startGateway(t, ['--redis', REDIS_URL, '--prefix', prefix, '--port', '0'], cliEnv({ WEFT_SECRET: testSecret() }));
  assert.equal((await getHealth(fromEnv.url)).body.cluster, 'redis');
  fromEnv.stop();
  assert.equal(await fromEnv.exited, 0);
});

test('weft gateway requires tokens when given a JWT key from WEFT_JWT_SECRET or --jwt-secret-file, and refuses a weak one', async (t) => {
  const key = 'k'.repeat(40);
  const fromEnv = await startGateway(t, ['--port', '0'], cliEnv({ WEFT_JWT_SECRET: key }));
  assert.match(fromEnv.banner, /tokens required \(HS256 secret\)/);
  fromEnv.stop();
  assert.equal(await fromEnv.exited, 0);
  const fromFile = await startGateway(t, ['--port', '0', '--jwt-secret-file', secretFile(t, `${key}\n`)], cliEnv());
  assert.match(fromFile.banner, /tokens required \(HS256 secret\)/);
  fromFile.stop();
  assert.equal(await fromFile.exited, 0);
  const open = await startGateway(t, ['--port', '0'], cliEnv());
  assert.match(open.banner, /no tokens checked/);
  open.stop();
  await open.exited;
  const weak = spawnSync(process.execPath, [CLI, 'gateway', '--port', '0'], { encoding: 'utf8', env: cliEnv({ WEFT_JWT_SECRET: 'short' }) });
  assert.equal(weak.status, 1);
  assert.match(weak.stderr, /InvalidOption/);
  assert.match(weak.stderr, /auth\.jwt\.secret/);
  assert.doesNotMatch(weak.stderr, /short/);
});

test("weft <command> --help prints that command's options, and --version the version of the package", () => {
  for (const [command, flags] of [
    [
      'gateway',
      ['--redis <url>', '--secret-file <path>', '--port <n>', '--listen <host:port>', '--advertise <host>', '--config <path>', 'WEFT_HTTP_PORT'],
    ],
    ['token', ['--sub <businessId>', '--ttl <duration>', '--jwt-secret-file <path>', 'WEFT_JWT_SECRET']],
    ['nodes', ['--redis <url>', '--prefix <p>', '--json', 'WEFT_REDIS_URL']],
  ] as const) {
    for (const args of [
      [command, '--help'],
      [command, '-h'],
      ['help', command],
    ]) {
      const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: cliEnv() });
      assert.equal(run.status, 0, `weft ${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stdout, new RegExp(`^usage: weft ${command} `));
      for (const flag of flags) assert.ok(run.stdout.includes(flag), `weft ${args.join(' ')} mentions ${flag}`);
    }
  }
  for (const args of [['--version'], ['-v'], ['version']]) {
    const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    assert.equal(run.status, 0);
    assert.equal(run.stdout, `weft ${PACKAGE_VERSION}\n`);
  }
  const help = spawnSync(process.execPath, [CLI, 'help'], { encoding: 'utf8' });
  assert.match(help.stdout, /token\s+print a development token/);
  assert.match(help.stdout, /nodes\s+list the nodes of a Redis cluster/);
});

test('a bad value is refused with the flag, variable or config key it came from, exit code 2, and nothing starts', (t) => {
  const config = secretFile(t, JSON.stringify({ port: 'eighty' }), 'weft.json');
  const cases: { args: string[]; env?: Record<string, string>; says: RegExp }[] = [
    { args: ['gateway', '--port', 'abc'], says: /^weft: --port must be a port number from 0 to 65535, got "abc"$/m },
    { args: ['gateway', '--port', '70000'], says: /--port must be a port number from 0 to 65535, got "70000"/ },
    { args: ['gateway'], env: { WEFT_HTTP_PORT: 'abc' }, says: /^weft: WEFT_HTTP_PORT must be a port number from 0 to 65535, got "abc"$/m },
    { args: ['gateway', '--config', config], says: /"port" in .*weft\.json must be a port number from 0 to 65535, got "eighty"/ },
    { args: ['gateway', '--listen', 'nowhere'], says: /--listen must be host:port, :port or port/ },
    {
      args: ['gateway', '--redis', 'http://127.0.0.1:6379'],
      says: /--redis must be a redis:, rediss:, redis-cluster:, redis-sentinel: URL, got one starting with http:/,
    },
    { args: ['gateway', '--bogus'], says: /^weft: unknown option --bogus for weft gateway$/m },
    { args: ['gateway', '--port'], says: /^weft: --port needs a value/m },
    { args: ['gateway', 'extra'], says: /weft gateway takes no arguments besides its options: "extra"/ },
    {
      args: ['token', '--sub', '100', '--ttl', 'soon'],
      env: { WEFT_JWT_SECRET: 'k'.repeat(40) },
      says: /--ttl must be a positive duration such as 90s/,
    },
    { args: ['token'], env: { WEFT_JWT_SECRET: 'k'.repeat(40) }, says: /--sub <businessId> is required/ },
    { args: ['token', '--sub', '100'], says: /no key to sign with: set WEFT_JWT_SECRET, or .*--jwt-secret-file <path>/ },
    { args: ['token', '--sub', '100', '--jwt-secret', 'k'.repeat(40)], says: /--jwt-secret is not accepted: a secret on the command line/ },
    { args: ['nodes'], says: /a Redis URL is needed: --redis <url> or WEFT_REDIS_URL/ },
  ];
  for (const c of cases) {
    const run = spawnSync(process.execPath, [CLI, ...c.args], { encoding: 'utf8', env: cliEnv(c.env ?? {}) });
    assert.equal(run.status, 2, `weft ${c.args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, c.says, `weft ${c.args.join(' ')}`);
    assert.match(run.stderr, new RegExp(`\\(weft ${c.args[0]!} --help lists the options\\)`));
    assert.equal(run.stdout, '', 'nothing started');
  }
  const unknownKey = secretFile(t, JSON.stringify({ prot: 5000 }), 'typo.json');
  const typo = spawnSync(process.execPath, [CLI, 'gateway', '--config', unknownKey], { encoding: 'utf8', env: cliEnv() });
  assert.equal(typo.status, 2);
  assert.match(
    typo.stderr,
    /"prot" in .*typo\.json is not a setting of weft gateway; its settings are the flag names: redis, secret-file, prefix, host, port/,
  );
  const secretInConfig = secretFile(t, JSON.stringify({ secret: 'x'.repeat(32) }), 'secret.json');
  const leaked = spawnSync(process.execPath, [CLI, 'gateway', '--config', secretInConfig], { encoding: 'utf8', env: cliEnv() });
  assert.equal(leaked.status, 2);
  assert.match(leaked.stderr, /"secret" in .*secret\.json: secrets do not go in the config file; set WEFT_SECRET/);
  assert.doesNotMatch(leaked.stderr, /xxxxxxxx/);
});

test('weft gateway takes each setting from its flag, else its variable, else the --config file (or WEFT_CONFIG)', async (t) => {
  const [fromFile, fromEnv, fromFlag] = [await freePort(), await freePort(), await freePort()];
  const config = secretFile(t, JSON.stringify({ port: fromFile, host: '127.0.0.1', name: 'edge' }), 'weft.json');
  const file = await startGateway(t, ['--config', config], cliEnv());
  assert.equal(new URL(file.url).port, String(fromFile));
  assert.equal((await getHealth(file.url)).body.nodeId.startsWith('edge-'), true, 'name from the file');
  file.stop();
  assert.equal(await file.exited, 0);
  const env = await startGateway(t, [], cliEnv({ WEFT_CONFIG: config, WEFT_HTTP_PORT: String(fromEnv) }));
  assert.equal(new URL(env.url).port, String(fromEnv), 'the variable wins over the file');
  env.stop();
  assert.equal(await env.exited, 0);
  const flag = await startGateway(t, ['--config', config, '--port', String(fromFlag)], cliEnv({ WEFT_HTTP_PORT: String(fromEnv) }));
  assert.equal(new URL(flag.url).port, String(fromFlag), 'the flag wins over both');
  flag.stop();
  assert.equal(await flag.exited, 0);
});

test('weft nodes on an unreachable Redis names the URL without its password and the cause, and exits 1', async () => {
  const port = await freePort();
  const run = await runCli(
    ['nodes', '--redis', `redis://ops:hunter2-not-printed@127.0.0.1:${port}`],
    cliEnv({ WEFT_SECRET: testSecret(), WEFT_LOG_LEVEL: 'silent' }),
  );
  assert.equal(run.status, 1);
  assert.match(
    run.stderr,
    new RegExp(`weft: CommunicationError: cannot reach Redis at redis://ops:\\*\\*\\*@127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`),
  );
  assert.match(run.stderr, /weft: set it with --redis <url> or WEFT_REDIS_URL/);
  assert.doesNotMatch(run.stderr, /hunter2/);
  const gateway = await runCli(
    ['gateway', '--port', '0', '--redis', `redis://:hunter2-not-printed@127.0.0.1:${port}`],
    cliEnv({ WEFT_SECRET: testSecret(), WEFT_LOG_LEVEL: 'silent' }),
  );
  assert.equal(gateway.status, 1);
  assert.match(gateway.stderr, new RegExp(`cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
  assert.doesNotMatch(gateway.stderr, /hunter2|Connection is closed/);
});

test(
  'weft gateway, weft token and weft nodes against a Redis cluster: --listen/--advertise publish the link address, a minted token is accepted',
  WITH_REDIS,
  async (t) => {
    const prefix = uniquePrefix();
    t.after(() => dropPrefix(prefix));
    const secret = testSecret();
    const jwtKey = testSecret(); // 44 characters: an HS256 key long enough
    const host: Host = await createHost({
      cluster: redisCluster({ url: REDIS_URL, secret, prefix }),
      logger: quietLogger(),
      name: 'svc',
      services: [testService(() => host.nodeId)],
    }).start();
    t.after(() => host.stop());
    const linkPort = await freePort();
    // Listening on every interface, advertising a loopback address other than the default one: the record says which.
    const gw = await startGateway(
      t,
      ['--redis', REDIS_URL, '--prefix', prefix, '--port', '0', '--listen', `0.0.0.0:${linkPort}`, '--advertise', '127.0.0.2'],
      cliEnv({ WEFT_SECRET: secret, WEFT_JWT_SECRET: jwtKey }),
    );
    assert.match(gw.banner, /redis cluster, tokens required \(HS256 secret\)/);
    await eventually(async () => (await fetch(`${gw.url}/readyz`)).status === 200, 10000, 'the CLI gateway ready');

    const minted = await runCli(['token', '--sub', '100', '--ttl', '15m'], cliEnv({ WEFT_JWT_SECRET: jwtKey }));
    assert.equal(minted.status, 0, minted.stderr);
    const token = minted.stdout.trim();
    const claims = decodeJwt(token);
    assert.equal(claims.sub, '100');
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 900);
    assert.equal((await httpJson(`${gw.url}/api/test/echo?value=hi`)).status, 401, 'no token, no entry');
    const ok = await httpJson(`${gw.url}/api/test/echo?value=hi`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.result, 'hi');
    const fromFile = await runCli(['token', '--sub', '100', '--jwt-secret-file', secretFile(t, `${jwtKey}\n`)], cliEnv());
    assert.equal(fromFile.status, 0, fromFile.stderr);
    assert.equal(
      (await httpJson(`${gw.url}/api/test/echo?value=hi`, { headers: { authorization: `Bearer ${fromFile.stdout.trim()}` } })).status,
      200,
    );
    const otherKey = await runCli(['token', '--sub', '100'], cliEnv({ WEFT_JWT_SECRET: testSecret() }));
    assert.equal(
      (await httpJson(`${gw.url}/api/test/echo?value=hi`, { headers: { authorization: `Bearer ${otherKey.stdout.trim()}` } })).status,
      401,
    );
    const short = await runCli(['token', '--sub', '100'], cliEnv({ WEFT_JWT_SECRET: 'short' }));
    assert.equal(short.status, 1);
    assert.match(short.stderr, /WEFT_JWT_SECRET is too short: 5 bytes, at least 32 needed/);

    const table = await runCli(['nodes', '--redis', REDIS_URL, '--prefix', prefix], cliEnv({ WEFT_SECRET: secret }));
    assert.equal(table.status, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^ID\s+ROLE\s+ADDRESS\s+SERVICES$/);
    assert.ok(
      lines.some((l) => new RegExp(`^gateway-[0-9a-f]{10}\\s+gateway\\s+127\\.0\\.0\\.2:${linkPort}\\s+-$`).test(l)),
      table.stdout,
    );
    const hostAddress = `${host.linkAddress?.host ?? ''}:${host.linkAddress?.port ?? ''}`;
    assert.ok(
      lines.some((l) => l.startsWith(host.nodeId) && l.includes(` host `) && l.includes(hostAddress) && l.endsWith('ITestAppService')),
      table.stdout,
    );
    const json = await runCli(['nodes', '--json'], cliEnv({ WEFT_SECRET: secret, WEFT_REDIS_URL: REDIS_URL, WEFT_PREFIX: prefix }));
    assert.equal(json.status, 0, json.stderr);
    const records = JSON.parse(json.stdout) as { id: string; role: string; address: string; services: { name: string }[] }[];
    assert.deepEqual(records.map((r) => r.role).sort(), ['gateway', 'host']);
    assert.equal(records.find((r) => r.role === 'gateway')?.address, `127.0.0.2:${linkPort}`);
    assert.deepEqual(records.find((r) => r.id === host.nodeId)?.services, [{ name: 'ITestAppService' }]);
    const empty = await runCli(['nodes', '--redis', REDIS_URL, '--prefix', uniquePrefix()], cliEnv({ WEFT_SECRET: secret }));
    assert.equal(empty.status, 0);
    assert.match(empty.stdout, /^no nodes in the cluster \(prefix weft-test-[0-9a-f]+\)$/m);

    gw.stop();
    assert.equal(await gw.exited, 0);

    // --host 0.0.0.0 alone: links listen on every interface too, and the record carries an interface address, not 127.0.0.1.
    const open = await startGateway(
      t,
      ['--redis', REDIS_URL, '--prefix', prefix, '--host', '0.0.0.0', '--port', '0'],
      cliEnv({ WEFT_SECRET: secret }),
    );
    const listed = await runCli(['nodes', '--json', '--redis', REDIS_URL, '--prefix', prefix], cliEnv({ WEFT_SECRET: secret }));
    const gateways = (JSON.parse(listed.stdout) as { role: string; address: string }[]).filter((r) => r.role === 'gateway');
    assert.equal(gateways.length, 1, listed.stdout);
    assert.equal(gateways[0]!.address.replace(/:\d+$/, ''), firstExternalIPv4());
    open.stop();
    assert.equal(await open.exited, 0);
  },
);

/** The address a node listening on 0.0.0.0 publishes: its first external IPv4 interface (127.0.0.1 when it has none). */
function firstExternalIPv4(): string {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}
