/**
 * The consistent-hash ring: same answer everywhere, minimal movement, spread.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HashRing, hash32 } from '../src/util/hash-ring.js';

const NODES = ['host-3f2a9c01de', 'host-a0b1c2d3e4', 'host-77e5f01a2b'];
const KEYS = Array.from({ length: 10_000 }, (_, i) => `IWsTestAppService/${i}`);

function owners(ring: HashRing): string[] {
  return KEYS.map((k) => ring.pick(k)!);
}

test('hash32 is a stable 32-bit hash', () => {
  // Pinned: gateways in different processes (and releases) must place a businessId alike.
  assert.equal(hash32(''), 2872998923);
  assert.equal(hash32('100'), 4131581982);
  for (const key of ['', 'a', '100', 'héllo ✓']) {
    const h = hash32(key);
    assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff, `hash32(${key}) is a uint32`);
  }
  assert.notEqual(hash32('a'), hash32('b'));
});

test('the same node set in any order gives the same owner for every key', () => {
  const reference = owners(new HashRing(NODES));
  const orders = [[NODES[2]!, NODES[0]!, NODES[1]!], [NODES[1]!, NODES[2]!, NODES[0]!], [...NODES].reverse()];
  for (const order of orders) assert.deepEqual(owners(new HashRing(order)), reference, `order ${order.join(',')}`);
});

test('removing one node moves only the keys that node owned', () => {
  const before = owners(new HashRing(NODES));
  const removed = NODES[1]!;
  const after = owners(new HashRing(NODES.filter((n) => n !== removed)));
  let moved = 0;
  for (let i = 0; i < KEYS.length; i++) {
    if (before[i] === removed) {
      assert.notEqual(after[i], removed);
      moved += 1;
    } else {
      assert.equal(after[i], before[i], `key ${KEYS[i]} stays on ${before[i]}`);
    }
  }
  assert.ok(moved > 0, 'the removed node owned some keys');
});

test('adding a node moves keys only to the new node', () => {
  const before = owners(new HashRing(NODES));
  const added = 'host-new0000001';
  const after = owners(new HashRing([...NODES, added]));
  let moved = 0;
  for (let i = 0; i < KEYS.length; i++) {
    if (after[i] !== before[i]) {
      assert.equal(after[i], added, `key ${KEYS[i]} moves only to the new node`);
      moved += 1;
    }
  }
  assert.ok(moved > 0, 'the new node takes some keys');
});

test('keys spread over the nodes: each of 3 nodes owns between 20% and 45% of 10,000 keys', () => {
  const counts = new Map<string, number>();
  for (const owner of owners(new HashRing(NODES))) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  assert.deepEqual([...counts.keys()].sort(), [...NODES].sort());
  for (const [node, n] of counts) {
    assert.ok(n >= 2_000 && n <= 4_500, `${node} owns ${n} keys`);
  }
});

test('pickWhere skips rejected nodes and goes on clockwise', () => {
  const ring = new HashRing(NODES);
  for (const key of KEYS.slice(0, 500)) {
    const first = ring.pick(key)!;
    const second = ring.pickWhere(key, (id) => id !== first);
    assert.ok(second !== undefined && second !== first);
    // Only one node left: that node.
    const last = NODES.find((n) => n !== first && n !== second)!;
    assert.equal(
      ring.pickWhere(key, (id) => id === last),
      last,
    );
    // Rejecting a node the key does not land on changes nothing.
    assert.equal(
      ring.pickWhere(key, (id) => id !== last),
      first,
    );
  }
});

test('pickWhere rejecting a node gives the same owners as a ring without it', () => {
  const ring = new HashRing(NODES);
  const without = new HashRing(NODES.filter((n) => n !== NODES[0]));
  for (const key of KEYS.slice(0, 2_000)) {
    assert.equal(
      ring.pickWhere(key, (id) => id !== NODES[0]),
      without.pick(key),
    );
  }
});

test('an empty ring, or one where every node is rejected, owns nothing', () => {
  const empty = new HashRing([]);
  assert.equal(empty.isEmpty, true);
  assert.equal(empty.pick('100'), undefined);
  const ring = new HashRing(NODES);
  assert.equal(ring.isEmpty, false);
  let asked = 0;
  assert.equal(
    ring.pickWhere('100', () => {
      asked += 1;
      return false;
    }),
    undefined,
  );
  assert.equal(asked, NODES.length, 'each node is asked once');
});
