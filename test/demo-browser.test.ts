/**
 * The demo page in a real browser (Debian's Chromium driven by
 * playwright-core): connect with a businessId, push over HTTP, see it; and
 * the same with WEFT_JWT_SECRET set, where every request needs a token.
 */
import { browserTest, launch } from './helpers/browser.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { connectWs, httpJson, refusedWs } from './helpers/index.js';
import { SECRET, tokenFor } from './helpers/tokens.js';

/** Runs `npm start`'s program on a free port and resolves with its base URL. */
async function startDemo(t: { after: (fn: () => unknown) => void }, env: Record<string, string> = {}): Promise<string> {
  const demo = fileURLToPath(new URL('../examples/demo.js', import.meta.url));
  const child = spawn(process.execPath, [demo], {
    env: { ...process.env, WEFT_HTTP_PORT: '0', WEFT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /demo page\s+(http:\/\/[^/\s]+)\/demo/.exec(out);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`demo exited with ${code}: ${out}`)));
  });
}

test('the demo page connects with a businessId and shows what a push over HTTP sends it', browserTest(), async (t) => {
  const base = await startDemo(t);
  const browser = await launch(t);

  // Two tabs with the same businessId: one echo reaches both.
  const tabs = [await browser.newPage(), await browser.newPage()];
  for (const page of tabs) {
    await page.goto(`${base}/demo`);
    assert.match((await page.textContent('#mode')) ?? '', /Open mode.*WEFT_JWT_SECRET/s);
    await page.fill('#businessId', '4242');
    await page.click('#connect');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('connected'));
  }

  // A push from outside the browser, over the gateway's HTTP route.
  const pushed = await httpJson(`${base}/api/wstest/echo?businessId=4242&msg=from-http`);
  assert.equal(pushed.status, 200);
  assert.equal(pushed.body.result, 2);
  for (const page of tabs) {
    await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('message:from-http,sessionId:'));
  }

  // The page's own button calls echo; its answer and the pushed message both show.
  await tabs[0]!.fill('#msg', 'from-button');
  await tabs[0]!.click('#echo');
  await tabs[0]!.waitForFunction(() => document.querySelector('#answer')?.textContent?.startsWith('200'));
  for (const page of tabs) {
    await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('message:from-button,sessionId:'));
  }
  const lines = await tabs[1]!.$$eval('#log li.message', (items) => items.map((li) => li.textContent ?? ''));
  assert.ok(
    lines.every((l) => /^message:from-(http|button),sessionId:\S+$/.test(l)),
    JSON.stringify(lines),
  );

  // A businessId with no session: echo answers 400 with the BusinessError body, shown on the page.
  await tabs[0]!.fill('#businessId', 'nobody');
  await tabs[0]!.click('#echo');
  await tabs[0]!.waitForFunction(() => document.querySelector('#answer')?.textContent?.startsWith('400'));
  const answer = await tabs[0]!.textContent('#answer');
  assert.match(answer ?? '', /"code":"BusinessError"/);
  assert.match(answer ?? '', /no session exists for businessId nobody/);
});

test(
  'two tabs join a chat room: a typed say reaches both, its reply says how many it reached, and another room hears nothing',
  browserTest(),
  async (t) => {
    const base = await startDemo(t);
    const browser = await launch(t);
    const join = async (name: string, room: string) => {
      const page = await browser.newPage();
      await page.goto(`${base}/demo`);
      await page.fill('#chatName', name);
      await page.fill('#chatRoom', room);
      await page.click('#chatJoin');
      await page.waitForFunction((r) => document.querySelector('#chatLog')?.textContent?.includes(`you are in room ${r}`), room);
      return page;
    };
    const ann = await join('ann', 'lobby');
    const bob = await join('bob', 'lobby');
    const eve = await join('eve', 'attic');
    // ann saw bob come in: a typed push to the room, from the service's onOpen.
    await ann.waitForFunction(() => document.querySelector('#chatLog')?.textContent?.includes('bob joined (2 here)'));

    await ann.fill('#chatText', 'hello lobby');
    await ann.click('#chatSay');
    await ann.waitForFunction(() => document.querySelector('#chatReply')?.textContent === 'reached 2');
    for (const page of [ann, bob]) await page.waitForFunction(() => document.querySelector('#chatLog')?.textContent?.includes('annhello lobby'));
    // A message the contract refuses (empty text) comes back as a ValidateError reply; the session goes on.
    await bob.fill('#chatText', '');
    await bob.click('#chatSay');
    await bob.waitForFunction(() => document.querySelector('#chatReply')?.textContent?.startsWith('ValidateError'));
    await bob.fill('#chatText', 'still here');
    await bob.click('#chatSay');
    await bob.waitForFunction(() => document.querySelector('#chatReply')?.textContent === 'reached 2');
    // The room's size over HTTP, and the other room heard none of it.
    assert.equal((await httpJson(`${base}/api/lobby/chat/members`)).body.result, 2);
    assert.doesNotMatch((await eve.textContent('#chatLog')) ?? '', /hello lobby|still here/);
  },
);

test('the demo page shows each notify with its position and, after Drop connection, gets what was notified meanwhile', browserTest(), async (t) => {
  const base = await startDemo(t);
  const browser = await launch(t);
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}/demo`);
  // The page loads weft/client from the gateway, checked against its integrity hash.
  const preload = await page.getAttribute('link[rel=modulepreload]', 'integrity');
  assert.match(preload ?? '', /^sha384-/);
  await page.fill('#businessId', '777');
  await page.click('#connect');
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('connected'));

  await page.fill('#msg', 'first');
  await page.click('#notify');
  await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('first'));
  const first = await page.textContent('#log li.message .pos');
  assert.match(first ?? '', /^[\w-]+:1$/);

  await page.click('#drop');
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('reconnecting'));
  // While the page is away, two pushes over HTTP: nobody is connected, so they reach no socket now.
  for (const msg of ['while-away-1', 'while-away-2']) {
    const pushed = await httpJson(`${base}/api/wstest/notify?businessId=777&msg=${msg}`);
    assert.deepEqual([pushed.status, pushed.body.result], [200, 0]);
  }
  await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('resumed: 2 missed push(es) replayed'), undefined, {
    timeout: 15_000,
  });
  const lines = await page.$$eval('#log li.message', (items) => items.map((li) => li.textContent ?? '').reverse());
  assert.deepEqual(
    lines.map((l) => l.replace(/^[\w-]+:/, '')),
    ['1first', '2while-away-1', '3while-away-2'],
  );
  assert.match((await page.textContent('#position')) ?? '', /:3$/);
  assert.deepEqual(errors, []);
});

test('with WEFT_JWT_SECRET the demo page gets a token per businessId, and requests without one are refused', browserTest(), async (t) => {
  // The tests' secret, so the test signs tokens the demo accepts.
  const base = await startDemo(t, { WEFT_JWT_SECRET: SECRET });
  const ws = base.replace(/^http/, 'ws');
  const browser = await launch(t);

  const tabs = [await browser.newPage(), await browser.newPage()];
  for (const page of tabs) {
    await page.goto(`${base}/demo`);
    assert.match((await page.textContent('#mode')) ?? '', /Tokens required/);
    await page.fill('#businessId', '4242');
    await page.click('#connect');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('connected'));
  }

  // Outside the browser: no token, 401 on HTTP and WebSocket; another business's token, 403.
  const bare = await httpJson(`${base}/api/wstest/echo?businessId=4242&msg=x`);
  assert.equal(bare.status, 401);
  assert.equal(bare.headers.get('www-authenticate'), 'Bearer');
  assert.equal((await refusedWs(`${ws}/api/wstest?businessId=4242`)).status, 401);
  const intruder = await tokenFor('9999');
  assert.equal((await httpJson(`${base}/api/wstest/echo?businessId=4242&msg=x`, { headers: { authorization: `Bearer ${intruder}` } })).status, 403);
  assert.equal((await refusedWs(`${ws}/api/wstest?businessId=4242&token=${intruder}`)).status, 403);
  // The intruder's own business is theirs, and sees nothing of 4242's.
  const own = await connectWs(`${ws}/api/wstest?token=${intruder}`);
  t.after(() => own.ws.terminate());

  // With a token for 4242, the push reaches both tabs.
  const pushed = await httpJson(`${base}/api/wstest/echo?businessId=4242&msg=with-token`, {
    headers: { authorization: `Bearer ${await tokenFor('4242')}` },
  });
  assert.equal(pushed.status, 200);
  assert.equal(pushed.body.result, 2);
  for (const page of tabs) {
    await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('message:with-token,sessionId:'));
  }

  // The page's echo button sends its token too.
  await tabs[0]!.fill('#msg', 'from-button');
  await tabs[0]!.click('#echo');
  await tabs[0]!.waitForFunction(() => document.querySelector('#answer')?.textContent?.startsWith('200'));
  await tabs[1]!.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('message:from-button,sessionId:'));
  assert.deepEqual(own.messages, []);
});
