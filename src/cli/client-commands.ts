/**
 * `weft call`, `weft push` and `weft sessions`: one-shot commands that join a
 * Redis cluster as a client node (createClient: it serves nothing), do one
 * thing and leave. The service is named as its contract (IGreeterAppService),
 * its route segment (greeter) or, for a WebSocket service, its path
 * (/api/wstest); the contract itself comes from the registry record of a
 * node that serves it.
 */
import type { ClusterClient } from '../cluster-client/cluster-client.js';
import type { Contract, ContractDescriptor, MethodDescriptor, MethodMap } from '../contract/contract.js';
import { WeftError, isWeftError } from '../errors.js';
import { businessIdProblem } from '../gateway/auth/business-id.js';
import type { Cluster } from '../node/cluster.js';
import type { NodeRecord } from '../registry/registry.js';
import type { PushOptions } from '../websocket/session-manager.js';
import { CLUSTER_FLAGS, clusterFrom, readRegistry, type CliCommand } from './common.js';
import { UsageError, type ParsedFlags } from './flags.js';

/** What the registry says of one service: its contract and whether it is a WebSocket service. */
interface ServiceEntry {
  readonly contract: ContractDescriptor;
  readonly websocketPath: string | undefined;
}

function servicesIn(records: readonly NodeRecord[]): Map<string, ServiceEntry> {
  const out = new Map<string, ServiceEntry>();
  // Hosts first, oldest first: the contract of the host that has served it longest.
  const hosts = records.filter((r) => r.role === 'host').sort((a, b) => a.startedAt - b.startedAt);
  for (const record of hosts) {
    for (const s of record.services) {
      if (!out.has(s.contract.name)) out.set(s.contract.name, { contract: s.contract, websocketPath: s.websocket?.path });
    }
  }
  return out;
}

/** The service `name` names, by contract name, route segment or WebSocket path (case aside); or an error listing them. */
function findService(records: readonly NodeRecord[], name: string, websocket: boolean): ServiceEntry {
  const all = [...servicesIn(records).values()].filter((s) => !websocket || s.websocketPath !== undefined);
  const lower = name.toLowerCase();
  const found =
    all.find((s) => s.contract.name === name) ??
    all.find((s) => s.contract.name.toLowerCase() === lower) ??
    all.find((s) => s.contract.segment.toLowerCase() === lower) ??
    all.find((s) => s.websocketPath !== undefined && [s.websocketPath, s.websocketPath.replace(/^\//, '')].includes(name));
  if (found !== undefined) return found;
  const kind = websocket ? 'WebSocket service' : 'service';
  const known = all.map((s) => (websocket ? `${s.contract.name} (${s.websocketPath ?? ''})` : s.contract.name));
  throw new WeftError(
    'NotFound',
    `no host of the cluster serves a ${kind} named ${JSON.stringify(name)}: ` +
      (known.length === 0 ? `the cluster has no ${kind} (see weft nodes)` : `its ${kind}s are ${known.join(', ')}`),
  );
}

/** A contract the proxy can call, from the descriptor the registry carries (the proxy needs no more). */
function contractOf(descriptor: ContractDescriptor): Contract<MethodMap> {
  return Object.freeze({ name: descriptor.name, route: '', basePath: descriptor.basePath, methods: {}, pushes: {}, messages: {}, descriptor });
}

/** Joins the cluster as a client node, runs `fn`, and leaves, whatever `fn` did. */
async function withClient<T>(cluster: Cluster, fn: (client: ClusterClient) => Promise<T>): Promise<T> {
  const { createClient } = await import('../cluster-client/cluster-client.js');
  const client = await createClient({ cluster, name: 'weft-cli' }).start();
  try {
    return await fn(client);
  } finally {
    await client.stop();
  }
}

/** The registry and the cluster of a one-shot command: quiet logs unless WEFT_LOG_LEVEL says otherwise. */
async function clusterAndRecords(command: string, flags: ParsedFlags): Promise<{ cluster: Cluster; records: NodeRecord[] }> {
  process.env['WEFT_LOG_LEVEL'] ??= 'warn';
  const cluster = await clusterFrom(command, flags, true);
  return { cluster, records: await readRegistry(cluster, 'weft-cli') };
}

function checkBusinessId(command: string, businessId: string): void {
  const problem = businessIdProblem(businessId);
  if (problem !== undefined) throw new UsageError(`<businessId>: ${problem}`, command);
}

/** The argument array of a call from `[json-args]`: a JSON array as it is, a JSON object matched to the parameter names. */
export function callArgs(method: MethodDescriptor, service: string, text: string | undefined): unknown[] {
  const takes =
    method.params.length === 0 ? 'it takes no arguments' : `it takes ${method.params.map((p) => (p.required ? p.name : `[${p.name}]`)).join(', ')}`;
  if (text === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(
      `[json-args] must be JSON: an array of the arguments, or an object keyed by parameter name (${service}.${method.name}: ${takes}); ` +
        `${(e as Error).message}`,
      'call',
    );
  }
  if (Array.isArray(parsed)) {
    if (parsed.length > method.params.length) {
      throw new UsageError(`${service}.${method.name} got ${parsed.length} arguments: ${takes}`, 'call');
    }
    return parsed;
  }
  if (parsed === null || typeof parsed !== 'object') {
    throw new UsageError(
      `[json-args] must be a JSON array (["ann"]) or object ({"name": "ann"}), got ${JSON.stringify(parsed)} (${service}.${method.name}: ${takes})`,
      'call',
    );
  }
  const byName = parsed as Record<string, unknown>;
  const names = new Set(method.params.map((p) => p.name));
  const unknown = Object.keys(byName).filter((k) => !names.has(k));
  if (unknown.length > 0) throw new UsageError(`${service}.${method.name} has no parameter ${unknown.join(', ')}: ${takes}`, 'call');
  const missing = method.params.filter((p) => p.required && !(p.name in byName)).map((p) => p.name);
  if (missing.length > 0) throw new UsageError(`${service}.${method.name} needs ${missing.join(', ')}: ${takes}`, 'call');
  const args = method.params.map((p) => byName[p.name]);
  // Trailing optional parameters left out are not sent (JSON has no undefined).
  while (args.length > 0 && args[args.length - 1] === undefined) args.pop();
  return args;
}

export const CALL_COMMAND: CliCommand = {
  synopsis: '<service.method> [json-args] [options]',
  about:
    'call a method of a service in a Redis cluster and print its result as JSON.\n' +
    'On failure it prints the error code and message and exits 1.\n' +
    'The service is its contract name (IGreeterAppService) or route segment (greeter). [json-args] is a JSON array of the arguments\n' +
    '(\'["ann"]\') or an object keyed by parameter name (\'{"name":"ann"}\'), matched with the contract in the registry.',
  positionals: [
    { name: 'service.method', required: true },
    { name: 'json-args', required: false },
  ],
  flags: [
    ...CLUSTER_FLAGS,
    {
      name: 'timeout',
      kind: 'duration',
      value: '<duration>',
      env: 'WEFT_CALL_TIMEOUT',
      help: "the call's timeout: 500ms, 10s (default: the method's, else 5s)",
    },
  ],
  async run(flags) {
    const target = flags.args[0]!;
    const dot = target.lastIndexOf('.');
    if (dot <= 0 || dot === target.length - 1) {
      throw new UsageError(
        `<service.method> must be a service and a method joined by a dot, e.g. IGreeterAppService.greet, got ${JSON.stringify(target)}`,
        'call',
      );
    }
    const timeout = flags.duration('timeout')?.value;
    const { cluster, records } = await clusterAndRecords('call', flags);
    const service = findService(records, target.slice(0, dot), false);
    const methodName = target.slice(dot + 1);
    const method =
      service.contract.methods.find((m) => m.name === methodName) ??
      service.contract.methods.find((m) => m.name.toLowerCase() === methodName.toLowerCase());
    if (method === undefined) {
      throw new WeftError(
        'NotFound',
        `${service.contract.name} has no method ${JSON.stringify(methodName)}; its methods are ${service.contract.methods.map((m) => m.name).join(', ') || 'none'}`,
      );
    }
    const args = callArgs(method, service.contract.name, flags.args[1]);
    const result = await withClient(cluster, async (client) => {
      const proxy = client.proxy(contractOf(service.contract), timeout === undefined ? {} : { timeoutMs: timeout }) as Record<
        string,
        (...a: unknown[]) => Promise<unknown>
      >;
      try {
        return { ok: true as const, value: await proxy[method.name]!(...args) };
      } catch (e) {
        if (!isWeftError(e)) throw e;
        return { ok: false as const, error: e };
      }
    });
    if (!result.ok) {
      const { code, message, validErrors, data } = result.error;
      const details = [
        ...(validErrors ?? []).map((v) => `weft:   ${v.memberNames.join(', ') || '(arguments)'}: ${v.errorMessage}`),
        ...(data === undefined ? [] : [`weft: data: ${JSON.stringify(data)}`]),
      ];
      process.stderr.write(`weft: ${code}: ${message}\n${details.map((l) => `${l}\n`).join('')}`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(`${JSON.stringify(result.value ?? null, null, 2)}\n`);
  },
};

const ACKS: Record<string, PushOptions['ack']> = { written: true, client: 'client', none: false };

export const PUSH_COMMAND: CliCommand = {
  synopsis: '<service> <businessId> <message> [options]',
  about:
    'push a message to every session of a businessId, on every gateway, and print how many sessions it was written to.\n' +
    'The service is a WebSocket service of a Redis cluster (--ack client: how many weft/client sessions confirmed receipt; --ack none: how many the directory lists).\n' +
    "The push goes with the service's history, as the service's own pushToBusiness would. The service is its contract name or path.",
  positionals: [
    { name: 'service', required: true },
    { name: 'businessId', required: true },
    { name: 'message', required: true },
  ],
  flags: [
    ...CLUSTER_FLAGS,
    {
      name: 'ack',
      kind: 'string',
      value: '<written|client|none>',
      default: 'written',
      help: 'what the count means: sessions written to, weft/client receipts, or no round trip',
    },
    {
      name: 'receipt-timeout',
      kind: 'duration',
      value: '<duration>',
      help: 'with --ack client: how long to wait for receipts (default 5s)',
    },
  ],
  async run(flags) {
    const [name, businessId, message] = flags.args as [string, string, string];
    checkBusinessId('push', businessId);
    const ackFlag = flags.string('ack')!;
    if (!(ackFlag.value in ACKS))
      throw new UsageError(`${ackFlag.source} must be written, client or none, got ${JSON.stringify(ackFlag.value)}`, 'push');
    const receiptTimeoutMs = flags.duration('receipt-timeout')?.value;
    if (receiptTimeoutMs !== undefined && ackFlag.value !== 'client') throw new UsageError('--receipt-timeout goes with --ack client', 'push');
    const { cluster, records } = await clusterAndRecords('push', flags);
    const service = findService(records, name, true);
    const options: PushOptions = { ack: ACKS[ackFlag.value]!, ...(receiptTimeoutMs === undefined ? {} : { receiptTimeoutMs }) };
    const count = await withClient(cluster, async (client) => {
      const sessions = await client.sessions(contractOf(service.contract));
      return sessions.pushToBusiness(businessId, message, options);
    });
    process.stdout.write(`${count}\n`);
  },
};

export const SESSIONS_COMMAND: CliCommand = {
  synopsis: '<service> [businessId] [options]',
  about:
    'list the sessions of a WebSocket service, on every gateway of a Redis cluster, or count them.\n' +
    "Each is a session id, its businessId and its gateway node; with [businessId], only that businessId's. --count prints how many.",
  positionals: [
    { name: 'service', required: true },
    { name: 'businessId', required: false },
  ],
  flags: [
    ...CLUSTER_FLAGS,
    { name: 'count', kind: 'boolean', help: 'print only how many sessions there are' },
    { name: 'json', kind: 'boolean', help: 'print the sessions as JSON, one array of {sessionId, businessId, gatewayNodeId}' },
  ],
  async run(flags) {
    const [name, businessId] = flags.args as [string, string | undefined];
    if (businessId !== undefined) checkBusinessId('sessions', businessId);
    const { cluster, records } = await clusterAndRecords('sessions', flags);
    const service = findService(records, name, true);
    const list = await withClient(cluster, async (client) => {
      const sessions = await client.sessions(contractOf(service.contract));
      const all = await sessions.list();
      return (businessId === undefined ? all : all.filter((s) => s.businessId === businessId)).sort(
        (a, b) => a.businessId.localeCompare(b.businessId) || a.sessionId.localeCompare(b.sessionId),
      );
    });
    if (flags.boolean('count')) return void process.stdout.write(`${list.length}\n`);
    if (flags.boolean('json')) return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    if (list.length === 0) {
      const of = businessId === undefined ? '' : ` for businessId ${businessId}`;
      return void process.stdout.write(`no sessions of ${service.contract.name}${of}\n`);
    }
    const rows = [['SESSION', 'BUSINESSID', 'GATEWAY'], ...list.map((s) => [s.sessionId, s.businessId, s.gatewayNodeId])];
    const widths = [0, 1].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
    for (const row of rows) process.stdout.write(`${row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell)).join('  ')}\n`);
  },
};
