/**
 * What reaches a client of a failing service: a WeftError keeps its code and
 * message; anything else, even with a `code` that is a catalogue name (an SDK
 * error, a plain object), is a generic ServerError, and what it said is in
 * the host's log only. Over HTTP through the gateway and over RPC links.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Type, WeftError, createHost, defineContract, implement, memoryCluster, type Cluster, type Host } from '../src/index.js';
import { startStack } from './fixtures/stack.js';
import { captureLogger, httpJson, quietLogger, rejection } from './helpers/index.js';

/** What an AWS SDK or a database driver throws: internals in the message, a code that happens to be a catalogue name. */
const sdkError = (): Error => Object.assign(new Error('s3://bucket/key arn:aws:iam::1'), { code: 'NotFound' });
const LEAKS = /s3:|bucket|arn:aws|iam::|db-7|user 42/;

const ILeakyAppService = defineContract({
  name: 'ILeakyAppService',
  methods: {
    sdkNotFound: { params: [], returns: Type.String() },
    plainUnauthorized: { params: [], returns: Type.String() },
    wrapped: { params: [], returns: Type.String() },
  },
});

const leaky = implement(ILeakyAppService, {
  sdkNotFound: () => {
    throw sdkError();
  },
  plainUnauthorized: () => {
    // A plain object, as a callback API wrapped by hand may throw.
    const thrown: unknown = { code: 'Unauthorized', message: 'token of user 42 expired on db-7.internal' };
    throw thrown;
  },
  wrapped: () => {
    // Exposed on purpose: a WeftError, with the SDK error as its cause (logged, never sent).
    throw new WeftError('NotFound', 'no invoice 7', { cause: sdkError() });
  },
});

/** A host of `cluster` whose links are all TCP. */
async function startHost(t: TestContext, cluster: Cluster, name: string, services = [leaky]): Promise<Host> {
  const host = createHost({ cluster, name, logger: quietLogger(), directInProcess: false, services });
  await host.start();
  t.after(() => host.stop());
  return host;
}

test('a foreign error with a catalogue code is answered 500 ServerError over HTTP, with no trace of its message', async (t) => {
  const capture = captureLogger();
  const stack = await startStack(t, { host: { services: [leaky], logger: capture.logger } });
  for (const method of ['sdknotfound', 'plainunauthorized']) {
    const res = await httpJson(`${stack.url}/api/leaky/${method}`);
    assert.equal(res.status, 500, method);
    assert.equal(res.body.code, 'ServerError');
    assert.equal(res.body.errorMessage, 'internal server error');
    assert.doesNotMatch(JSON.stringify(res.body), LEAKS);
  }
  // What the service threw is in the host's log, for its operators.
  const logged = capture.lines().map((l) => JSON.stringify(l));
  assert.ok(
    logged.some((l) => l.includes('s3://bucket/key')),
    'the SDK error is logged',
  );
  assert.ok(
    logged.some((l) => l.includes('token of user 42')),
    'the plain object is logged',
  );
});

test('a foreign error with a catalogue code reaches an RPC caller on another node as ServerError, with no trace of its message', async (t) => {
  const cluster = memoryCluster();
  await startHost(t, cluster, 'leaky');
  const caller = await startHost(t, cluster, 'caller', []);
  const api = caller.proxy(ILeakyAppService);
  for (const call of [() => api.sdkNotFound(), () => api.plainUnauthorized()]) {
    const error = await rejection(call());
    assert.equal(error.code, 'ServerError');
    assert.equal(error.message, 'internal server error');
    assert.equal(error.cause, undefined);
    assert.doesNotMatch(JSON.stringify({ ...error, message: error.message }), LEAKS);
  }
  assert.deepEqual(caller.stats().links, { tcp: 1, direct: 0 }, 'over a TCP link');
});

test('a WeftError thrown on a remote node keeps its code and message, never its cause', async (t) => {
  const cluster = memoryCluster();
  await startHost(t, cluster, 'leaky');
  const caller = await startHost(t, cluster, 'caller', []);
  const error = await rejection(caller.proxy(ILeakyAppService).wrapped());
  assert.equal(error.code, 'NotFound');
  assert.equal(error.message, 'no invoice 7');
  assert.equal(error.cause, undefined);

  const stack = await startStack(t, { host: { services: [leaky] } });
  const res = await httpJson(`${stack.url}/api/leaky/wrapped`);
  assert.equal(res.status, 404);
  assert.equal(res.body.code, 'NotFound');
  assert.equal(res.body.errorMessage, 'no invoice 7');
  assert.doesNotMatch(JSON.stringify(res.body), LEAKS);
});
