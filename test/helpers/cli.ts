/**
 * Running the `weft` command from dist in a child process, as a person
 * would: to its end (runCli), or until it prints its banner (startCli).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { REDIS_URL, testSecret, uniquePrefix } from './index.js';

export const CLI = fileURLToPath(new URL('../../src/cli/weft.js', import.meta.url));

/** Variables the CLI reads, dropped from a run's environment unless the test sets them. */
const CLI_VARIABLES = [
  'WEFT_SECRET',
  'WEFT_REDIS_URL',
  'WEFT_PREFIX',
  'WEFT_JWT_SECRET',
  'WEFT_HTTP_HOST',
  'WEFT_HTTP_PORT',
  'WEFT_LISTEN',
  'WEFT_ADVERTISE',
  'WEFT_CONFIG',
  'WEFT_LOG_FORMAT',
  'WEFT_NAME',
  'WEFT_CALL_TIMEOUT',
];

/** The environment of a CLI run: this process's, without the weft settings of the shell it ran in. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, WEFT_LOG_LEVEL: 'warn', ...extra };
  for (const name of CLI_VARIABLES) if (extra[name] === undefined) delete env[name];
  return env;
}

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `weft <args>` to its end (asynchronously: the test's own servers keep answering meanwhile). */
export function runCli(args: string[], env: NodeJS.ProcessEnv, options: { cwd?: string } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

export interface StartedCli {
  /** The banner's match. */
  match: RegExpExecArray;
  /** What it printed on stdout up to the banner. */
  stdout: string;
  exited: Promise<number | null>;
  /** Sends SIGTERM (or `signal`). */
  stop(signal?: NodeJS.Signals): void;
}

/** Starts `weft <args>` and resolves once stdout matches `banner`; rejects if it exits first. Killed after the test. */
export function startCli(
  t: TestContext,
  args: string[],
  env: NodeJS.ProcessEnv,
  banner: RegExp,
  options: { cwd?: string } = {},
): Promise<StartedCli> {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], ...options });
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    if (process.env['WEFT_TEST_LOG'] !== undefined) process.stderr.write(c);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = banner.exec(out);
      if (m !== null) resolve({ match: m, stdout: out, exited, stop: (signal = 'SIGTERM') => child.kill(signal) });
    });
    child.once('exit', (code) => reject(new Error(`weft ${args.join(' ')} exited with ${code}: ${out}${stderr}`)));
  });
}

export const HOST_MODULE = fileURLToPath(new URL('../fixtures/cli-host-module.js', import.meta.url));
/** What `weft host` prints once it serves: node id, services, cluster kind, link address. */
export const HOST_BANNER = /weft host (\S+) serving (.*) \((\w+) cluster, link (\S+)\)\n/;
export const GATEWAY_BANNER = /weft gateway on (http:\/\/\S+) .*\n/;

/** A directory of the test's own, removed afterwards. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A private Redis cluster: its prefix (for the test to drop afterwards) and the environment every command of it runs with. */
export function privateClusterEnv(): { prefix: string; env: NodeJS.ProcessEnv } {
  const prefix = uniquePrefix();
  return { prefix, env: cliEnv({ WEFT_SECRET: testSecret(), WEFT_REDIS_URL: REDIS_URL, WEFT_PREFIX: prefix }) };
}

/** A run's stdout, once it exited 0. */
export function ok(run: CliRun, what: string): string {
  assert.equal(run.status, 0, `${what}: exit ${run.status}, stderr: ${run.stderr}`);
  return run.stdout;
}
