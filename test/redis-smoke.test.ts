import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectWs, eventually, httpJson, redisTest, spawnNode, uniquePrefix, type NodeProcess } from './helpers/index.js';

test('two hosts and a gateway in separate processes share a Redis cluster', await redisTest(), async (t) => {
  const prefix = uniquePrefix();
  const procs: NodeProcess[] = [];
  t.after(() => Promise.all(procs.map((p) => p.kill())));
  const env = { WEFT_PREFIX: prefix };
  procs.push(await spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: 'test,chat', WEFT_NAME: 'h1' }));
  procs.push(await spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: 'test,chat', WEFT_NAME: 'h2' }));
  const gw = await spawnNode({ ...env, WEFT_ROLE: 'gateway' });
  procs.push(gw);
  const url = `http://127.0.0.1:${gw.info.httpPort}`;
  const seen = new Set<string>();
  await eventually(
    async () => {
      const r = await httpJson(`${url}/api/test/whoami`);
      if (r.status === 200) seen.add(r.body.result as string);
      return seen.size === 2;
    },
    10000,
    'both hosts answering',
  );
  const client = await connectWs(`ws://127.0.0.1:${gw.info.httpPort}/api/chat?businessId=7`);
  t.after(() => client.ws.close());
  const res = await eventually(
    async () => {
      const r = await httpJson(`${url}/api/chat/echo?businessId=7&msg=hi`);
      return r.status === 200 ? r : undefined;
    },
    5000,
    'echo to succeed',
  );
  assert.equal(res!.body.result, 1);
  await client.waitFor(1);
});
