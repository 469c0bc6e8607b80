#!/usr/bin/env node
/**
 * The `weft` command. A gateway needs no code of yours (its routes come from
 * the registry), so it can run from here:
 *
 *   export WEFT_SECRET=$(openssl rand -base64 32)   # the same on every node
 *   weft gateway --redis redis://127.0.0.1:6379 --port 5000
 *
 * Also `weft host <module>` (a host of the services an ES module exports),
 * `weft demo` (what `npm start` runs), `weft call`, `weft push` and
 * `weft sessions` (one-shot clients of a cluster: call a method, push to a
 * businessId, list sessions), `weft token` (a development token for a
 * gateway's `auth.jwt` secret) and `weft nodes` (the nodes of a cluster, from
 * its registry).
 *
 * Secrets come from the environment or from files, never from the command
 * line, where every user of the machine can read them. Every other setting
 * comes from a flag, its environment variable, or a JSON config file
 * (`--config`), in that order (see flags.ts).
 */
import { readFileSync } from 'node:fs';
import { WeftError, isWeftError } from '../errors.js';
import { MIN_SECRET_BYTES as MIN_JWT_SECRET_BYTES } from '../gateway/auth/jwt-keys.js';
import { businessIdProblem } from '../gateway/auth/business-id.js';
import type { NodeRecord } from '../registry/registry.js';
import { CALL_COMMAND, PUSH_COMMAND, SESSIONS_COMMAND } from './client-commands.js';
import { CLUSTER_FLAGS, clusterFrom, readRegistry, REDIS_FLAGS, type CliCommand } from './common.js';
import { DEMO_COMMAND } from './demo-command.js';
import { HOST_COMMAND } from './host-command.js';
import { ModuleLoadError } from './service-module.js';
import { commandHelp, parseFlags, readFlagFile, secretOnArgv, UsageError, type FlagSpec, type ParsedFlags, type PositionalSpec } from './flags.js';

function version(): string {
  // dist/src/cli/weft.js -> the package's root
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const JWT_CLAIM_FLAGS: FlagSpec[] = [
  { name: 'jwt-issuer', kind: 'string', value: '<iss>', env: 'WEFT_JWT_ISSUER', help: 'the iss claim tokens carry' },
  { name: 'jwt-audience', kind: 'string', value: '<aud>', env: 'WEFT_JWT_AUDIENCE', help: 'the aud claim tokens carry' },
  {
    name: 'business-id-claim',
    kind: 'string',
    value: '<claim>',
    env: 'WEFT_BUSINESS_ID_CLAIM',
    default: 'sub',
    help: 'the claim that is the businessId',
  },
];

const JWT_SECRET_FILE: FlagSpec = {
  name: 'jwt-secret-file',
  kind: 'string',
  value: '<path>',
  help: `HS256 key in a file (trimmed); otherwise env WEFT_JWT_SECRET. At least ${MIN_JWT_SECRET_BYTES} bytes`,
};

const GATEWAY_FLAGS: FlagSpec[] = [
  ...REDIS_FLAGS,
  {
    name: 'host',
    kind: 'string',
    value: '<h>',
    env: 'WEFT_HTTP_HOST',
    default: '127.0.0.1',
    help: 'HTTP and WebSocket address (0.0.0.0: every interface)',
  },
  { name: 'port', kind: 'port', value: '<n>', env: 'WEFT_HTTP_PORT', default: '5000', help: 'HTTP and WebSocket port (0: any free one)' },
  {
    name: 'listen',
    kind: 'listen',
    value: '<host:port>',
    env: 'WEFT_LISTEN',
    help: 'link server address, where hosts connect to push (default: --host with --redis, else 127.0.0.1; any free port)',
  },
  {
    name: 'advertise',
    kind: 'string',
    value: '<host>',
    env: 'WEFT_ADVERTISE',
    help: 'link address other nodes dial, published in the registry (default: the listen host; an interface address for 0.0.0.0)',
  },
  { name: 'name', kind: 'string', value: '<name>', env: 'WEFT_NAME', default: 'gateway', help: 'node name; the node id is <name>-<10 hex digits>' },
  JWT_SECRET_FILE,
  { name: 'jwt-public-key-file', kind: 'string', value: '<path>', help: 'PEM public key tokens are signed for (RS256, ES256, EdDSA...)' },
  { name: 'jwks-url', kind: 'url', value: '<url>', env: 'WEFT_JWKS_URL', help: 'JSON Web Key Set URL tokens are signed for' },
  ...JWT_CLAIM_FLAGS,
  {
    name: 'allowed-origins',
    kind: 'list',
    value: '<a,b>',
    env: 'WEFT_ALLOWED_ORIGINS',
    help: "browser origins allowed to open WebSocket sessions, or '*' (default: the gateway's own)",
  },
];

const TOKEN_FLAGS: FlagSpec[] = [
  { name: 'sub', kind: 'string', value: '<businessId>', help: 'the businessId the token is for (required)' },
  { name: 'ttl', kind: 'duration', value: '<duration>', env: 'WEFT_TOKEN_TTL', default: '1h', help: 'how long it holds: 90s, 15m, 1h, 7d' },
  JWT_SECRET_FILE,
  ...JWT_CLAIM_FLAGS,
];

const NODES_FLAGS: FlagSpec[] = [...CLUSTER_FLAGS, { name: 'json', kind: 'boolean', help: 'print the records as JSON, one array' }];

/** The commands that are declared whole (flags, arguments, run) in their own files. */
const RUNNABLE: Record<string, CliCommand> = {
  host: HOST_COMMAND,
  demo: DEMO_COMMAND,
  call: CALL_COMMAND,
  push: PUSH_COMMAND,
  sessions: SESSIONS_COMMAND,
};

const COMMANDS: Record<string, { synopsis: string; about: string; flags: FlagSpec[]; positionals?: readonly PositionalSpec[] }> = {
  gateway: {
    synopsis: '[options]',
    about:
      'run a gateway: HTTP routes and the WebSocket front door of every service in the cluster, from its registry.\n' +
      'With WEFT_JWT_SECRET, --jwt-secret-file, --jwt-public-key-file or --jwks-url, every route and handshake needs a JWT\n' +
      'whose sub claim (--business-id-claim) is the businessId. Health: GET /healthz (alive), GET /readyz (ready, or what is missing).',
    flags: GATEWAY_FLAGS,
  },
  host: HOST_COMMAND,
  demo: DEMO_COMMAND,
  call: CALL_COMMAND,
  push: PUSH_COMMAND,
  sessions: SESSIONS_COMMAND,
  token: {
    synopsis: '--sub <businessId> [--ttl 1h] [options]',
    about:
      "print a development token (HS256 JWT) for a gateway's auth.jwt secret, signed with WEFT_JWT_SECRET or --jwt-secret-file.\n" +
      'Anyone holding the key can mint tokens for any businessId: for development and tests, not for production.',
    flags: TOKEN_FLAGS,
  },
  nodes: {
    synopsis: '[--redis <url>] [options]',
    about: 'list the nodes of a Redis cluster from its registry: id, role, link address, services.',
    flags: NODES_FLAGS,
  },
};

const USAGE = `usage: weft <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(12)}${c.about.split('\n')[0]!}`)
  .join('\n')}
  help [cmd]  this text, or a command's options (also weft <command> --help)
  version     the version of weft (also --version, -v)

Secrets never go on the command line: the cluster secret is WEFT_SECRET or --secret-file <path>,
a token key WEFT_JWT_SECRET or --jwt-secret-file <path>.
`;

function commandUsage(name: string): string {
  const c = COMMANDS[name]!;
  return commandHelp(name, c.synopsis, c.about, c.flags);
}

async function runCommand(name: string, argv: string[]): Promise<void> {
  const c = RUNNABLE[name]!;
  const flags = parseFlags(name, argv, c.flags, process.env, c.positionals ?? []);
  if (flags.help) return void process.stdout.write(commandUsage(name));
  await c.run(flags);
}

/** Where a library option is set from the command line, for messages that name one. */
const OPTION_FLAGS: Record<string, string> = {
  'http.port': '--port <n> or WEFT_HTTP_PORT',
  'http.host': '--host <h> or WEFT_HTTP_HOST',
  'listen.port': '--listen <host:port> or WEFT_LISTEN',
  'listen.host': '--listen <host:port> or WEFT_LISTEN',
  advertiseHost: '--advertise <host> or WEFT_ADVERTISE',
  url: '--redis <url> or WEFT_REDIS_URL',
};

/** The gateway's `auth.jwt` from the flags (keys from files or the environment, never from argv), or undefined. */
function jwtOptions(
  flags: ParsedFlags,
): { secret?: string; publicKey?: string; jwksUrl?: string; issuer?: string; audience?: string; businessIdClaim?: string } | undefined {
  const secretFile = flags.string('jwt-secret-file');
  const secret =
    secretFile !== undefined ? readFlagFile(secretFile.source, secretFile.value, 'gateway') : process.env['WEFT_JWT_SECRET'] || undefined;
  const keyFile = flags.string('jwt-public-key-file');
  const publicKey = keyFile === undefined ? undefined : readFlagFile(keyFile.source, keyFile.value, 'gateway');
  const jwksUrl = flags.string('jwks-url')?.value;
  if (secret === undefined && publicKey === undefined && jwksUrl === undefined) return undefined;
  const issuer = flags.string('jwt-issuer')?.value;
  const audience = flags.string('jwt-audience')?.value;
  const claim = flags.string('business-id-claim')?.value;
  return {
    ...(secret === undefined ? {} : { secret }),
    ...(publicKey === undefined ? {} : { publicKey }),
    ...(jwksUrl === undefined ? {} : { jwksUrl }),
    ...(issuer === undefined ? {} : { issuer }),
    ...(audience === undefined ? {} : { audience }),
    ...(claim === undefined || claim === 'sub' ? {} : { businessIdClaim: claim }),
  };
}

async function gateway(argv: string[]): Promise<void> {
  const flags = parseFlags('gateway', argv, GATEWAY_FLAGS);
  if (flags.help) return void process.stdout.write(commandUsage('gateway'));
  const host = flags.string('host')!.value;
  const port = flags.port('port')!.value;
  const listen = flags.listen('listen')?.value;
  const advertise = flags.string('advertise')?.value;
  const cluster = await clusterFrom('gateway', flags, false);
  const { createGateway } = await import('../gateway/gateway.js');
  const jwt = jwtOptions(flags);
  const origins = flags.list('allowed-origins')?.value;
  const gw = await createGateway({
    cluster,
    name: flags.string('name')!.value,
    http: { host, port },
    // In a Redis cluster, links listen where HTTP does unless told otherwise: a gateway open to the network is
    // reachable by hosts too. A memory cluster has no other process to hear from.
    listen: { host: listen?.host ?? (cluster.kind === 'redis' ? host : '127.0.0.1'), port: listen?.port ?? 0 },
    ...(advertise === undefined ? {} : { advertiseHost: advertise }),
    ...(jwt === undefined ? {} : { auth: { jwt } }),
    ...(origins === undefined ? {} : { allowedOrigins: origins.length === 1 && origins[0] === '*' ? '*' : origins }),
  }).start();
  const mode =
    jwt === undefined
      ? 'no tokens checked'
      : `tokens required (${jwt.secret !== undefined ? 'HS256 secret' : jwt.jwksUrl !== undefined ? 'JWKS' : 'public key'})`;
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      void gw.stop().then(() => process.exit(0));
    });
  }
  // Printed once the signal handlers are in: whoever waits for this line may stop the gateway at once.
  process.stdout.write(`weft gateway on ${gw.url} (${cluster.kind} cluster, ${mode})\n`);
}

async function token(argv: string[]): Promise<void> {
  const flags = parseFlags('token', argv, TOKEN_FLAGS);
  if (flags.help) return void process.stdout.write(commandUsage('token'));
  const sub = flags.string('sub')?.value;
  if (sub === undefined) throw new UsageError('--sub <businessId> is required: the businessId the token is for', 'token');
  const problem = businessIdProblem(sub);
  if (problem !== undefined) throw new UsageError(`--sub: ${problem}`, 'token');
  const ttlMs = flags.duration('ttl')!.value;
  const secretFile = flags.string('jwt-secret-file');
  const secret = secretFile !== undefined ? readFlagFile(secretFile.source, secretFile.value, 'token') : process.env['WEFT_JWT_SECRET'] || undefined;
  const from = secretFile === undefined ? 'WEFT_JWT_SECRET' : `the key in ${secretFile.value}`;
  if (secret === undefined)
    throw new UsageError('no key to sign with: set WEFT_JWT_SECRET, or put the key in a file and pass --jwt-secret-file <path>', 'token');
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes < MIN_JWT_SECRET_BYTES) {
    throw new WeftError(
      'InvalidOption',
      `${from} is too short: ${bytes} bytes, at least ${MIN_JWT_SECRET_BYTES} needed (the gateway refuses a shorter one too)`,
    );
  }
  const claim = flags.string('business-id-claim')!.value;
  const now = Math.floor(Date.now() / 1000);
  const { SignJWT } = await import('jose');
  const sign = new SignJWT(claim === 'sub' ? {} : { [claim]: sub })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + Math.ceil(ttlMs / 1000));
  const issuer = flags.string('jwt-issuer')?.value;
  const audience = flags.string('jwt-audience')?.value;
  if (issuer !== undefined) sign.setIssuer(issuer);
  if (audience !== undefined) sign.setAudience(audience);
  process.stdout.write(`${await sign.sign(new TextEncoder().encode(secret))}\n`);
}

function servicesOf(record: NodeRecord): string {
  if (record.services.length === 0) return '-';
  return record.services.map((s) => (s.websocket === undefined ? s.contract.name : `${s.contract.name} (ws ${s.websocket.path})`)).join(', ');
}

async function nodes(argv: string[]): Promise<void> {
  const flags = parseFlags('nodes', argv, NODES_FLAGS);
  if (flags.help) return void process.stdout.write(commandUsage('nodes'));
  const cluster = await clusterFrom('nodes', flags, true);
  const records = (await readRegistry(cluster, 'weft-nodes')).sort((a, b) =>
    a.role === b.role ? a.startedAt - b.startedAt : a.role < b.role ? -1 : 1,
  );
  if (flags.boolean('json')) {
    const out = records.map((r) => ({
      id: r.nodeId,
      role: r.role,
      address: `${r.address.host}:${r.address.port}`,
      services: r.services.map((s) => ({ name: s.contract.name, ...(s.websocket === undefined ? {} : { websocket: s.websocket.path }) })),
      startedAt: new Date(r.startedAt).toISOString(),
      protocol: r.protocol,
    }));
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  if (records.length === 0) {
    process.stdout.write(`no nodes in the cluster (prefix ${flags.string('prefix')!.value})\n`);
    return;
  }
  const rows = [
    ['ID', 'ROLE', 'ADDRESS', 'SERVICES'],
    ...records.map((r) => [r.nodeId, r.role, `${r.address.host}:${r.address.port}`, servicesOf(r)]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell)).join('  ')}\n`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const secretFlag = secretOnArgv(rest);
  if (secretFlag !== undefined) throw new UsageError(secretFlag, command);
  switch (command) {
    case 'gateway':
      return gateway(rest);
    case 'token':
      return token(rest);
    case 'nodes':
      return nodes(rest);
    case 'host':
    case 'demo':
    case 'call':
    case 'push':
    case 'sessions':
      return runCommand(command, rest);
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write(`weft ${version()}\n`);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h': {
      const topic = rest[0];
      if (topic !== undefined && COMMANDS[topic] !== undefined) process.stdout.write(commandUsage(topic));
      else if (topic !== undefined) throw new UsageError(`unknown command "${topic}"`);
      else process.stdout.write(USAGE);
      return;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof UsageError) {
    const help = e.command !== undefined && COMMANDS[e.command] !== undefined ? `weft ${e.command} --help` : 'weft help';
    process.stderr.write(`weft: ${e.message}\n(${help} lists the options)\n`);
    process.exit(2);
  }
  if (e instanceof ModuleLoadError) {
    process.stderr.write(`weft: ${e.message}\n`);
  } else if (isWeftError(e)) {
    const option = (e.data as { option?: unknown } | undefined)?.option;
    const hint = typeof option === 'string' ? OPTION_FLAGS[option] : undefined;
    process.stderr.write(`weft: ${e.code}: ${e.message}${hint === undefined ? '' : `\nweft: set it with ${hint}`}\n`);
  } else {
    process.stderr.write(`weft: ${e instanceof Error ? e.message : String(e)}\n`);
  }
  process.exit(1);
});
