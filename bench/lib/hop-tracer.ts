/**
 * Where a push's latency goes, hop by hop, from weft's own spans: a
 * bench-only OpenTelemetry tracer (and W3C propagator) that writes times
 * into the ids. A sampled push's trace id starts with the pusher's clock at
 * the call, and each span id is its process's clock at the span's start
 * (bench/lib/clock.ts: one monotonic clock for every process of the box).
 * So each process reads, from the parent it is handed, when the hop before
 * it began, and records the hop in a histogram; nothing is joined after the
 * run. Only one push in `sampleEvery` is traced, so the rest pay nothing.
 *
 * Hops (milliseconds):
 * - pusher: `call -> answered` (the whole acknowledged push, as the caller waits for it);
 * - host: `pusher -> host` (the call's frame reached the host and its span started),
 *   `host: call -> push sent` (the service ran: history kept, directory read, frames sent);
 * - gateway: `host -> gateway written` (from the push frame's send to its write to the
 *   sockets) and `pusher -> gateway written` (from the call).
 * What is left of the end-to-end latency the clients measure is the socket to the client.
 */
import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  TraceFlags,
  propagation,
  trace,
  type Context,
  type Span,
  type SpanContext,
  type SpanOptions,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import { nowUs } from './clock.js';
import { Histogram, type SparseHistogram } from './histogram.js';

const hex16 = (n: number): string => Math.floor(n).toString(16).padStart(16, '0');
const timeOfHex = (id: string): number => parseInt(id.slice(0, 16), 16);

const hops = new Map<string, Histogram>();

function record(hop: string, us: number): void {
  let h = hops.get(hop);
  if (h === undefined) hops.set(hop, (h = new Histogram()));
  h.record(us);
}

/** A span that only carries its context; on end, the pusher's root records the round trip. */
class HopSpan implements Span {
  readonly #ctx: SpanContext;
  readonly #onEnd: (() => void) | undefined;

  constructor(ctx: SpanContext, onEnd?: () => void) {
    this.#ctx = ctx;
    this.#onEnd = onEnd;
  }

  spanContext(): SpanContext {
    return this.#ctx;
  }
  setAttribute(): this {
    return this;
  }
  setAttributes(): this {
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(): this {
    return this;
  }
  updateName(): this {
    return this;
  }
  end(): void {
    this.#onEnd?.();
  }
  isRecording(): boolean {
    return true;
  }
  recordException(): void {}
}

const UNTRACED = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

class HopTracer implements Tracer {
  readonly #role: string;
  readonly #sampleEvery: number;
  #roots = 0;
  /** Host: when each sampled call's server span started, by trace id (its push span reads it). */
  readonly #callStarts = new Map<string, number>();

  constructor(role: string, sampleEvery: number) {
    this.#role = role;
    this.#sampleEvery = sampleEvery;
  }

  startSpan(name: string, _options?: SpanOptions, context?: Context): Span {
    const now = nowUs();
    const parent = context === undefined ? undefined : trace.getSpanContext(context);
    if (parent === undefined || parent.traceId === INVALID_SPAN_CONTEXT.traceId) {
      // A root: only the pusher starts traces, one in sampleEvery.
      if (this.#role !== 'pusher' || this.#roots++ % this.#sampleEvery !== 0) return UNTRACED;
      const traceId = hex16(now) + hex16(Math.random() * 2 ** 52);
      return new HopSpan({ traceId, spanId: hex16(now), traceFlags: TraceFlags.SAMPLED }, () => record('pusher: call -> answered', nowUs() - now));
    }
    const callUs = timeOfHex(parent.traceId);
    const span = new HopSpan({ traceId: parent.traceId, spanId: hex16(now), traceFlags: TraceFlags.SAMPLED });
    if (this.#role === 'ws-host' && name.startsWith('IBenchWsAppService/')) {
      record('host: pusher -> host', now - callUs);
      this.#callStarts.set(parent.traceId, now);
      if (this.#callStarts.size > 10_000) this.#callStarts.clear();
    } else if (this.#role === 'ws-host' && name.startsWith('weft.push')) {
      const started = this.#callStarts.get(parent.traceId);
      this.#callStarts.delete(parent.traceId);
      if (started !== undefined) record('host: call -> push sent', now - started);
    } else if (this.#role === 'gateway' && name === 'weft.push.deliver') {
      record('gateway: host -> written', now - timeOfHex(parent.spanId));
      record('gateway: pusher -> written', now - callUs);
    }
    return span;
  }

  startActiveSpan(): never {
    throw new Error('weft does not start active spans');
  }
}

/** W3C `traceparent`, enough of it for weft's links. */
class TraceparentPropagator implements TextMapPropagator {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    const sc = trace.getSpanContext(ctx);
    if (sc === undefined || sc.traceId === INVALID_SPAN_CONTEXT.traceId) return;
    setter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-01`);
  }

  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    const raw = getter.get(carrier, 'traceparent');
    const value = Array.isArray(raw) ? raw[0] : raw;
    const m = value === undefined ? null : /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(value);
    if (m === null) return ctx;
    return trace.setSpanContext(ctx === undefined ? ROOT_CONTEXT : ctx, {
      traceId: m[1]!,
      spanId: m[2]!,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
  }

  fields(): string[] {
    return ['traceparent'];
  }
}

/** Installs the hop tracer in this process (`role`: pusher, ws-host or gateway). */
export function installHopTracer(role: string, sampleEvery: number): void {
  const tracer = new HopTracer(role, sampleEvery);
  trace.setGlobalTracerProvider({ getTracer: () => tracer });
  propagation.setGlobalPropagator(new TraceparentPropagator());
}

/** The hops recorded since the last reset, as sparse histograms (µs) to merge across processes. */
export function hopHistograms(): Record<string, SparseHistogram> {
  const out: Record<string, SparseHistogram> = {};
  for (const [hop, h] of hops) out[hop] = h.sparse();
  return out;
}

export function resetHops(): void {
  hops.clear();
}
