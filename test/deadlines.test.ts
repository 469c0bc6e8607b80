/**
 * The RPC client's deadlines: calls expire in the order they fall due, a
 * removed call never expires, and a list with nothing left in it keeps
 * neither a call nor the process alive.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Deadlines, type Due } from '../src/rpc/deadlines.js';

interface Entry extends Due {
  name: string;
  addedAt: number;
}

function entry(name: string): Entry {
  return { name, addedAt: performance.now(), dueAt: 0, dueList: undefined, duePrev: undefined, dueNext: undefined };
}

test('calls of one timeout expire in the order they started, none before its time, and a removed one never', async () => {
  const expired: { name: string; afterMs: number }[] = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const deadlines = new Deadlines<Entry>((e) => {
    expired.push({ name: e.name, afterMs: performance.now() - e.addedAt });
    if (expired.length === 3) done();
  });
  const entries = ['a', 'b', 'c', 'd'].map(entry);
  for (const e of entries) deadlines.add(e, 30);
  deadlines.remove(entries[1]!);
  await all;
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(
    expired.map((e) => e.name),
    ['a', 'c', 'd'],
  );
  for (const e of expired) assert.ok(e.afterMs >= 29, `${e.name} expired after ${e.afterMs} ms, before its 30 ms`);
});

test('calls of different timeouts each expire at their own, the shorter first', async () => {
  const expired: string[] = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const deadlines = new Deadlines<Entry>((e) => {
    expired.push(e.name);
    if (expired.length === 3) done();
  });
  deadlines.add(entry('long'), 80);
  deadlines.add(entry('short'), 10);
  deadlines.add(entry('middle'), 40);
  await all;
  assert.deepEqual(expired, ['short', 'middle', 'long']);
});

test('a call added after the list emptied, or by an expiring call, expires in its turn', async () => {
  const expired: string[] = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const deadlines = new Deadlines<Entry>((e) => {
    expired.push(e.name);
    if (e.name === 'first') deadlines.add(entry('added by first'), 20);
    if (expired.length === 3) done();
  });
  const gone = entry('gone');
  deadlines.add(gone, 20);
  deadlines.remove(gone);
  deadlines.add(entry('first'), 20);
  await new Promise((r) => setTimeout(r, 5));
  deadlines.add(entry('second'), 20);
  await all;
  assert.deepEqual(expired, ['first', 'second', 'added by first']);
});

test('a call made by an expiring call’s handler does not hold back the calls already waiting', async () => {
  // a and b share a timeout; a's handler adds c. b must expire at its own time, not with c.
  const timeoutMs = 200;
  const expiredAt = new Map<string, number>();
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const deadlines = new Deadlines<Entry>((e) => {
    expiredAt.set(e.name, performance.now());
    if (e.name === 'a') deadlines.add(entry('c'), timeoutMs);
    if (expiredAt.size === 3) done();
  });
  const a = entry('a');
  deadlines.add(a, timeoutMs);
  await new Promise((r) => setTimeout(r, 100));
  const b = entry('b');
  deadlines.add(b, timeoutMs);
  await all;
  const cDueAt = expiredAt.get('a')! + timeoutMs;
  assert.ok(expiredAt.get('b')! < cDueAt - 50, `b expired ${(cDueAt - expiredAt.get('b')!).toFixed(0)} ms before c was due: it waited for c's timer`);
});

test('a timeout longer than a Node timer can hold is waited out, not fired at once', async () => {
  const expired: string[] = [];
  const deadlines = new Deadlines<Entry>((e) => expired.push(e.name));
  const month = entry('a month');
  deadlines.add(month, 30 * 24 * 3600 * 1000);
  deadlines.add(entry('soon'), 10);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(expired, ['soon']);
  // Taken out, it holds nothing: its list's timer no longer keeps the process alive.
  deadlines.remove(month);
});

test('a process whose calls have all settled exits without waiting for their deadlines', async () => {
  // A child that adds and removes a call due in ten minutes: it must end as soon as its work is done.
  const script = `
    import { Deadlines } from ${JSON.stringify(fileURLToPath(new URL('../src/rpc/deadlines.js', import.meta.url)))};
    const d = new Deadlines(() => { console.log('expired'); });
    const e = { dueAt: 0, dueList: undefined, duePrev: undefined, dueNext: undefined };
    d.add(e, 600000);
    setTimeout(() => { d.remove(e); console.log('removed'); }, 20);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(killer);
  assert.equal(signal, null, 'the child was still running a minute later: the settled call kept it alive');
  assert.equal(code, 0);
  assert.equal(out.trim(), 'removed');
});
