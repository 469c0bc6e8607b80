/**
 * OpenTelemetry: weft uses only @opentelemetry/api; with the SDK installed
 * (here its in-memory exporter), a request's traceparent is the parent of the
 * HTTP span, the RPC call on both sides, the push and its delivery, and a
 * handshake's traceparent the parent of the host's onOpen span; a weft.v1
 * request is a span of its own, parent of the pushes its handler makes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { context, propagation, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { WebSocket } from 'ws';
import { connectSession } from '../src/client/index.js';
import {
  BusinessException,
  Type,
  WebSocketModule,
  WsAppServiceBase,
  createGateway,
  createHost,
  defineContract,
  implement,
  memoryCluster,
  type Host,
  type WsSession,
} from '../src/index.js';
import { ChatAppService, IChatAppService, testService, type SeenContext } from './fixtures/services.js';
import { connectWs, eventually, httpJson, quietLogger } from './helpers/index.js';

const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${CLIENT_SPAN}-01`;

function spansOf(traceId: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
}

function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

function one(spans: ReadableSpan[], name: string, kind: SpanKind): ReadableSpan {
  const found = spans.filter((s) => s.name === name && s.kind === kind);
  assert.equal(found.length, 1, `one ${name} span of kind ${kind}; spans: ${spans.map((s) => `${s.name}/${s.kind}`).join(', ')}`);
  return found[0]!;
}

test('a request’s traceparent is the parent of the HTTP span, the RPC call on both sides, the push and its delivery', async (t) => {
  const cluster = memoryCluster();
  const host: Host = createHost({
    cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [testService(() => host.nodeId), implement(IChatAppService, new ChatAppService())],
  });
  await host.start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
  t.after(() => gateway.stop());
  const ws = gateway.url.replace(/^http/, 'ws');

  // The handshake's traceparent reaches the host's onOpen.
  const openTrace = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1';
  const client = await connectWs(`${ws}/api/chat?businessId=tr`, { headers: { traceparent: `00-${openTrace}-${CLIENT_SPAN}-01` } });
  t.after(() => client.ws.close());
  const onOpen = one(spansOf(openTrace), 'weft.session.onOpen', SpanKind.SERVER);
  assert.equal(parentOf(onOpen), CLIENT_SPAN);

  const pushed = await httpJson(`${gateway.url}/api/chat/push?businessId=tr&msg=traced`, { headers: { traceparent: TRACEPARENT } });
  assert.equal(pushed.body.result, 1);
  await client.waitFor(1);
  await eventually(() => spansOf(TRACE_ID).some((x) => x.name === 'weft.push.deliver'));
  const spans = spansOf(TRACE_ID);
  const http = one(spans, 'GET /api/chat/push', SpanKind.SERVER);
  const callOut = one(spans, 'IChatAppService/push', SpanKind.CLIENT);
  const callIn = one(spans, 'IChatAppService/push', SpanKind.SERVER);
  const push = one(spans, 'weft.push business', SpanKind.PRODUCER);
  const deliver = one(spans, 'weft.push.deliver', SpanKind.CONSUMER);
  assert.equal(parentOf(http), CLIENT_SPAN);
  assert.equal(parentOf(callOut), http.spanContext().spanId);
  assert.equal(parentOf(callIn), callOut.spanContext().spanId);
  assert.equal(parentOf(push), callIn.spanContext().spanId);
  assert.equal(parentOf(deliver), push.spanContext().spanId);
  assert.equal(http.attributes['http.response.status_code'], 200);
  assert.equal(push.attributes['weft.push.delivered'], 1);
  assert.equal(deliver.attributes['weft.push.written'], 1);
});

test('weft’s trace id is the W3C trace id: the traceparent’s when given, a new 32-hex one when not, and a failed call’s span says its code', async (t) => {
  const cluster = memoryCluster();
  const host: Host = createHost({ cluster, logger: quietLogger(), services: [testService(() => host.nodeId)] });
  await host.start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
  t.after(() => gateway.stop());

  const given = await httpJson(`${gateway.url}/api/test/context`, { headers: { traceparent: TRACEPARENT } });
  assert.equal((given.body.result as SeenContext).traceId, TRACE_ID);
  const fresh = await httpJson(`${gateway.url}/api/test/context`);
  const freshId = (fresh.body.result as SeenContext).traceId;
  assert.match(freshId, /^[0-9a-f]{32}$/);
  one(spansOf(freshId), 'GET /api/test/context', SpanKind.SERVER);

  const failTrace = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2';
  await httpJson(`${gateway.url}/api/test/fail?code=NotFound`, { headers: { traceparent: `00-${failTrace}-${CLIENT_SPAN}-01` } });
  await eventually(() => spansOf(failTrace).some((s) => s.kind === SpanKind.SERVER && s.name === 'ITestAppService/fail'));
  const served = one(spansOf(failTrace), 'ITestAppService/fail', SpanKind.SERVER);
  assert.equal(served.attributes['weft.error.code'], 'NotFound');
});

const IDeskAppService = defineContract({
  name: 'IDeskAppService',
  methods: {},
  messages: { ask: { params: Type.Object({ q: Type.String() }), returns: Type.Boolean() } },
});

class DeskAppService extends WsAppServiceBase {
  async ask(params: { q: string }, session: WsSession): Promise<boolean> {
    if (params.q === 'no') throw new BusinessException('refused');
    return session.send(`answer to ${params.q}`);
  }
}

test('a weft.v1 request is a span of its own, parent of the pushes its handler makes, marked failed with the code it answered', async (t) => {
  const cluster = memoryCluster();
  const host = await createHost({
    cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IDeskAppService, new DeskAppService())],
  }).start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
  t.after(() => gateway.stop());
  let opened = false;
  const session = connectSession<typeof IDeskAppService>(`${gateway.url.replace(/^http/, 'ws')}/api/desk`, {
    businessId: 'tr2',
    WebSocket,
    onOpen: () => (opened = true),
  });
  t.after(() => session.close());
  await eventually(() => opened, 5000, 'welcome');

  assert.equal(await session.call('ask', { q: 'yes' }), true);
  const request = await eventually<ReadableSpan | undefined>(() =>
    exporter
      .getFinishedSpans()
      .find((s) => s.name === 'weft.session.request' && s.attributes['weft.message'] === 'ask' && s.status.code !== SpanStatusCode.ERROR),
  );
  assert.ok(request !== undefined);
  assert.equal(request.kind, SpanKind.SERVER);
  assert.equal(request.attributes['weft.service'], 'IDeskAppService');
  const push = one(spansOf(request.spanContext().traceId), 'weft.push session', SpanKind.PRODUCER);
  assert.equal(parentOf(push), request.spanContext().spanId);

  await session.call('ask', { q: 'no' }).catch(() => undefined);
  const refused = await eventually<ReadableSpan | undefined>(() =>
    exporter.getFinishedSpans().find((s) => s.name === 'weft.session.request' && s.status.code === SpanStatusCode.ERROR),
  );
  assert.equal(refused?.attributes['weft.error.code'], 'BusinessError');
});
