/**
 * The flags of the `weft` commands, declared once: each flag's value comes
 * from the command line, else its environment variable, else the config file
 * (`--config <path>` or WEFT_CONFIG, JSON whose keys are flag names), else its
 * default. A bad value is refused with the flag, variable or file key it came
 * from. The help text is made from the same declarations.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseRedisUrl } from '../redis/redis-target.js';

/** A command line that cannot be used: printed with how to get help, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}

export type FlagKind = 'string' | 'port' | 'listen' | 'list' | 'duration' | 'boolean' | 'url' | 'redis-url';

export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  /** The placeholder in the help (`<n>`); boolean flags have none. */
  readonly value?: string;
  readonly env?: string;
  readonly default?: string;
  readonly help: string;
}

/** A flag's value once parsed, and where it came from (for messages). */
export interface FlagValue<T> {
  readonly value: T;
  readonly source: string;
}

export interface ParsedFlags {
  string(name: string): FlagValue<string> | undefined;
  port(name: string): FlagValue<number> | undefined;
  listen(name: string): FlagValue<{ host: string | undefined; port: number }> | undefined;
  list(name: string): FlagValue<string[]> | undefined;
  duration(name: string): FlagValue<number> | undefined;
  boolean(name: string): boolean;
  readonly help: boolean;
  /** The arguments besides the options, in order (only for a command that declares positionals). */
  readonly args: readonly string[];
}

/** An argument besides the options: `<service.method>`, `[json-args]`. */
export interface PositionalSpec {
  readonly name: string;
  readonly required: boolean;
}

/** How a command's positionals read in its synopsis and messages: `<module>`, `[businessId]`. */
export function positionalLabel(p: PositionalSpec): string {
  return p.required ? `<${p.name}>` : `[${p.name}]`;
}

const CONFIG_FLAG: FlagSpec = {
  name: 'config',
  kind: 'string',
  value: '<path>',
  env: 'WEFT_CONFIG',
  help: 'JSON file of settings, keyed by flag name ({"port": 5000, "redis": "redis://..."}); flags and variables win over it',
};

/** Flag names no command takes because they would put a secret on the command line. */
const SECRET_FLAGS: Record<string, string> = {
  secret: 'WEFT_SECRET in the environment, or the secret in a file readable only by you and --secret-file <path>',
  'jwt-secret': 'WEFT_JWT_SECRET in the environment, or the key in a file and --jwt-secret-file <path>',
};

export function secretOnArgv(argv: readonly string[]): string | undefined {
  for (const a of argv) {
    const m = /^--([a-z-]+)(?:=|$)/.exec(a);
    if (m?.[1] !== undefined && SECRET_FLAGS[m[1]] !== undefined) {
      return (
        `--${m[1]} is not accepted: a secret on the command line is visible to every user of the machine (ps, /proc) ` +
        `and stays in shell history. Set ${SECRET_FLAGS[m[1]]}.`
      );
    }
  }
  return undefined;
}

/** The help of one command: its synopsis, what it does, and its flags with their variables and defaults. */
export function commandHelp(command: string, synopsis: string, about: string, flags: readonly FlagSpec[]): string {
  const all = [...flags, CONFIG_FLAG];
  const left = (f: FlagSpec): string => `--${f.name}${f.value === undefined ? '' : ` ${f.value}`}`;
  const width = Math.max(...all.map((f) => left(f).length)) + 2;
  const lines = all.map((f) => {
    const extra = [f.env === undefined ? undefined : `env ${f.env}`, f.default === undefined ? undefined : `default ${f.default}`].filter(
      (x) => x !== undefined,
    );
    return `  ${left(f).padEnd(width)}${f.help}${extra.length === 0 ? '' : ` (${extra.join('; ')})`}`;
  });
  return `usage: weft ${command} ${synopsis}\n\n${about}\n\noptions:\n${lines.join('\n')}\n  ${'--help, -h'.padEnd(width)}this text\n`;
}

function readConfig(file: string, source: string, command: string, known: ReadonlyMap<string, FlagSpec>): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read the config file ${file} (${source}): ${(e as Error).message}`, command);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`the config file ${file} is not JSON: ${(e as Error).message}`, command);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`the config file ${file} must hold one JSON object keyed by flag name, e.g. {"port": 5000}`, command);
  }
  const config = parsed as Record<string, unknown>;
  for (const key of Object.keys(config)) {
    if (SECRET_FLAGS[key] !== undefined) {
      throw new UsageError(`"${key}" in ${file}: secrets do not go in the config file; set ${SECRET_FLAGS[key]}`, command);
    }
    if (!known.has(key) || key === 'config') {
      throw new UsageError(
        `"${key}" in ${file} is not a setting of weft ${command}; its settings are the flag names: ${[...known.keys()].filter((k) => k !== 'config').join(', ')}`,
        command,
      );
    }
  }
  return config;
}

function parsePort(raw: string, source: string): number {
  if (!/^\d{1,5}$/.test(raw.trim()) || Number(raw) > 65535)
    throw new UsageError(`${source} must be a port number from 0 to 65535, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function parseListen(raw: string, source: string): { host: string | undefined; port: number } {
  const text = raw.trim();
  const m = /^(?:\[([^\]]+)\]|([^:\s]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  if (m === null) {
    throw new UsageError(`${source} must be host:port, :port or port (e.g. 0.0.0.0:7000, [::]:7000, 7000), got ${JSON.stringify(raw)}`);
  }
  const host = m[1] ?? (m[2] === '' ? undefined : m[2]);
  return { host, port: parsePort(m[3]!, source) };
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90`, `90s`, `15m`, `1h`, `7d`, `500ms`: milliseconds. Bare numbers are seconds. */
function parseDuration(raw: string, source: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(raw.trim());
  const ms = m === null ? NaN : Number(m[1]) * UNITS[m[2] ?? 's']!;
  if (!(ms > 0)) throw new UsageError(`${source} must be a positive duration such as 90s, 15m, 1h or 7d, got ${JSON.stringify(raw)}`);
  return ms;
}

function parseUrl(raw: string, source: string, schemes: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${source} must be a URL (${schemes.map((s) => `${s}//...`).join(' or ')}), got something that is not one`);
  }
  // The URL may hold a password: say what is wrong without echoing it.
  if (!schemes.includes(url.protocol)) throw new UsageError(`${source} must be a ${schemes.join(' or ')} URL, got one starting with ${url.protocol}`);
  return raw;
}

const REDIS_SCHEMES = ['redis:', 'rediss:', 'redis-cluster:', 'redis-sentinel:'];

/** A Redis URL of any kind (one server, a Redis Cluster, Sentinel); what is wrong is said without echoing it. */
function parseRedis(raw: string, source: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(raw)?.[0]?.toLowerCase();
  if (scheme === undefined)
    throw new UsageError(`${source} must be a URL (${REDIS_SCHEMES.map((s) => `${s}//...`).join(' or ')}), got something that is not one`);
  if (!REDIS_SCHEMES.includes(scheme)) throw new UsageError(`${source} must be a ${REDIS_SCHEMES.join(', ')} URL, got one starting with ${scheme}`);
  try {
    parseRedisUrl(raw);
  } catch (e) {
    throw new UsageError(`${source} ${(e as Error).message}`);
  }
  return raw;
}

/**
 * Parses `argv` for a command with these flags. `--help` is always there;
 * `--config` (WEFT_CONFIG) too. Unknown flags and missing values are usage errors.
 */
export function parseFlags(
  command: string,
  argv: readonly string[],
  flags: readonly FlagSpec[],
  env: NodeJS.ProcessEnv = process.env,
  positionalSpecs: readonly PositionalSpec[] = [],
): ParsedFlags {
  const all = [...flags, CONFIG_FLAG];
  const known = new Map(all.map((f) => [f.name, f]));
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: [...argv],
      options: {
        ...Object.fromEntries(all.map((f) => [f.name, { type: f.kind === 'boolean' ? ('boolean' as const) : ('string' as const) }])),
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: positionalSpecs.length > 0,
    });
    values = parsed.values;
    positionals = parsed.positionals;
  } catch (e) {
    const err = e as Error & { code?: string };
    const flag = /'(-[^']*)'/.exec(err.message)?.[1] ?? /"(-[^"]*)"/.exec(err.message)?.[1];
    switch (err.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new UsageError(`unknown option ${flag ?? ''} for weft ${command}`.replace('  ', ' '), command);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        throw new UsageError(
          `${flag?.replace(/ <value>$/, '') ?? 'an option'} needs a value${flag === undefined ? '' : ` (${flag.split(' ')[0]} <value>)`}`,
          command,
        );
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        throw new UsageError(
          `weft ${command} takes no arguments besides its options: ${err.message.replace(/^Unexpected argument '([^']*)'.*$/s, '"$1"')}`,
          command,
        );
      default:
        throw new UsageError(err.message, command);
    }
  }
  const help = values['help'] === true;
  if (!help) checkPositionals(command, positionals, positionalSpecs);
  let config: Record<string, unknown> = {};
  let configFile: string | undefined;
  if (!help) {
    const fromFlag = values['config'];
    configFile = typeof fromFlag === 'string' ? fromFlag : env['WEFT_CONFIG'];
    if (configFile !== undefined && configFile !== '')
      config = readConfig(configFile, typeof fromFlag === 'string' ? '--config' : 'WEFT_CONFIG', command, known);
  }

  /** The raw text of a flag and the words that name where it came from, or undefined. */
  const raw = (name: string): { text: string; source: string } | undefined => {
    const spec = known.get(name);
    if (spec === undefined) throw new Error(`weft ${command} has no flag --${name}`);
    const flagValue = values[name];
    if (typeof flagValue === 'string') return { text: flagValue, source: `--${name}` };
    if (spec.env !== undefined) {
      const v = env[spec.env];
      if (v !== undefined && v !== '') return { text: v, source: spec.env };
    }
    if (name in config) {
      const v = config[name];
      const source = `"${name}" in ${configFile}`;
      if (typeof v === 'string') return { text: v, source };
      if (typeof v === 'number' && Number.isFinite(v)) return { text: String(v), source };
      if (Array.isArray(v) && spec.kind === 'list' && v.every((x) => typeof x === 'string')) return { text: v.join(','), source };
      throw new UsageError(
        `${source} must be ${spec.kind === 'list' ? 'a string or an array of strings' : 'a string or a number'}, got ${JSON.stringify(v)}`,
        command,
      );
    }
    if (spec.default !== undefined) return { text: spec.default, source: `--${name} (default)` };
    return undefined;
  };
  const parsed = <T>(name: string, parse: (text: string, source: string) => T): FlagValue<T> | undefined => {
    const r = raw(name);
    if (r === undefined) return undefined;
    try {
      return { value: parse(r.text, r.source), source: r.source };
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(e.message, command);
      throw e;
    }
  };
  const kindOf = (name: string): FlagKind | undefined => known.get(name)?.kind;
  return {
    help,
    args: positionals,
    string: (name) =>
      parsed(name, (text, source) => {
        const kind = kindOf(name);
        if (kind === 'url') return parseUrl(text, source, ['https:', 'http:']);
        if (kind === 'redis-url') return parseRedis(text, source);
        if (text.trim() === '') throw new UsageError(`${source} must not be empty`);
        return text;
      }),
    port: (name) => parsed(name, parsePort),
    listen: (name) => parsed(name, parseListen),
    list: (name) =>
      parsed(name, (text) =>
        text
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      ),
    duration: (name) => parsed(name, parseDuration),
    boolean: (name) => {
      if (values[name] === true) return true;
      const spec = known.get(name);
      const v = spec?.env === undefined ? undefined : env[spec.env];
      if (v !== undefined && v !== '') return v === '1' || v.toLowerCase() === 'true';
      return config[name] === true;
    },
  };
}

/** Too few or too many arguments besides the options: a usage error that names them. */
function checkPositionals(command: string, got: readonly string[], specs: readonly PositionalSpec[]): void {
  if (specs.length === 0) return;
  const synopsis = specs.map(positionalLabel).join(' ');
  const missing = specs.slice(got.length).find((p) => p.required);
  if (missing !== undefined) throw new UsageError(`weft ${command} needs ${positionalLabel(missing)}: weft ${command} ${synopsis}`, command);
  if (got.length > specs.length) {
    throw new UsageError(
      `weft ${command} takes ${specs.length === 1 ? 'one argument' : `at most ${specs.length} arguments`} (${synopsis}), got ${got.length}: ` +
        `${got.map((a) => JSON.stringify(a)).join(' ')} (quote an argument that holds spaces; put -- before one that starts with -)`,
      command,
    );
  }
}

/** A file's contents, trimmed; a file that cannot be read is a usage error naming the flag. */
export function readFlagFile(source: string, file: string, command: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new UsageError(`cannot read ${source} ${file}: ${(e as Error).message}`, command);
  }
}
