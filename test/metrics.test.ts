/**
 * Prometheus metrics (docs/metrics.md): scraped from a gateway's /metrics and
 * a host's metrics port after real traffic. Metrics are the process's, so
 * the checks compare a scrape before with one after.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocketModule, createGateway, createHost, implement, memoryCluster, type Host } from '../src/index.js';
import { ChatAppService, IChatAppService, testService } from './fixtures/services.js';
import { connectWs, httpJson, quietLogger, refusedWs } from './helpers/index.js';

/** Every sample of a scrape, `name{labels}` -> value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

function delta(before: Map<string, number>, after: Map<string, number>, sample: string): number {
  return (after.get(sample) ?? 0) - (before.get(sample) ?? 0);
}

test('a gateway’s /metrics and a host’s metrics port count handshakes, sessions, pushes, deliveries, calls and requests', async (t) => {
  const cluster = memoryCluster();
  const chat = new ChatAppService();
  const host: Host = createHost({
    cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [testService(() => host.nodeId), implement(IChatAppService, chat)],
    metrics: { port: 0 },
  });
  await host.start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
  t.after(() => gateway.stop());
  const ws = gateway.url.replace(/^http/, 'ws');
  assert.match(host.metricsUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

  const before = await scrape(`${gateway.url}/metrics`);
  const client = await connectWs(`${ws}/api/chat?businessId=m1`);
  assert.equal((await refusedWs(`${ws}/api/nowhere?businessId=m1`)).status, 404);
  const pushed = await httpJson(`${gateway.url}/api/chat/push?businessId=m1&msg=hi`);
  assert.equal(pushed.body.result, 1);
  await client.waitFor(1);
  const during = await scrape(`${gateway.url}/metrics`);
  client.ws.close(1000);
  await client.closed;

  assert.equal(during.get('weft_sessions{service="IChatAppService"}'), 1);
  assert.equal(delta(before, during, 'weft_handshakes_total{outcome="accepted",status="101"}'), 1);
  assert.equal(delta(before, during, 'weft_handshakes_total{outcome="refused",status="404"}'), 1);
  assert.equal(delta(before, during, 'weft_pushes_total{kind="business"}'), 1);
  assert.equal(delta(before, during, 'weft_deliveries_total{kind="live"}'), 1);
  assert.equal(delta(before, during, 'weft_push_ack_seconds_count{kind="business"}'), 1);
  assert.equal(delta(before, during, 'weft_rpc_client_call_seconds_count{service="IChatAppService",method="push",code="Success"}'), 1);
  assert.equal(delta(before, during, 'weft_rpc_server_call_seconds_count{service="IChatAppService",method="push",code="Success"}'), 1);
  assert.equal(delta(before, during, 'weft_http_request_seconds_count{route="/api/chat/push",method="GET",status="200"}'), 1);
  assert.ok((during.get('weft_process_resident_memory_bytes') ?? 0) > 0);

  // An error is counted under its code; a close under its close code.
  assert.equal((await httpJson(`${gateway.url}/api/test/fail?code=NotFound`)).status, 404);
  const after = await scrape(host.metricsUrl!);
  assert.equal(delta(during, after, 'weft_rpc_server_call_seconds_count{service="ITestAppService",method="fail",code="NotFound"}'), 1);
  assert.equal(delta(before, after, 'weft_session_closes_total{code="1000"}'), 1);
});

test('a gateway with metrics: false has no /metrics route', async (t) => {
  const gateway = await createGateway({
    cluster: memoryCluster(),
    logger: quietLogger(),
    http: { host: '127.0.0.1', port: 0 },
    metrics: false,
  }).start();
  t.after(() => gateway.stop());
  assert.equal((await fetch(`${gateway.url}/metrics`)).status, 404);
});
