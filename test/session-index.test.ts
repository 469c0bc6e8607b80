import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SessionIndex } from '../src/directory/session-index.js';

const live = (): boolean => true;

test('keeps each businessId with its sessions and their gateways, and counts them', () => {
  const index = new SessionIndex();
  index.add('s1', 'b1', 'g1');
  index.add('s2', 'b1', 'g2');
  index.add('s3', 'b2', 'g1');
  index.add('s1', 'b1', 'g1'); // again: no duplicate
  assert.equal(index.size, 3);
  assert.deepEqual(index.sessionIdsOf('b1', live).sort(), ['s1', 's2']);
  assert.deepEqual(index.gatewaysOf('b1').sort(), ['g1', 'g2']);
  assert.deepEqual(index.gatewaysOf('nobody'), []);
  assert.deepEqual([...index.gateways()].sort(), ['g1', 'g2']);
  assert.deepEqual([...index.entries()].sort(), [
    ['s1', 'b1', 'g1'],
    ['s2', 'b1', 'g2'],
    ['s3', 'b2', 'g1'],
  ]);
  assert.deepEqual(
    index.sessionIdsOf('b1', (g) => g === 'g2'),
    ['s2'],
  );
});

test('removes a session by id and businessId, and forgets an emptied businessId', () => {
  const index = new SessionIndex();
  index.add('s1', 'b1', 'g1');
  index.add('s2', 'b1', 'g1');
  assert.equal(index.remove('s1', 'b2'), false, 'wrong businessId removes nothing');
  assert.equal(index.remove('s1', 'b1'), true);
  assert.equal(index.remove('s1', 'b1'), false);
  assert.deepEqual(index.sessionIdsOf('b1', live), ['s2']);
  assert.equal(index.remove('s2', 'b1'), true);
  assert.equal(index.size, 0);
  assert.deepEqual([...index.entries()], []);
});

test('a businessId with many sessions keeps working past the small-group size, both ways', () => {
  const index = new SessionIndex();
  const ids = Array.from({ length: 200 }, (_, i) => `s${i}`);
  ids.forEach((id, i) => index.add(id, 'big', `g${i % 3}`));
  index.add('s5', 'big', 'g9'); // moves to another gateway
  assert.equal(index.size, 200);
  assert.equal(index.sessionIdsOf('big', live).length, 200);
  assert.deepEqual(index.gatewaysOf('big').sort(), ['g0', 'g1', 'g2', 'g9']);
  for (const id of ids.slice(0, 150)) assert.equal(index.remove(id, 'big'), true);
  assert.equal(index.size, 50);
  assert.deepEqual(index.sessionIdsOf('big', live).sort(), ids.slice(150).sort());
});

test('drops every session of a gateway that left', () => {
  const index = new SessionIndex();
  for (let i = 0; i < 100; i++) index.add(`s${i}`, `b${i % 7}`, i % 2 === 0 ? 'dead' : 'alive');
  assert.equal(index.removeGateway('dead'), 50);
  assert.equal(index.size, 50);
  assert.deepEqual([...index.gateways()], ['alive']);
  assert.ok([...index.entries()].every(([, , g]) => g === 'alive'));
});
