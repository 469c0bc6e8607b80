import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { dropPrefix } from './fixtures/node-control.js';
import { REDIS_URL, getHealth, redisTest, testSecret, uniquePrefix } from './helpers/index.js';

const CLI = fileURLToPath(new URL('../src/cli/weft.js', import.meta.url));
// Asked before any test runs: the spawnSync of the tests below blocks the loop the check needs.
const WITH_REDIS = await redisTest();

/** The environment of a CLI run: this process's, without a WEFT_SECRET of the shell it ran in. */
function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, WEFT_LOG_LEVEL: 'warn', ...extra };
  if (extra['WEFT_SECRET'] === undefined) delete env['WEFT_SECRET'];
  return env;
}

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

function secretFile(t: TestContext, contents: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'secret');
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
