/**
 * Process 3 of 3: a service that calls the greeter through its typed proxy,
 * and is itself reachable through the gateway:
 * GET /api/caller/greettwice?name=ann
 */
import { createHost } from 'weft';
import { IGreeterAppService } from '../services/greeter.js';
import { callerService } from '../services/caller.js';
import { cluster, stopOnSignal } from './config.js';

const host = await createHost({ cluster, name: 'caller', services: [callerService] }).start();
const greeter = host.proxy(IGreeterAppService);
try {
  process.stdout.write(`caller ${host.nodeId}: ${await greeter.greet('from the caller')}\n`);
} catch (e) {
  // No greeter host yet: the caller keeps serving and will find one when it registers.
  process.stdout.write(`caller ${host.nodeId}: greeter not reachable yet (${(e as Error).message})\n`);
}
stopOnSignal(() => host.stop());
