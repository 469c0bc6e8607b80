/**
 * Which Redis a cluster uses: one server, a Redis Cluster, or a master found
 * through Sentinel. Read from a URL (`WEFT_REDIS_URL`, `redisCluster({ url })`)
 * or from options objects; `RedisConnection` builds the ioredis client from it.
 *
 *   redis://[user:pass@]host:port[/db]        rediss:// for TLS (one server)
 *   redis-cluster://[user:pass@]host:port,host:port
 *   redis-sentinel://[user:pass@]host:port,host:port/<master-name>[?sentinelPassword=...]
 */

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type RedisTarget =
  | { readonly kind: 'standalone'; readonly url: string }
  | {
      readonly kind: 'cluster';
      /** Seed nodes: any few masters or replicas; the rest is discovered. */
      readonly nodes: readonly HostPort[];
      readonly username?: string | undefined;
      readonly password?: string | undefined;
    }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly HostPort[];
      /** The master's name in the sentinels' configuration. */
      readonly name: string;
      /** Of the master and its replicas. */
      readonly username?: string | undefined;
      readonly password?: string | undefined;
      /** Of the sentinels themselves, when they ask for one. */
      readonly sentinelUsername?: string | undefined;
      readonly sentinelPassword?: string | undefined;
    };

export const CLUSTER_SCHEME = 'redis-cluster:';
export const SENTINEL_SCHEME = 'redis-sentinel:';
const DEFAULT_REDIS_PORT = 6379;
const DEFAULT_SENTINEL_PORT = 26379;

/** `host:port`, `[::1]:port` or `host` (then `defaultPort`); throws with what is wrong. */
export function parseHostPort(text: string, defaultPort: number): HostPort {
  const s = text.trim();
  let host: string;
  let portText: string | undefined;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) throw new Error(`"${text}" has no closing "]"`);
    host = s.slice(1, end);
    const rest = s.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new Error(`"${text}" is not host:port`);
    portText = rest === '' ? undefined : rest.slice(1);
  } else {
    const cut = s.lastIndexOf(':');
    host = cut < 0 ? s : s.slice(0, cut);
    portText = cut < 0 ? undefined : s.slice(cut + 1);
    if (host.includes(':')) throw new Error(`"${text}": write an IPv6 address in brackets, [::1]:6379`);
  }
  if (host === '') throw new Error(`"${text}" has no host`);
  const port = portText === undefined ? defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535 || (portText !== undefined && !/^\d+$/.test(portText))) {
    throw new Error(`"${text}" has no valid port`);
  }
  return { host, port };
}

function decode(part: string | undefined): string | undefined {
  return part === undefined || part === '' ? undefined : decodeURIComponent(part);
}

/** Splits `scheme://[userinfo@]hosts[/path][?query]`, where hosts is a comma-separated list (not a WHATWG URL). */
function splitMultiHost(url: string, scheme: string): { user?: string; password?: string; hosts: string[]; path: string; query: URLSearchParams } {
  let rest = url.slice(scheme.length);
  if (!rest.startsWith('//')) throw new Error(`write ${scheme}//host:port,...`);
  rest = rest.slice(2);
  const q = rest.indexOf('?');
  const query = new URLSearchParams(q < 0 ? '' : rest.slice(q + 1));
  if (q >= 0) rest = rest.slice(0, q);
  const at = rest.lastIndexOf('@');
  const userinfo = at < 0 ? undefined : rest.slice(0, at);
  if (at >= 0) rest = rest.slice(at + 1);
  const slash = rest.indexOf('/');
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  const hostList = slash < 0 ? rest : rest.slice(0, slash);
  const hosts = hostList.split(',').filter((h) => h.trim() !== '');
  if (hosts.length === 0) throw new Error('names no host');
  const out: { user?: string; password?: string; hosts: string[]; path: string; query: URLSearchParams } = { hosts, path, query };
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon));
    const password = decode(colon < 0 ? undefined : userinfo.slice(colon + 1));
    if (user !== undefined) out.user = user;
    if (password !== undefined) out.password = password;
  }
  return out;
}

/** The target a URL names; throws an Error saying what is wrong with it. */
export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0]?.toLowerCase();
  if (scheme === 'redis:' || scheme === 'rediss:') {
    try {
      new URL(url);
    } catch {
      throw new Error('is not a valid URL');
    }
    return { kind: 'standalone', url };
  }
  if (scheme === CLUSTER_SCHEME) {
    const parts = splitMultiHost(url, scheme);
    if (parts.path !== '') throw new Error('a redis-cluster:// URL has no path (a cluster has no databases)');
    return {
      kind: 'cluster',
      nodes: parts.hosts.map((h) => parseHostPort(h, DEFAULT_REDIS_PORT)),
      username: parts.user,
      password: parts.password,
    };
  }
  if (scheme === SENTINEL_SCHEME) {
    const parts = splitMultiHost(url, scheme);
    const name = decodeURIComponent(parts.path.replace(/\/+$/, ''));
    if (name === '' || name.includes('/')) throw new Error('a redis-sentinel:// URL ends with /<master-name>');
    return {
      kind: 'sentinel',
      sentinels: parts.hosts.map((h) => parseHostPort(h, DEFAULT_SENTINEL_PORT)),
      name,
      username: parts.user,
      password: parts.password,
      sentinelUsername: parts.query.get('sentinelUsername') ?? undefined,
      sentinelPassword: parts.query.get('sentinelPassword') ?? undefined,
    };
  }
  throw new Error('must start with redis://, rediss://, redis-cluster:// or redis-sentinel://');
}

/** For logs: where the target is, without credentials. */
export function describeTarget(target: RedisTarget): string {
  const list = (hosts: readonly HostPort[]): string =>
    hosts.map((h) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`)).join(',');
  if (target.kind === 'cluster') return `redis-cluster://${list(target.nodes)}`;
  if (target.kind === 'sentinel') return `redis-sentinel://${list(target.sentinels)}/${target.name}`;
  try {
    const u = new URL(target.url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return 'redis';
  }
}
