/**
 * Shared settings of the three-process example: every process joins the
 * same Redis cluster with the same secret, read from WEFT_SECRET:
 *
 *   export WEFT_SECRET=$(openssl rand -base64 32)   # once, in the shell that starts all three
 */
import { redisCluster } from 'weft';

const secret = process.env['WEFT_SECRET'];
if (secret === undefined || secret === '') {
  process.stderr.write(
    'WEFT_SECRET is not set. Every process of the cluster needs the same random secret, for example:\n' +
      '  export WEFT_SECRET=$(openssl rand -base64 32)\n' +
      'then start the host, the gateway and the caller from that shell.\n',
  );
  process.exit(1);
}

export const cluster = redisCluster({
  url: process.env['WEFT_REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  secret,
  prefix: process.env['WEFT_PREFIX'] ?? 'weft-example',
});

/** Stops `stop` on Ctrl+C or SIGTERM, once. */
export function stopOnSignal(stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      void stop().then(() => process.exit(0));
    });
  }
}
