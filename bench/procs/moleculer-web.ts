/**
 * The moleculer-web baseline for http-rpc: the same small object behind
 * GET /api/benchrpc/item?id=, served by Moleculer 0.14 (the last line that
 * runs on Node 20) in the two layouts of its own published benchmarks:
 * - `one-process`: the API gateway and the service in one broker (published
 *   14,427 req/s, benchmarks/simple);
 * - `api` + `worker`: the gateway in one process calling the service in
 *   another over NATS (published 11,236 req/s, benchmarks/remote), the
 *   layout of weft's row (gateway and host in separate processes).
 * Logging is off and Moleculer's metrics and tracing stay at their
 * default (off), as weft's bench nodes log warnings only.
 */
import type { AddressInfo } from 'node:net';
import moleculer from 'moleculer';
import ApiGateway from 'moleculer-web';
import { benchItem } from '../contract.js';
import { childArgs, failStart, serve } from '../lib/child.js';

interface MoleculerArgs {
  role: 'one-process' | 'api' | 'worker';
  /** NATS server for the api and worker roles. */
  natsUrl?: string;
  /** A namespace of this run's own, so brokers of other runs on the same NATS never answer. */
  namespace?: string;
}

const args = childArgs<MoleculerArgs>();

const benchRpc = {
  name: 'benchrpc',
  actions: {
    item(ctx: moleculer.Context<{ id?: string }>) {
      return benchItem(ctx.params.id ?? '');
    },
  },
};

const api = {
  name: 'api',
  mixins: [ApiGateway],
  settings: {
    port: 0,
    ip: '127.0.0.1',
    routes: [{ path: '/api', mappingPolicy: 'restrict', aliases: { 'GET benchrpc/item': 'benchrpc.item' } }],
  },
};

try {
  const remote = args.role !== 'one-process';
  const broker = new moleculer.ServiceBroker({
    nodeID: `bench-${args.role}-${process.pid}`,
    namespace: args.namespace ?? '',
    logger: false,
    transporter: remote ? (args.natsUrl ?? 'nats://127.0.0.1:4222') : null,
  });
  if (args.role !== 'api') broker.createService(benchRpc);
  const gateway = args.role === 'worker' ? undefined : broker.createService(api);
  await broker.start();
  if (args.role === 'api') await broker.waitForServices('benchrpc', 20_000);
  const port = gateway === undefined ? undefined : (gateway as unknown as { server: { address(): AddressInfo } }).server.address().port;
  serve({ stop: () => broker.stop().then(() => true) }, port === undefined ? {} : { port });
} catch (err) {
  failStart(err);
}
