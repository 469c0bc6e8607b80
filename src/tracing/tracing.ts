/**
 * OpenTelemetry through `@opentelemetry/api` only: spans for HTTP requests,
 * RPC calls (both sides), pushes and their delivery, and W3C trace context
 * carried across links (a call's context field, a push frame's field). With
 * no SDK installed by the application, every call here is the API's no-op.
 *
 * The context travels two ways, so it is not lost when the application has
 * no context manager: OpenTelemetry's active context when there is one, and
 * weft's own call context (its `traceparent`) otherwise.
 */
import {
  INVALID_SPAN_CONTEXT,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';

export { SpanKind };
export type { Attributes, Context, Span };

const tracer = trace.getTracer('weft');
/** The API's no-op provider, what a proxy hands out until an SDK registers one. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();
/** A span that records nothing, for every span started while no SDK is registered. */
const NOT_RECORDING = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Whether an SDK registered a tracer provider; read on each span, since one may register after weft loads. */
function sdkRegistered(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

/** A carrier of W3C trace context. */
interface Carrier {
  traceparent?: string;
  tracestate?: string;
}

/** The context a `traceparent` (and `tracestate`) names, child of nothing else; ROOT when there is none. */
export function contextFrom(traceparent: string | undefined, tracestate?: string): Context {
  if (traceparent === undefined || traceparent === '') return ROOT_CONTEXT;
  const carrier: Carrier = tracestate === undefined ? { traceparent } : { traceparent, tracestate };
  return propagation.extract(ROOT_CONTEXT, carrier);
}

/** The context of an HTTP request's or handshake's headers. */
export function contextFromHeaders(headers: Record<string, string | string[] | undefined>): Context {
  const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
  return contextFrom(first(headers['traceparent']), first(headers['tracestate']));
}

/** The parent of a new span: the active OpenTelemetry context when it has a span, else weft's call context's traceparent. */
export function parentContext(traceparent: string | undefined): Context {
  const active = context.active();
  return trace.getSpan(active) !== undefined ? active : contextFrom(traceparent);
}

/** The `traceparent` of a span's context, '' when it has none (no SDK, or no propagator). */
export function traceparentOf(ctx: Context): string {
  if (ctx === ROOT_CONTEXT) return '';
  const carrier: Carrier = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent ?? '';
}

export function startSpan(name: string, kind: SpanKind, parent: Context, attributes?: Attributes): { span: Span; ctx: Context } {
  // No SDK: the API would make a no-op span per call, and the parent's trace goes on as it came.
  if (!sdkRegistered()) return { span: NOT_RECORDING, ctx: parent };
  const span = tracer.startSpan(name, attributes === undefined ? { kind } : { kind, attributes }, parent);
  // No SDK and no trace to continue: the span is a no-op with no id, and a context holding it would
  // say nothing its parent does not (each one a Map copied, on every call and push).
  if (!span.isRecording() && !trace.isSpanContextValid(span.spanContext())) return { span, ctx: parent };
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Ends a span; `errorCode` (a weft error code) marks it failed. */
export function endSpan(span: Span, errorCode?: string): void {
  if (errorCode !== undefined) {
    span.setAttribute('weft.error.code', errorCode);
    span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode });
  }
  span.end();
}

/** The W3C trace id of a context's span, when it has a valid one. */
export function traceIdOf(ctx: Context): string | undefined {
  const spanContext = trace.getSpanContext(ctx);
  return spanContext !== undefined && trace.isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}

/** Runs `fn` with `ctx` active (a no-op without a context manager). */
export function withContext<T>(ctx: Context, fn: () => T): T {
  return context.with(ctx, fn);
}
