#!/usr/bin/env node
/**
 * The `weft` command. A gateway needs no code of yours (its routes come from
 * the registry), so it can run from here:
 *
 *   weft gateway --redis redis://127.0.0.1:6379 --secret s3cret --port 5000
 */
import { parseArgs } from 'node:util';
import { createGateway } from '../gateway/gateway.js';
import { memoryCluster, redisCluster } from '../node/cluster.js';
import { isWeftError } from '../errors.js';

const USAGE = `usage: weft <command> [options]

commands:
  gateway     run a gateway (HTTP routes and WebSocket front door from the registry)
    --redis <url>      Redis URL (env WEFT_REDIS_URL); without it, a lone in-memory cluster
    --secret <s>       cluster secret (env WEFT_SECRET)
    --prefix <p>       Redis key prefix (default weft)
    --host <h>         HTTP host (default 127.0.0.1)
    --port <n>         HTTP port (default 5000)
  help        this text
`;

async function gateway(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      redis: { type: 'string' },
      secret: { type: 'string' },
      prefix: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '5000' },
    },
    strict: true,
  });
  const url = values.redis ?? process.env['WEFT_REDIS_URL'];
  const secret = values.secret ?? process.env['WEFT_SECRET'];
  const cluster =
    url === undefined
      ? memoryCluster()
      : redisCluster({ url, ...(secret === undefined ? {} : { secret }), ...(values.prefix === undefined ? {} : { prefix: values.prefix }) });
  const gw = await createGateway({ cluster, name: 'gateway', http: { host: values.host, port: Number(values.port) } }).start();
  process.stdout.write(`weft gateway on ${gw.url} (${cluster.kind} cluster)\n`);
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      void gw.stop().then(() => process.exit(0));
    });
  }
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  switch (command) {
    case 'gateway':
      return gateway(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`weft: unknown command "${command}"\n\n${USAGE}`);
      process.exitCode = 2;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`weft: ${isWeftError(e) ? `${e.code}: ${e.message}` : String(e)}\n`);
  process.exit(1);
});
