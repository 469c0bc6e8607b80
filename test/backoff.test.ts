/**
 * The backoff shared by links, Redis and the client, with time passed in
 * (no timers, no waiting).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff, type BackoffOptions } from '../src/util/backoff.js';

/** No jitter unless asked: delays are exact. */
function backoff(options: Partial<BackoffOptions> = {}): Backoff {
  return new Backoff({ initialDelayMs: 100, maxDelayMs: 10_000, jitter: 0, healthyAfterMs: 1000, ...options });
}

function delays(b: Backoff, n: number, nowMs = 0): number[] {
  return Array.from({ length: n }, () => b.nextDelayMs(nowMs));
}

test('each failure doubles the delay, starting from initialDelayMs', () => {
  const b = backoff();
  assert.deepEqual(delays(b, 5), [100, 200, 400, 800, 1600]);
  assert.equal(b.failures, 5);
});

test('the delay stops doubling at maxDelayMs, however many failures', () => {
  const b = backoff({ maxDelayMs: 1000 });
  assert.deepEqual(delays(b, 7), [100, 200, 400, 800, 1000, 1000, 1000]);
  assert.deepEqual(new Set(delays(b, 5000)), new Set([1000]));
});

test('jitter 0.5 gives a delay in [d/2, d]', () => {
  const lowest = backoff({ jitter: 0.5, random: () => 0.999_999 });
  const highest = backoff({ jitter: 0.5, random: () => 0 });
  assert.ok(Math.abs(lowest.nextDelayMs() - 50) < 0.001);
  assert.equal(highest.nextDelayMs(), 100);

  const seen: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const b = backoff({ jitter: 0.5 });
    b.nextDelayMs();
    seen.push(b.nextDelayMs()); // the second failure: d = 200
  }
  assert.ok(
    seen.every((d) => d > 100 && d <= 200),
    `delays out of [100, 200]: ${seen.filter((d) => d <= 100 || d > 200).join(', ')}`,
  );
  assert.ok(new Set(seen).size > 900, 'the delays are spread, not all the same');
});

test('a connection that ends before healthyAfterMs keeps the delay doubling', () => {
  const b = backoff({ healthyAfterMs: 1000 });
  assert.equal(b.disconnected(0), 100); // an attempt that never opened
  for (const [i, expected] of [200, 400, 800, 1600].entries()) {
    const openedAt = 10_000 * (i + 1);
    b.connected(openedAt);
    assert.equal(b.disconnected(openedAt + 999), expected); // accepted, then closed at once
  }
});

test('a connection that stayed up for healthyAfterMs makes the next delay initialDelayMs again', () => {
  const b = backoff({ healthyAfterMs: 1000 });
  delays(b, 4);
  b.connected(5000);
  assert.equal(b.disconnected(6000), 100);
  assert.equal(b.failures, 1);
  assert.equal(b.nextDelayMs(6100), 200);
});

test('healthyAfterMs 0: any connection that opened starts the delays again', () => {
  const b = backoff({ healthyAfterMs: 0 });
  delays(b, 3);
  b.connected(50);
  assert.equal(b.disconnected(50), 100);
});

test('remainingMs counts down to the next attempt; reset clears it', () => {
  const b = backoff();
  assert.equal(b.remainingMs(0), 0, 'nothing to wait for before a failure');
  b.nextDelayMs(1000);
  assert.equal(b.remainingMs(1000), 100);
  assert.equal(b.remainingMs(1060), 40);
  assert.equal(b.remainingMs(1100), 0);
  b.nextDelayMs(2000);
  b.reset();
  assert.equal(b.remainingMs(2000), 0);
  assert.equal(b.failures, 0);
  assert.equal(b.nextDelayMs(2000), 100);
});

test('refuses delays that are negative or not numbers, and jitter outside [0, 1]', () => {
  assert.throws(() => backoff({ initialDelayMs: -1 }), RangeError);
  assert.throws(() => backoff({ maxDelayMs: Number.NaN }), RangeError);
  assert.throws(() => backoff({ healthyAfterMs: Number.POSITIVE_INFINITY }), RangeError);
  assert.throws(() => backoff({ jitter: 1.5 }), RangeError);
});
