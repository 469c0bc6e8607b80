/**
 * `weft host <module>`: a host of the services an ES module exports, on a
 * Redis cluster, draining on SIGTERM or SIGINT. See service-module.ts for
 * what the module exports.
 */
import { isWeftError } from '../errors.js';
import type { Host } from '../host/host.js';
import { clusterFrom, CLUSTER_FLAGS, stopOnSignal, type CliCommand } from './common.js';
import { loadServiceModule, ModuleLoadError } from './service-module.js';

export const HOST_COMMAND: CliCommand = {
  synopsis: '<module> [options]',
  about:
    'run a host of the services an ES module exports, on a Redis cluster; it drains and stops on SIGTERM or SIGINT.\n' +
    '<module> is a file (./services.js) or a package name. It exports services = [implement(IMyService, impl), ...] and,\n' +
    'for WebSocket services, modules = [WebSocketModule]; or export default { services, modules }.',
  positionals: [{ name: 'module', required: true }],
  flags: [
    ...CLUSTER_FLAGS,
    {
      name: 'listen',
      kind: 'listen',
      value: '<host:port>',
      env: 'WEFT_LISTEN',
      default: '127.0.0.1:0',
      help: 'link server address, where gateways and other nodes call this host (0.0.0.0:<port>: every interface; port 0: any free one)',
    },
    {
      name: 'advertise',
      kind: 'string',
      value: '<host>',
      env: 'WEFT_ADVERTISE',
      help: 'link address other nodes dial, published in the registry (default: the listen host; an interface address for 0.0.0.0)',
    },
    { name: 'name', kind: 'string', value: '<name>', env: 'WEFT_NAME', default: 'host', help: 'node name; the node id is <name>-<10 hex digits>' },
  ],
  async run(flags) {
    const cluster = await clusterFrom('host', flags, true);
    const { createHost } = await import('../host/host.js');
    const loaded = await loadServiceModule(flags.args[0]!);
    const listen = flags.listen('listen')!.value;
    const advertise = flags.string('advertise')?.value;
    let host: Host;
    try {
      host = createHost({
        cluster,
        name: flags.string('name')!.value,
        services: loaded.services,
        modules: loaded.modules,
        listen: { host: listen.host ?? '127.0.0.1', port: listen.port },
        ...(advertise === undefined ? {} : { advertiseHost: advertise }),
      });
    } catch (e) {
      // A WebSocket service without WebSocketModule: what to write in the module.
      if (isWeftError(e, 'InvalidOption') && e.message.startsWith('option "modules"')) {
        throw new ModuleLoadError(`${flags.args[0]!}: ${e.message} (export const modules = [WebSocketModule] from the module)`);
      }
      throw e;
    }
    await host.start();
    stopOnSignal(() => host.stop());
    const names = loaded.services.map((s) => s.contract.name).join(', ');
    const link = host.linkAddress === undefined ? '' : `, link ${host.linkAddress.host}:${host.linkAddress.port}`;
    // Printed once the signal handlers are in: whoever waits for this line may stop the host at once.
    process.stdout.write(`weft host ${host.nodeId} serving ${names} (${cluster.kind} cluster${link})\n`);
  },
};
