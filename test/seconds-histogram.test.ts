import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, type Metric } from 'prom-client';
import { SecondsHistogram } from '../src/metrics/seconds-histogram.js';

test('a seconds histogram prints cumulative buckets, sum and count per series, as prom-client does', async () => {
  const registry = new Registry();
  const h = new SecondsHistogram('t_seconds', 'test durations', ['route', 'code'], [0.01, 0.001, 0.1]);
  registry.registerMetric(h as unknown as Metric);
  const ok = h.series('/a', '200');
  ok.observe(0.001); // on a bound: counts in that bucket
  ok.observe(0.05);
  ok.observe(7);
  ok.observe(Number.NaN); // not a duration: ignored
  h.series('/a', '500').observe(0.0001);
  assert.equal(h.series('/a', '200'), ok, 'the same values give the same series');
  const text = await registry.metrics();
  const lines = text.split('\n');
  for (const line of [
    't_seconds_bucket{le="0.001",route="/a",code="200"} 1',
    't_seconds_bucket{le="0.01",route="/a",code="200"} 1',
    't_seconds_bucket{le="0.1",route="/a",code="200"} 2',
    't_seconds_bucket{le="+Inf",route="/a",code="200"} 3',
    't_seconds_sum{route="/a",code="200"} 7.051',
    't_seconds_count{route="/a",code="200"} 3',
    't_seconds_bucket{le="0.001",route="/a",code="500"} 1',
    '# TYPE t_seconds histogram',
  ]) {
    assert.ok(lines.includes(line), `missing: ${line}\n${text}`);
  }
  h.reset();
  assert.ok(!(await registry.metrics()).includes('t_seconds_count'));
});
