/**
 * Shared settings of the three-process example: every process joins the
 * same Redis cluster with the same secret.
 */
import { redisCluster } from 'weft';

export const cluster = redisCluster({
  url: process.env['WEFT_REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  secret: process.env['WEFT_SECRET'] ?? 'change-me',
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
