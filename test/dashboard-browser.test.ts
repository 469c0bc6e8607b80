/**
 * The gateway's dashboard (/dashboard, docs/operations.md): in a real
 * browser (Debian's Chromium driven by playwright-core) it shows the nodes,
 * the service, session counts and a push rate that moves, and writes a
 * screenshot to test/artifacts/dashboard.png; off by default; behind the
 * gateway's auth (401 without a token, 200 with one, 403 without the claim
 * `requireClaim` asks for); open only when asked to, with a warning.
 */
import { browserTest, launch } from './helpers/browser.js';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { WebSocketModule, WeftError, createGateway, createHost, implement, memoryCluster, type GatewayOptions, type Host } from '../src/index.js';
import { PROTOCOL_VERSION } from '../src/protocol/frames.js';
import { ChatAppService, IChatAppService, testService } from './fixtures/services.js';
import { captureLogger, connectWs, eventually, httpJson, quietLogger, rejection, type OpenedClient } from './helpers/index.js';
import { SECRET, tokenFor } from './helpers/tokens.js';

const ARTIFACTS = fileURLToPath(new URL('../../test/artifacts/', import.meta.url));

/** A memory cluster with one host serving IChatAppService (WebSocket) and ITestAppService, and a gateway with `options`. */
async function cluster(t: TestContext, options: GatewayOptions): Promise<{ host: Host; url: string; nodeId: string }> {
  const c = memoryCluster();
  const host: Host = createHost({
    cluster: c,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [testService(() => host.nodeId), implement(IChatAppService, new ChatAppService())],
  });
  await host.start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster: c, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 }, ...options }).start();
  t.after(() => gateway.stop());
  return { host, url: gateway.url, nodeId: gateway.nodeId };
}

interface DashboardData {
  nodes: { nodeId: string; role: string; protocol: number; services: string[]; health: string; self: boolean }[];
  services: { name: string; hosts: number; websocket?: string; sessions: number; http: { verb: string; path: string }[] }[];
  sessions: { total: number; byService: Record<string, number>; topBusinessIds: { businessId: string; sessions: number }[] };
  rates: { series: Record<string, number[]> };
  links: { nodeId: string; state: string; kind?: string }[];
}

test('the dashboard shows nodes, the service, its sessions and a push rate that moves, live, in Chromium', browserTest(), async (t) => {
  const { host, url, nodeId } = await cluster(t, { dashboard: { allowOpen: true } });
  const ws = url.replace(/^http/, 'ws');
  const clients: OpenedClient[] = [];
  for (const businessId of ['acme', 'acme', 'acme', 'globex', 'globex', 'initech'])
    clients.push(await connectWs(`${ws}/api/chat?businessId=${businessId}`));
  t.after(() => {
    for (const c of clients) c.ws.close(1000);
  });
  // Pushes keep coming while the page is open, so the rate has something to show.
  let pushing = true;
  const pushes = (async () => {
    while (pushing) {
      await httpJson(`${url}/api/chat/push?businessId=acme&msg=tick`);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  t.after(async () => {
    pushing = false;
    await pushes;
  });

  // The data endpoint, as the page reads it.
  const data = (await (await fetch(`${url}/dashboard/data`)).json()) as DashboardData;
  assert.deepEqual(data.nodes.map((n) => n.role).sort(), ['gateway', 'host']);
  const hostNode = data.nodes.find((n) => n.nodeId === host.nodeId)!;
  assert.equal(hostNode.protocol, PROTOCOL_VERSION);
  assert.ok(hostNode.services.includes('IChatAppService'));
  assert.equal(hostNode.health, 'ok');
  assert.ok(data.nodes.find((n) => n.nodeId === nodeId)!.self);
  const chat = data.services.find((s) => s.name === 'IChatAppService')!;
  assert.equal(chat.websocket, '/api/chat');
  assert.equal(chat.hosts, 1);
  assert.equal(chat.sessions, 6);
  assert.ok(chat.http.some((r) => r.verb === 'GET' && r.path === '/api/chat/push'));
  assert.equal(data.sessions.total, 6);
  assert.deepEqual(data.sessions.topBusinessIds.slice(0, 3), [
    { businessId: 'acme', sessions: 3, services: ['IChatAppService'] },
    { businessId: 'globex', sessions: 2, services: ['IChatAppService'] },
    { businessId: 'initech', sessions: 1, services: ['IChatAppService'] },
  ]);
  assert.deepEqual(
    data.links.map((l) => [l.nodeId, l.state, l.kind]),
    [[host.nodeId, 'open', 'direct']],
  );

  // A businessId is the client's to choose: the page shows it as text, never as HTML.
  const markup = '<img src=x onerror="window.__injected=1">';
  clients.push(await connectWs(`${ws}/api/chat?businessId=${encodeURIComponent(markup)}`));

  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`${url}/dashboard`);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'live');
  assert.match((await page.textContent('#gateway')) ?? '', new RegExp(nodeId));
  const nodes = await page.$$eval('#nodes tr', (rows) => rows.map((r) => r.textContent ?? ''));
  assert.equal(nodes.length, 2);
  assert.ok(nodes.some((r) => r.includes(host.nodeId) && r.includes('host') && r.includes(`v${PROTOCOL_VERSION}`) && r.includes('IChatAppService')));
  assert.ok(nodes.some((r) => r.includes(nodeId) && r.includes('this gateway')));
  const service = (await page.textContent('#services tr[data-service="IChatAppService"]')) ?? '';
  assert.match(service, /WS \/api\/chat/);
  assert.match(service, /GET \/api\/chat\/push/);
  // The seventh session opened on the client before the gateway counted it: the live page catches up.
  await page.waitForFunction(
    () => document.querySelector('#by-service tr[data-service="IChatAppService"] td:nth-child(2)')?.textContent === '7',
    undefined,
    { timeout: 10_000 },
  );
  assert.match((await page.textContent('#top')) ?? '', /<img src=x onerror="window.__injected=1">1IChatAppService/);
  assert.equal(await page.$$eval('#top img', (imgs) => imgs.length), 0);
  assert.equal(await page.evaluate(() => (window as { __injected?: number }).__injected), undefined);
  assert.match((await page.textContent('#top tr:first-child')) ?? '', /^acme3IChatAppService$/);
  assert.match((await page.textContent('#links')) ?? '', /open.*direct/);

  // The push rate moves: above zero, and its sparkline has points.
  await page.waitForFunction(() => Number(document.querySelector('#rate-pushes .value')?.textContent) > 0, undefined, { timeout: 10_000 });
  await page.waitForFunction(() => Number(document.querySelector('#rate-deliveries .value')?.textContent) > 0, undefined, { timeout: 10_000 });
  await page.waitForFunction(() => Number(document.querySelector('#rate-rpcCalls .value')?.textContent) > 0, undefined, { timeout: 10_000 });
  await page.waitForFunction(
    () => (document.querySelector('#rate-pushes polyline')?.getAttribute('points')?.split(' ').length ?? 0) >= 3,
    undefined,
    {
      timeout: 10_000,
    },
  );

  // Live: a new session shows without a reload.
  clients.push(await connectWs(`${ws}/api/chat?businessId=initech`));
  await page.waitForFunction(() => document.querySelector('#by-service tr[data-service="IChatAppService"] td:nth-child(2)')?.textContent === '8');

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });
  assert.ok(existsSync(`${ARTIFACTS}dashboard.png`));
  assert.deepEqual(errors, []);
});

test('a gateway serves no dashboard unless asked to (404)', async (t) => {
  const { url } = await cluster(t, {});
  assert.equal((await fetch(`${url}/dashboard`)).status, 404);
  assert.equal((await fetch(`${url}/dashboard/data`)).status, 404);
});

test('the dashboard is behind auth.jwt: 401 without a token, 200 with one, 403 without the claim requireClaim asks for', async (t) => {
  const { url } = await cluster(t, { auth: { jwt: { secret: SECRET } }, dashboard: { requireClaim: { role: 'admin' } } });
  for (const path of ['/dashboard', '/dashboard/data']) {
    const refused = await fetch(`${url}${path}`);
    assert.equal(refused.status, 401, path);
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer');
  }
  const admin = await tokenFor('ops', { role: 'admin' });
  const page = await fetch(`${url}/dashboard?token=${admin}`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'sha256-/);
  assert.match(await page.text(), /weft dashboard/);
  const data = await fetch(`${url}/dashboard/data`, { headers: { authorization: `Bearer ${admin}` } });
  assert.equal(data.status, 200);
  assert.equal(((await data.json()) as DashboardData).nodes.length, 2);

  const user = await tokenFor('ops', { role: 'user' });
  const forbidden = await httpJson(`${url}/dashboard/data`, { headers: { authorization: `Bearer ${user}` } });
  assert.equal(forbidden.status, 403);
  assert.match(forbidden.body.errorMessage ?? '', /"role" claim is "admin"/);
});

test('with tokens, the page opened with ?token= sends that token with each update; one without the claim gets 403', browserTest(), async (t) => {
  const { url } = await cluster(t, { auth: { jwt: { secret: SECRET } }, dashboard: { requireClaim: { role: 'admin' } } });
  const browser = await launch(t);
  const page = await browser.newPage();
  const dataAuth: (string | undefined)[] = [];
  page.on('request', (r) => {
    if (r.url().endsWith('/dashboard/data')) dataAuth.push(r.headers()['authorization']);
  });
  const admin = await tokenFor('ops', { role: 'admin' });
  await page.goto(`${url}/dashboard?token=${admin}`);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'live');
  assert.equal(await page.$$eval('#nodes tr', (rows) => rows.length), 2);
  assert.equal(dataAuth[0], `Bearer ${admin}`);
  await page.reload();
  await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'live');

  // A token without the claim is refused the page itself.
  const other = await browser.newPage();
  const answer = await other.goto(`${url}/dashboard?token=${await tokenFor('ops', { role: 'user' })}`);
  assert.equal(answer?.status(), 403);
});

test('the dashboard passes the authenticate hook like HTTP routes do', async (t) => {
  const { url } = await cluster(t, {
    authenticate: (req) => {
      if (req.headers['x-ops'] !== 'yes') throw new WeftError('Unauthenticated', 'operators only');
    },
    dashboard: {},
  });
  assert.equal((await fetch(`${url}/dashboard/data`)).status, 401);
  assert.equal((await fetch(`${url}/dashboard/data`, { headers: { 'x-ops': 'yes' } })).status, 200);
});

test('a dashboard on a gateway without auth needs allowOpen, and is logged as open', async (t) => {
  const error = await rejection(Promise.resolve().then(() => createGateway({ cluster: memoryCluster(), logger: quietLogger(), dashboard: {} })));
  assert.equal(error.code, 'InvalidOption');
  assert.match(error.message, /dashboard\.allowOpen/);
  const claimWithoutJwt = await rejection(
    Promise.resolve().then(() =>
      createGateway({ cluster: memoryCluster(), logger: quietLogger(), dashboard: { allowOpen: true, requireClaim: { role: 'admin' } } }),
    ),
  );
  assert.match(claimWithoutJwt.message, /dashboard\.requireClaim.*auth\.jwt/);

  const { logger, lines } = captureLogger();
  const gateway = await createGateway({
    cluster: memoryCluster(),
    logger,
    http: { host: '127.0.0.1', port: 0 },
    dashboard: { allowOpen: true },
  }).start();
  t.after(() => gateway.stop());
  await eventually(() => lines().some((l) => l['level'] === 40 && /dashboard at \/dashboard is open/.test(String(l['msg']))));
  assert.equal((await fetch(`${gateway.url}/dashboard`)).status, 200);
});
