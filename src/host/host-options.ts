/**
 * Options of `createHost`: node options plus what it serves.
 */
import type { Static } from '@sinclair/typebox';
import type { ServiceBinding } from './service-binding.js';
import type { WeftModule } from './module.js';
import { DEFAULT_STOP_TIMEOUT_MS, NODE_OPTION_PROPERTIES } from '../node/node-options.js';
import { custom, defineOptions, nonEmptyString, port, positiveInteger, positiveNumber, record, section, type Resolved } from '../options/schema.js';

function isServiceBinding(value: unknown): value is ServiceBinding {
  const binding = value as Partial<ServiceBinding> | null | undefined;
  return binding?.contract?.descriptor !== undefined && typeof binding.create === 'function';
}

function isServiceList(value: unknown): value is readonly ServiceBinding[] {
  return Array.isArray(value) && value.every(isServiceBinding);
}

function isModuleList(value: unknown): value is readonly WeftModule[] {
  return Array.isArray(value) && value.every((m) => typeof (m as Partial<WeftModule> | null)?.setup === 'function');
}

/** `websocket.maxSessionMetadataBytes` unless the host says otherwise. */
export const DEFAULT_MAX_SESSION_METADATA_BYTES = 4096;

/** What a host adds to the node options, in the order docs/options.md lists them. */
export const HOST_OWN_OPTION_PROPERTIES = {
  services: custom({
    is: isServiceList,
    docType: 'array of `implement(contract, impl)`',
    expected: 'an array of implement(contract, implementation) values',
    default: [],
    description: 'The services this host serves. An implementation must have every method of its contract.',
  }),
  modules: custom({
    is: isModuleList,
    docType: 'array of `WeftModule`',
    expected: 'an array of modules (e.g. WebSocketModule)',
    default: [],
    description: 'Modules to start, e.g. `WebSocketModule` (required when a service extends `WsAppServiceBase`).',
  }),
  maxConcurrentCalls: positiveInteger({
    unit: 'calls',
    default: 10_000,
    description: 'Calls served at once; beyond it callers get `Overloaded` and fail over.',
  }),
  stopTimeoutMs: positiveNumber({ unit: 'ms', default: DEFAULT_STOP_TIMEOUT_MS, description: 'Time `stop()` gives calls in flight before closing.' }),
  metrics: record(
    {
      port: port({ required: true, description: 'Port of the metrics server (0: any free one; see `host.metricsUrl`).' }),
      host: nonEmptyString({ default: '127.0.0.1', unit: 'address', description: 'Address the metrics server listens on.' }),
    },
    { description: 'Serve the Prometheus metrics of this process at `GET /metrics` on a port of its own (docs/metrics.md).' },
  ),
  websocket: section({
    maxSessionMetadataBytes: positiveInteger({
      unit: 'bytes',
      default: DEFAULT_MAX_SESSION_METADATA_BYTES,
      description:
        "Largest JSON of what a WebSocket service's `onOpen` attaches to a session (`session.setMetadata`), kept with its directory entry and sent with its presence events; over it, `setMetadata` throws BadRequest (docs/presence.md).",
    }),
  }),
};

export const HOST_OPTIONS = defineOptions({ ...NODE_OPTION_PROPERTIES, ...HOST_OWN_OPTION_PROPERTIES });

/** Options of `createHost`; see docs/options.md. */
export interface HostOptions extends Static<typeof HOST_OPTIONS> {}

/** Host options once resolved: defaults filled in, frozen. */
export type ResolvedHostOptions = Resolved<typeof HOST_OPTIONS.properties>;
