#!/usr/bin/env node
/**
 * The `weft` command. A gateway needs no code of yours (its routes come from
 * the registry), so it can run from here:
 *
 *   export WEFT_SECRET=$(openssl rand -base64 32)   # the same on every node
 *   weft gateway --redis redis://127.0.0.1:6379 --port 5000
 *
 * The cluster secret comes from WEFT_SECRET or a file (--secret-file), never
 * from the command line, where every user of the machine can read it.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createGateway } from '../gateway/gateway.js';
import { memoryCluster, redisCluster } from '../node/cluster.js';
import { WeftError, isWeftError } from '../errors.js';
import { MIN_SECRET_BYTES, weakSecret } from '../node/redis-cluster-options.js';

const USAGE = `usage: weft <command> [options]

commands:
  gateway     run a gateway (HTTP routes and WebSocket front door from the registry)
    --redis <url>          Redis URL (env WEFT_REDIS_URL); without it, a lone in-memory cluster.
                           redis://host:port, redis-cluster://host:port,host:port (a Redis Cluster),
                           redis-sentinel://host:port,host:port/<master-name> (Sentinel)
    --secret-file <path>   file holding the cluster secret (trimmed); otherwise env WEFT_SECRET.
                           Required with --redis: at least 16 bytes, e.g. openssl rand -base64 32
    --prefix <p>           Redis key prefix (default weft)
    --host <h>             HTTP host (default 127.0.0.1)
    --port <n>             HTTP port (default 5000)
  tokens (a JWT on every route and handshake; its sub claim is the businessId), one key source:
    --jwt-secret-file <path>      HS256 secret in a file (trimmed); otherwise env WEFT_JWT_SECRET
    --jwt-public-key-file <path>  PEM public key (RS256, ES256, EdDSA...)
    --jwks-url <url>              JSON Web Key Set
    --jwt-issuer <iss>, --jwt-audience <aud>, --business-id-claim <claim> (default sub)
    --allowed-origins <a,b>  origins allowed to open WebSocket sessions (default: the gateway's own)
  help        this text
`;

/** Thrown for a command line that cannot be used: printed with the usage, exit code 2. */
class UsageError extends Error {}

const SECRET_ON_ARGV =
  '--secret is not accepted: a secret on the command line is visible to every user of the machine (ps, /proc) ' +
  'and stays in shell history. Set WEFT_SECRET in the environment, or put the secret in a file readable only by ' +
  'you and pass --secret-file <path>.';

/** The cluster secret: the file's contents (trimmed) when --secret-file is given, else WEFT_SECRET. */
function readSecret(secretFile: string | undefined): string | undefined {
  if (secretFile === undefined) return process.env['WEFT_SECRET'];
  try {
    return readFileSync(secretFile, 'utf8').trim();
  } catch (e) {
    throw new UsageError(`cannot read --secret-file ${secretFile}: ${(e as Error).message}`);
  }
}

interface JwtFlags {
  'jwt-secret-file'?: string | undefined;
  'jwt-public-key-file'?: string | undefined;
  'jwks-url'?: string | undefined;
  'jwt-issuer'?: string | undefined;
  'jwt-audience'?: string | undefined;
  'business-id-claim'?: string | undefined;
}

function readFlagFile(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new UsageError(`cannot read --${flag} ${file}: ${(e as Error).message}`);
  }
}

/** The gateway's `auth.jwt` from the flags (keys from files or the environment, never from argv), or undefined. */
function jwtOptions(
  values: JwtFlags,
): { secret?: string; publicKey?: string; jwksUrl?: string; issuer?: string; audience?: string; businessIdClaim?: string } | undefined {
  const secret =
    values['jwt-secret-file'] !== undefined ? readFlagFile('jwt-secret-file', values['jwt-secret-file']) : process.env['WEFT_JWT_SECRET'];
  const publicKey = values['jwt-public-key-file'] === undefined ? undefined : readFlagFile('jwt-public-key-file', values['jwt-public-key-file']);
  const jwksUrl = values['jwks-url'];
  if (secret === undefined && publicKey === undefined && jwksUrl === undefined) return undefined;
  return {
    ...(secret === undefined ? {} : { secret }),
    ...(publicKey === undefined ? {} : { publicKey }),
    ...(jwksUrl === undefined ? {} : { jwksUrl }),
    ...(values['jwt-issuer'] === undefined ? {} : { issuer: values['jwt-issuer'] }),
    ...(values['jwt-audience'] === undefined ? {} : { audience: values['jwt-audience'] }),
    ...(values['business-id-claim'] === undefined ? {} : { businessIdClaim: values['business-id-claim'] }),
  };
}

async function gateway(argv: string[]): Promise<void> {
  if (argv.some((a) => a === '--secret' || a.startsWith('--secret='))) throw new UsageError(SECRET_ON_ARGV);
  const { values } = parseArgs({
    args: argv,
    options: {
      redis: { type: 'string' },
      'secret-file': { type: 'string' },
      prefix: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '5000' },
      'jwt-secret-file': { type: 'string' },
      'jwt-public-key-file': { type: 'string' },
      'jwks-url': { type: 'string' },
      'jwt-issuer': { type: 'string' },
      'jwt-audience': { type: 'string' },
      'business-id-claim': { type: 'string' },
      'allowed-origins': { type: 'string' },
    },
    strict: true,
  });
  const url = values.redis ?? process.env['WEFT_REDIS_URL'];
  let cluster;
  if (url === undefined) cluster = memoryCluster();
  else {
    const secret = readSecret(values['secret-file']);
    const weak = weakSecret(secret);
    if (secret === undefined || weak !== undefined) {
      const from = values['secret-file'] === undefined ? 'WEFT_SECRET' : `the secret in ${values['secret-file']}`;
      throw new WeftError(
        'InvalidOption',
        `${from} ${weak ?? 'is missing'}: a Redis cluster needs a random secret of at least ${MIN_SECRET_BYTES} bytes, the same on every node ` +
          '(e.g. export WEFT_SECRET=$(openssl rand -base64 32), or write one to a file and pass --secret-file <path>)',
      );
    }
    cluster = redisCluster({ url, secret, ...(values.prefix === undefined ? {} : { prefix: values.prefix }) });
  }
  const jwt = jwtOptions(values);
  const origins = values['allowed-origins']?.split(',').map((o) => o.trim());
  const gw = await createGateway({
    cluster,
    name: 'gateway',
    http: { host: values.host, port: Number(values.port) },
    ...(jwt === undefined ? {} : { auth: { jwt } }),
    ...(origins === undefined ? {} : { allowedOrigins: origins }),
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

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  switch (command) {
    case 'gateway':
      return gateway(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`weft: unknown command "${command}"\n\n${USAGE}`);
      process.exitCode = 2;
  }
}

main().catch((e: unknown) => {
  if (e instanceof UsageError) {
    process.stderr.write(`weft: ${e.message}\n\n${USAGE}`);
    process.exit(2);
  }
  process.stderr.write(`weft: ${isWeftError(e) ? `${e.code}: ${e.message}` : String(e)}\n`);
  process.exit(1);
});
