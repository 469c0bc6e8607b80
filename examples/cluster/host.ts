/**
 * Process 2 of 3: a host with the greeter and the WebSocket test service.
 * Start it more than once to see failover and cluster-wide push.
 */
import { WebSocketModule, createHost, implement } from 'weft';
import { greeterService } from '../services/greeter.js';
import { IWsTestAppService, WsTestAppService } from '../services/wstest.js';
import { cluster, stopOnSignal } from './config.js';

const host = await createHost({
  cluster,
  name: 'host',
  modules: [WebSocketModule],
  services: [greeterService, implement(IWsTestAppService, new WsTestAppService())],
}).start();
process.stdout.write(`host ${host.nodeId} serving IGreeterAppService and IWsTestAppService\n`);
stopOnSignal(() => host.stop());
