/**
 * The demo of the seed's scenario in one process, no Redis: a host with the
 * greeter, the WebSocket test service and a chat room service, and a
 * gateway on 127.0.0.1:5000.
 *
 *   npm start                                    # or, from an install of the package: npx weft demo
 *   WEFT_JWT_SECRET=<32+ characters> npm start   # tokens required (HS256, sub = businessId)
 */
import { WebSocketModule, createGateway, createHost, implement, memoryCluster } from 'weft';
import { greeterService } from './services/greeter.js';
import { ChatAppService, IChatAppService } from './services/chatroom.js';
import { IWsTestAppService, WsTestAppService } from './services/wstest.js';

// Quiet by default so the URLs below stand out; WEFT_LOG_LEVEL=info shows the nodes' logs.
process.env['WEFT_LOG_LEVEL'] ??= 'warn';
const port = Number(process.env['WEFT_HTTP_PORT'] ?? 5000);
// With a secret, every request needs an HS256 token whose sub is the businessId; the demo page gets one from /demo/token.
const secret = process.env['WEFT_JWT_SECRET'];
if (secret !== undefined && Buffer.byteLength(secret) < 32) {
  process.stderr.write('WEFT_JWT_SECRET must be at least 32 bytes (an HS256 key as long as its hash)\n');
  process.exit(1);
}
const cluster = memoryCluster();

const host = await createHost({
  cluster,
  name: 'demo-host',
  modules: [WebSocketModule],
  services: [greeterService, implement(IWsTestAppService, new WsTestAppService()), implement(IChatAppService, new ChatAppService())],
}).start();

const gateway = await createGateway({
  cluster,
  name: 'demo-gateway',
  http: { host: '127.0.0.1', port },
  ...(secret === undefined ? {} : { auth: { jwt: { secret } } }),
  demo: {
    wsPath: '/api/wstest',
    echoPath: '/api/wstest/echo',
    notifyPath: '/api/wstest/notify',
    chatPath: '/api/{room}/chat',
    issueTokens: secret !== undefined,
  },
}).start();

const base = gateway.url;
const ws = base.replace(/^http/, 'ws');
const mode =
  secret === undefined
    ? 'open: no tokens checked, any client may pick any businessId (set WEFT_JWT_SECRET to require tokens)'
    : `tokens required: HS256, sub = businessId (Authorization: Bearer, or ?token= on WebSocket); demo tokens at ${base}/demo/token?businessId=100`;
process.stdout.write(`
weft demo is running (one process, memory cluster)
  mode            ${mode}

  demo page       ${base}/demo
  WebSocket       ${ws}/api/wstest?businessId=100
  echo (push)     ${base}/api/wstest/echo?businessId=100&msg=hello
  notify (kept)   ${base}/api/wstest/notify?businessId=100&msg=hi
  chat room       ${ws}/api/lobby/chat?businessId=ann   (weft/client: call('say', { text }), on('said'))
  client module   ${base}/weft-client.js
  greeter         ${base}/api/greeter/greet?name=ann
  OpenAPI         ${base}/swagger.json
  health          ${base}/healthz

Press Ctrl+C to stop.
`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping: draining the gateway, then the host\n');
    void gateway
      .stop()
      .then(() => host.stop())
      .then(() => process.exit(0));
  });
}
