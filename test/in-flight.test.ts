/**
 * What is in flight by id (the RPC client's calls, acknowledged pushes): found by id whatever slot they landed
 * in, a late answer finds nothing, and slow calls that outlive the ring's
 * turn neither block nor lose the calls after them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlight } from '../src/util/in-flight.js';

interface Call {
  id: number;
  name: string;
}

test('a call is found by its id until it is taken, and a late answer for it finds nothing', () => {
  const calls = new InFlight<Call>();
  calls.add({ id: 1, name: 'one' });
  calls.add({ id: 2, name: 'two' });
  assert.equal(calls.size, 2);
  assert.equal(calls.get(2)?.name, 'two');
  assert.equal(calls.take(1)?.name, 'one');
  assert.equal(calls.take(1), undefined, 'a second answer for the same id');
  assert.equal(calls.get(3), undefined);
  assert.equal(calls.size, 1);
});

test('slow calls stay findable while tens of thousands of quick ones pass through their slots', () => {
  const calls = new InFlight<Call>();
  const slow: Call[] = [];
  for (let id = 1; id <= 300; id++) {
    const call = { id, name: `slow ${id}` };
    slow.push(call);
    calls.add(call);
  }
  // Quick calls, one or two in flight at a time: their ids wrap the ring onto the slow calls' slots many times.
  let id = 301;
  for (let i = 0; i < 50_000; i++) {
    const a = { id: id++, name: 'quick' };
    const b = { id: id++, name: 'quick' };
    calls.add(a);
    calls.add(b);
    assert.equal(calls.take(a.id), a);
    assert.equal(calls.take(b.id), b);
  }
  assert.equal(calls.size, 300);
  for (const call of slow) assert.equal(calls.get(call.id), call, call.name);
  assert.deepEqual(
    calls
      .all()
      .map((c) => c.id)
      .sort((x, y) => x - y),
    slow.map((c) => c.id),
  );
  for (const call of slow) assert.equal(calls.take(call.id), call);
  assert.equal(calls.size, 0);
  assert.deepEqual(calls.all(), []);
});

test('more calls in flight than the ring has slots are all kept, and clear empties it', () => {
  const calls = new InFlight<Call>();
  const many = Array.from({ length: 10_000 }, (_, i) => ({ id: i + 1, name: String(i + 1) }));
  for (const call of many) calls.add(call);
  assert.equal(calls.size, many.length);
  for (const call of many) assert.equal(calls.get(call.id), call);
  calls.clear();
  assert.equal(calls.size, 0);
  assert.equal(calls.get(1), undefined);
});
