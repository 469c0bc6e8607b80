/**
 * Process 1 of 3: the gateway. It has no service code: routes come from the
 * registry. `WEFT_HTTP_PORT` (default 5000).
 */
import { createGateway } from 'weft';
import { cluster, stopOnSignal } from './config.js';

const gateway = await createGateway({
  cluster,
  name: 'gateway',
  http: { host: '127.0.0.1', port: Number(process.env['WEFT_HTTP_PORT'] ?? 5000) },
  demo: { wsPath: '/api/wstest', echoPath: '/api/wstest/echo' },
}).start();
process.stdout.write(`gateway on ${gateway.url}\n`);
stopOnSignal(() => gateway.stop());
