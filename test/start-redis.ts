/**
 * Starts a local Redis of one kind for trying weft by hand, prints its
 * WEFT_REDIS_URL, and stops it (deleting its directory) on Ctrl+C:
 *
 *   npm run redis:local -- cluster     # three masters
 *   npm run redis:local -- cluster-replicas   # three masters with a replica each
 *   npm run redis:local -- sentinel    # a master, a replica, three sentinels
 *
 * Then, in other shells: export WEFT_REDIS_URL=<printed URL>, and run the
 * README's three processes unchanged.
 */
import { FAILOVER_ENGINE_KINDS, startEngine, type EngineKind } from './fixtures/redis-engines.js';

const kind = (process.argv[2] ?? 'cluster') as EngineKind;
if (!FAILOVER_ENGINE_KINDS.includes(kind)) {
  process.stderr.write(`usage: npm run redis:local -- ${FAILOVER_ENGINE_KINDS.join(' | ')}\n`);
  process.exit(2);
}
const engine = await startEngine(kind);
process.stdout.write(`WEFT_REDIS_URL=${engine.url}\n`);
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void engine.stop().then(() => process.exit(0));
  });
}
